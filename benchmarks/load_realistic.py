"""Realistic load (issue 19.2): readers and experts with the trial's think times, against gunicorn + PostgreSQL.

Usage (through load.py):
    .venv/bin/python benchmarks/load.py --realistic [--readers 1000] [--experts 100] [--seconds 300]
        [--think-scale 1.0] [--saturation 2,4,8,16,32] [--step-seconds 20] [--cache-url redis://127.0.0.1:6379/8]
        [--client light|httpx]

Each simulated person is an asyncio task sharing one HTTP client (no threads per person): by default the minimal
keep-alive client of ``benchmarks/light_http.py``, which costs the generator far less CPU per request than
``httpx.AsyncClient`` (``--client httpx``; docs/performance.md "The web tier"). Each person is signed in with a
session cookie and a CSRF token as the browser is (the session is made at seeding, as a login would make it:
password hashing is not what is measured). The times are the trial's (docs/design.md), multiplied by
``--think-scale``:

* a reader: worklist (API) -> read page (HTML) -> read detail (API) -> open; reads the case for a time drawn
  from a log-normal with mean 120 s (sd of log 0.4); a heartbeat every 15 s while reading; types the report in
  the second part of the read (a window of 30 % of the read time), sending an autosave at most every 3 s while
  the text changes (about 12 per case); each autosave carries the active seconds, and a heartbeat is skipped when
  one carried them within the last 15 s (as read.js does); submits (a text unique to the read) and starts the next case.
  Each person's first read or task is opened at seeding through the services; the run joins it at a random
  point of its time (a trial already running: no burst of opens at the start).
* an expert: rating worklist -> task -> open; rates for a log-normal time with mean 60 s; three answers given at
  random times (preference, the two quality scores), each sent as an autosave no sooner than 3 s after the last;
  submits.

Then, with ``--saturation K1,K2,...``: the same people with no think time at all, K of them at once for
``--step-seconds`` each, and the saturation throughput: the most requests/s of a step whose p95 over every
endpoint stays under 250 ms.

Printed per phase: requests/s, p50/p95/p99 per endpoint, errors, the server's CPU ms per request per endpoint
(``benchmarks/gunicorn_cpu.py``: thread CPU time in the gunicorn worker), the gunicorn processes' CPU and the
load generator's own CPU (cores, and ms per request: client and simulation together); then every acknowledged
submit is checked in the database (lost, mismatched, doubled).
The load generator runs on the same machine as the server: on a small machine it takes CPU from the server.
"""
from __future__ import annotations

import asyncio
import math
import os
import random
import re
import secrets
import string
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import light_http
import load as base

P95_SATURATION_MS = 250.0
READ_MEAN_S, HEARTBEAT_S, AUTOSAVE_MIN_S, RATE_MEAN_S, TYPING_FRACTION = 120.0, 15.0, 3.0, 60.0, 0.3
READER_ENDPOINTS = ("worklist", "next", "read page", "image meta", "display image", "detail", "open", "heartbeat",
                    "autosave", "submit")
META_URL = re.compile(r'"meta_url": "([^"]+)"')  # the viewer's images in the read page's json_script block
PREFETCH = re.compile(r'<link rel="prefetch" href="([^"]+)"')
EXPERT_ENDPOINTS = ("rating worklist", "rating task", "rating open", "rating autosave", "rating submit")


def _lognormal(rnd: random.Random, mean: float, sigma: float = 0.4) -> float:
    return rnd.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma) if mean > 0 else 0.0


# -- seeding: sessions, experts' tasks --------------------------------------------------------------------------
def sessions_for(usernames: list[str]) -> dict[str, str]:
    """A signed-in session per user, as django.contrib.auth.login stores it (engine from settings)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

    store = import_module(settings.SESSION_ENGINE).SessionStore
    out = {}
    for user in get_user_model().objects.filter(username__in=usernames):
        s = store()
        s[SESSION_KEY] = str(user.pk)
        s[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]  # the model backend, as login stores it
        s[HASH_SESSION_KEY] = user.get_session_auth_hash()
        s.create()
        out[user.username] = s.session_key
    return out


def open_first(trial_code: str, readers: list[str], experts: list[str]) -> dict[str, str]:
    """Each person's first read or rating task opened through the services (as the browser's open would): the
    run starts with everyone in the middle of a case, without a burst of opens (public id by username)."""
    from django.contrib.auth import get_user_model

    from rating import selectors as rating_selectors
    from rating import services as rating_services
    from rating.models import Rating
    from reading import selectors as reading_selectors
    from reading import services as reading_services
    from trial.models import Trial

    trial = Trial.objects.get(code=trial_code)
    users = {u.username: u for u in get_user_model().objects.filter(username__in=readers + experts)}
    out = {}
    for name in readers:
        read = reading_selectors.next_read_for(users[name], trial)
        if read is not None:
            out[name] = reading_services.open_read(users[name], read).public_id
    for name in experts:
        tid = rating_selectors.next_task_id(users[name], trial)
        if tid is not None:
            out[name] = rating_services.open_rating(users[name], Rating.objects.get(public_id=tid)).public_id
    return out


def seed_rating_tasks(trial_code: str, n_cases: int) -> int:
    """Both reads of ``n_cases`` cases marked submitted (bulk), then their rating tasks made by the rating service."""
    from django.utils import timezone

    from rating import services as rating_services
    from reading.models import Read
    from trial.models import Case

    cases = list(Case.objects.filter(trial__code=trial_code).order_by("-pk")[:n_cases])
    now = timezone.now()
    Read.objects.filter(case__in=cases).update(status=Read.Status.DONE, submitted_at=now, opened_at=now,
                                               findings_text="Seeded read for rating.", impression_text="Normal.")
    return sum(len(rating_services.create_rating_tasks(c)) for c in cases)


# -- the simulated people ------------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    t0: float = 0.0
    t1: float = 0.0
    warmup_s: float = 0.0
    latency: dict = field(default_factory=lambda: defaultdict(list))
    status: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))


class Recorder:
    def __init__(self):
        self.phase: Phase | None = None
        self.acked: list[tuple[str, str, bool]] = []

    def add(self, endpoint: str, seconds: float, status) -> None:
        if self.phase is not None:
            self.phase.latency[endpoint].append(seconds)
            self.phase.status[endpoint][status] += 1


@dataclass
class Person:
    username: str
    session: str
    csrf: str
    expert: bool = False
    first: str = ""  # the read or rating task opened at seeding (joined at a random point of it)
    prefetched: str = ""  # the display image the last read page prefetched (in the browser's cache since)


class Sim:
    def __init__(self, client, trial: str, codes: list[str], rec: Recorder, scale: float, stop: asyncio.Event,
                 flow: str = "api", errors: tuple[type[BaseException], ...] = (light_http.HTTPError,)):
        self.client, self.trial, self.codes, self.rec, self.scale, self.stop = client, trial, codes, rec, scale, stop
        self.flow, self.errors = flow, errors

    async def call(self, person: Person, endpoint: str, method: str, url: str, body=None):
        headers = {"Cookie": f"sessionid={person.session}; csrftoken={person.csrf}", "X-CSRFToken": person.csrf}
        t = time.perf_counter()
        try:
            r = await self.client.request(method, url, json=body, headers=headers)
        except self.errors as exc:
            self.rec.add(endpoint, time.perf_counter() - t, type(exc).__name__)
            return None
        self.rec.add(endpoint, time.perf_counter() - t, r.status_code)
        return r

    async def sleep(self, seconds: float) -> bool:
        """Think for ``seconds`` (scaled); False when the run is over."""
        if self.stop.is_set():
            return False
        if seconds * self.scale > 0:
            try:  # asyncio.timeout, not wait_for: no task made per think (generator CPU)
                async with asyncio.timeout(seconds * self.scale):
                    await self.stop.wait()
                return False
            except TimeoutError:
                return True
        await asyncio.sleep(0)
        return True

    async def reader(self, p: Person, rnd: random.Random) -> None:
        if p.first:  # in the middle of a case opened at seeding: the rest of it, then the next cases
            api = f"/api/reading/reads/{p.first}/"
            if not await self.read_case(p, rnd, api, skip=rnd.random()):
                return
            await self.submit(p, p.first, api)
        while not self.stop.is_set():
            if self.flow == "browser":
                pid = await self.next_in_browser(p)
                if pid is None:
                    return
                if pid == "":
                    continue
                api = f"/api/reading/reads/{pid}/"
                page = await self.call(p, "read page", "GET", f"/reading/{self.trial}/read/{pid}/")  # it opens it
                await self.viewer(p, page)
                if not await self.read_case(p, rnd, api):
                    return
                await self.submit(p, pid, api)
                continue
            r = await self.call(p, "worklist", "GET", f"/api/reading/trials/{self.trial}/worklist/")
            if r is None or r.status_code != 200:
                await asyncio.sleep(0.5)  # real time, also with no think time
                continue
            pid = r.json().get("next")
            if not pid:
                return
            api = f"/api/reading/reads/{pid}/"
            await self.call(p, "read page", "GET", f"/reading/{self.trial}/read/{pid}/")
            await self.call(p, "detail", "GET", api)
            await self.call(p, "open", "POST", api + "open/")
            if not await self.read_case(p, rnd, api):
                return
            await self.submit(p, pid, api)

    async def viewer(self, p: Person, page) -> None:
        """What the read page's viewer fetches (imaging/static/imaging/viewer.js): the first image's metadata, its
        display rendition unless the previous page prefetched it (the browser's cache: the views answer "private,
        max-age=3600"), and the page's prefetch of the next read's display image. The full range is fetched only
        on a first window/level, which this reader does not do."""
        if page is None or page.status_code != 200:
            return
        html = page.text
        meta = META_URL.search(html)
        if meta:
            r = await self.call(p, "image meta", "GET", meta.group(1))
            display = r.json().get("display_url") if r is not None and r.status_code == 200 else None
            if display and display != p.prefetched:
                await self.call(p, "display image", "GET", display)
        prefetch = PREFETCH.search(html)
        if prefetch:
            p.prefetched = prefetch.group(1)
            await self.call(p, "display image", "GET", prefetch.group(1))

    async def next_in_browser(self, p: Person) -> str | None:
        """What the page's "next read" link does: /reading/<trial>/next/ redirects to the next read's page (its
        public id returned), or to the worklist when none is waiting (None); "" after a failed request."""
        r = await self.call(p, "next", "GET", f"/reading/{self.trial}/next/")
        if r is None or r.status_code != 302:
            await asyncio.sleep(0.5)
            return ""
        parts = r.headers.get("location", "").rstrip("/").split("/")
        return parts[-1] if len(parts) >= 2 and parts[-2] == "read" else None

    async def submit(self, p: Person, pid: str, api: str) -> None:
        report = base.report_for(p.username, pid, self.codes)
        r = await self.call(p, "submit", "POST", api + "submit/", {**report, "seconds": 5})
        if r is not None and 200 <= r.status_code < 300:
            self.rec.acked.append((pid, report["findings_text"], bool(r.json().get("already_submitted"))))

    async def read_case(self, p: Person, rnd: random.Random, api: str, skip: float = 0.0) -> bool:
        """Heartbeats and autosaves over one read, in time order, from the fraction ``skip`` of it on; False when
        the run ended meanwhile."""
        length = _lognormal(rnd, READ_MEAN_S)
        typing_from = rnd.uniform(0.3, 1.0 - TYPING_FRACTION) * length
        events = [(t, "heartbeat") for t in _ticks(HEARTBEAT_S, length)]
        events += [(typing_from + t, "autosave") for t in _ticks(AUTOSAVE_MIN_S, TYPING_FRACTION * length)]
        now, n = skip * length, 0
        carried = now - HEARTBEAT_S  # when seconds were last sent (read.js: an autosave carries them too)
        events = sorted(e for e in events if e[0] >= now)
        for at, kind in events:
            if not await self.sleep(at - now):
                return False
            now = at
            if kind == "heartbeat":
                if now - carried < HEARTBEAT_S:  # read.js skips the beat: an autosave carried the seconds
                    continue
                await self.call(p, "heartbeat", "POST", api + "heartbeat/", {"seconds": round(now - carried, 1)})
            else:
                n += 1
                await self.call(p, "autosave", "POST", api + "autosave/",
                                {"findings_text": f"Draft {n}: lungs " + "clear " * n,
                                 "seconds": round(now - carried, 1)})
            carried = now
        return await self.sleep(length - now)

    async def expert(self, p: Person, rnd: random.Random) -> None:
        root = f"/api/rating/{self.trial}/"
        first = p.first
        while not self.stop.is_set():
            length = _lognormal(rnd, RATE_MEAN_S)
            if first:  # the task opened at seeding, joined at a random point: the rest of its time
                tid, first, length = first, "", length * rnd.random()
            else:
                r = await self.call(p, "rating worklist", "GET", root)
                if r is None or r.status_code != 200:
                    await asyncio.sleep(0.5)
                    continue
                tid = r.json().get("next")
                if not tid:
                    return
                await self.call(p, "rating task", "GET", f"{root}{tid}/")
                await self.call(p, "rating open", "POST", f"{root}{tid}/open/")
            answers = [{"preference": rnd.choice(["A", "B", "none"])}, {"quality_a": rnd.randint(1, 5)},
                       {"quality_b": rnd.randint(1, 5)}]
            times = sorted(rnd.uniform(0.1, 0.95) * length for _ in answers)
            now, last, given = 0.0, -AUTOSAVE_MIN_S, {}
            for at, answer in zip(times, answers, strict=True):
                at = max(at, last + AUTOSAVE_MIN_S)
                if not await self.sleep(at - now):
                    return
                now = last = at
                given.update(answer)
                await self.call(p, "rating autosave", "POST", f"{root}{tid}/autosave/", dict(given))
            if not await self.sleep(max(0.0, length - now)):
                return
            await self.call(p, "rating submit", "POST", f"{root}{tid}/submit/", {**given, "comment": "ok"})


def _ticks(every: float, length: float) -> list[float]:
    return [every * k for k in range(1, int(length // every) + 1)]


def make_client(kind: str, base_url: str, connections: int):
    """The shared client and the errors it raises: ``light`` (benchmarks/light_http.py) or ``httpx``; the same
    limits for both: ``connections`` keep-alive connections, idle ones closed after 20 s (the server keeps them 30 s),
    30 s per request."""
    if kind == "light":
        return (light_http.Client(base_url, max_connections=connections, timeout=30,
                                  keepalive_expiry=HEARTBEAT_S + 5), (light_http.HTTPError,))
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                          keepalive_expiry=HEARTBEAT_S + 5)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30, cookies=_no_cookies()), (httpx.HTTPError,)


async def run_phase(base_url: str, people: list[Person], seeded: dict, rec: Recorder, phase: Phase, seconds: float,
                    scale: float, seed: int, flow: str = "api", client_kind: str = "light") -> Phase:
    """Everyone starts in the middle of the case opened at seeding (a trial already running), so the clock starts
    at once; at the end, people still waiting are cancelled."""
    client, errors = make_client(client_kind, base_url, min(len(people), 1000))
    w0 = time.perf_counter()
    async with client:
        stop = asyncio.Event()
        sim = Sim(client, seeded["trial"], seeded["finding_codes"], rec, scale, stop, flow, errors)
        rnd = random.Random(seed)
        rec.phase = phase
        tasks = [asyncio.create_task((sim.expert if p.expert else sim.reader)(p, random.Random(rnd.random())))
                 for p in people]
        phase.warmup_s = time.perf_counter() - w0
        phase.t0 = time.time()
        await asyncio.sleep(seconds)
        phase.t1 = time.time()
        rec.phase = None
        stop.set()
        await asyncio.wait(tasks, timeout=60)  # requests in flight finish (30 s client timeout)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return phase


def _no_cookies():
    """A cookie jar that stores nothing: the people share one client, each sends its own Cookie header."""
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


# -- measurements -----------------------------------------------------------------------------------------------
def server_cpu(cpu_dir: Path, t0: float, t1: float) -> dict[str, dict]:
    per = defaultdict(list)
    for f in cpu_dir.glob("cpu-*.txt"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and t0 <= float(parts[0]) <= t1:
                per[parts[1].replace("_", " ")].append(float(parts[2]))
    return {ep: {"n": len(v), "mean_ms": sum(v) / len(v), "p95_ms": base.pct(v, 95)} for ep, v in per.items()}


def process_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every process in the process group (gunicorn master and workers)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ...
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def summarise(phase: Phase, cpu: dict, people: int, gunicorn_cpu_s: float, client_cpu_s: float) -> dict:
    wall = phase.t1 - phase.t0
    endpoints = {}
    for ep in (*READER_ENDPOINTS, *EXPERT_ENDPOINTS):
        lat = phase.latency.get(ep, [])
        if not lat:
            continue
        codes = dict(phase.status.get(ep, {}))
        good = (302,) if ep == "next" else range(200, 300)  # "next" answers with a redirect to the read page
        ok = sum(n for s, n in codes.items() if isinstance(s, int) and s in good)
        endpoints[ep] = {"requests": len(lat), "errors": len(lat) - ok,
                         "statuses": {str(k): v for k, v in codes.items()},
                         "p50_ms": round(base.pct(lat, 50) * 1000, 1), "p95_ms": round(base.pct(lat, 95) * 1000, 1),
                         "p99_ms": round(base.pct(lat, 99) * 1000, 1),
                         "server_cpu_ms": round(cpu.get(ep, {}).get("mean_ms", float("nan")), 2)}
    total = sum(e["requests"] for e in endpoints.values())
    every = [x for v in phase.latency.values() for x in v]
    return {"phase": phase.name, "people": people, "wall_s": round(wall, 1), "warmup_s": round(phase.warmup_s, 1),
            "requests": total,
            "rps": round(total / wall, 1) if wall else 0.0, "errors": sum(e["errors"] for e in endpoints.values()),
            "p95_ms_all": round(base.pct(every, 95) * 1000, 1) if every else float("nan"),
            "gunicorn_cpu_ms_per_request": round(1000 * gunicorn_cpu_s / total, 2) if total else float("nan"),
            "gunicorn_cpu_cores": round(gunicorn_cpu_s / wall, 2) if wall else 0.0,
            "client_cpu_cores": round(client_cpu_s / wall, 2) if wall else 0.0,
            "client_cpu_ms_per_request": round(1000 * client_cpu_s / total, 2) if total else float("nan"),
            "load_avg": os.getloadavg()[0], "endpoints": endpoints}


def print_phase(s: dict) -> None:
    print(f"\n[{s['phase']}] {s['people']} people, {s['wall_s']} s (after {s['warmup_s']} s warm-up): "
          f"{s['requests']} requests, {s['rps']} req/s, "
          f"{s['errors']} errors, p95 all {s['p95_ms_all']} ms; gunicorn {s['gunicorn_cpu_ms_per_request']} ms CPU "
          f"per request ({s['gunicorn_cpu_cores']} cores), load generator {s['client_cpu_cores']} cores "
          f"({s['client_cpu_ms_per_request']} ms per request), "
          f"load average {s['load_avg']:.1f}")
    print(f"  {'endpoint':16} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'CPU ms':>7}")
    for ep, e in s["endpoints"].items():
        print(f"  {ep:16} {e['requests']:8d} {e['errors']:6d} {e['p50_ms']:8.1f} {e['p95_ms']:8.1f} {e['p99_ms']:8.1f}"
              f" {e['server_cpu_ms']:7.2f}" + ("" if not e["errors"] else f"  {e['statuses']}"))


# -- main -----------------------------------------------------------------------------------------------------------
def _csrf() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def run(a) -> dict:
    t_start = time.perf_counter()
    print(f"[realistic] database {a.db}: drop, create, migrate", flush=True)
    base.recreate_database(a.db)
    env = base.app_env(a.db)
    if a.cache_url:
        env.update(CACHE_URL=a.cache_url, CACHE_KEY_PREFIX=f"load-{secrets.token_hex(4)}")
    cpu_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cxr-load-cpu-{a.port}-{int(time.time())}"
    cpu_dir.mkdir(parents=True)
    env["LOAD_CPU_DIR"] = str(cpu_dir)
    mig = base.manage(env, "migrate", "--noinput", "-v0")
    if mig.returncode != 0:
        raise SystemExit(f"migrate failed: {mig.stderr[-2000:]}")
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY",
                                           "MEDIA_ROOT", "AUDIT_SIGNING_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT",
                                           "CELERY_BROKER_URL")})
    for k in ("CACHE_URL", "CACHE_KEY_PREFIX"):
        if k in env:
            os.environ[k] = env[k]
    os.environ["CONN_MAX_AGE"] = "0"
    sys.path.insert(0, str(base.ROOT))
    import django

    django.setup()
    from django.conf import settings

    print(f"[realistic] seeding {a.cases} cases, {a.readers} readers, {a.experts} experts; sessions: "
          f"{settings.SESSION_ENGINE.rsplit('.', 1)[-1]}", flush=True)
    seeded = base.seed(a.cases, a.readers, sample=a.sample, n_experts=a.experts)
    panel = 5
    rated_cases = max(20, math.ceil(a.experts * max(a.seconds, 1) / max(RATE_MEAN_S * a.think_scale, 1) / panel * 2))
    rated_cases = min(rated_cases, a.cases // 2)
    tasks = seed_rating_tasks(seeded["trial"], rated_cases)
    readers = [u for u in seeded["tokens"]]
    experts = [f"load-expert-{i}" for i in range(a.experts)]
    sessions = sessions_for(readers + experts)
    first = open_first(seeded["trial"], readers, experts)
    people = [Person(u, sessions[u], _csrf(), False, first.get(u, "")) for u in readers] + [
        Person(u, sessions[u], _csrf(), True, first.get(u, "")) for u in experts]
    print(f"[realistic] seeded in {round(time.perf_counter() - t_start, 1)} s; {tasks} rating tasks on {rated_cases}"
          f" cases", flush=True)

    server = base.Gunicorn(env, a.port, a.workers, a.threads, Path(os.environ.get("TMPDIR", "/tmp"))
                           / f"cxr-load-gunicorn-{a.port}.log",
                           extra=["-c", str(base.ROOT / "benchmarks" / "gunicorn_cpu.py"), "--keep-alive", "30",
                                  "--worker-connections", "2000"])
    rec, phases = Recorder(), []
    try:
        server.wait_ready(next(iter(seeded["tokens"].values())), seeded["trial"])
        server.warm_up(list(seeded["tokens"].values()), seeded["trial"], a.workers * a.threads)
        plan = []
        if a.seconds > 0:
            flow = "" if a.reader_flow == "api" else f", {a.reader_flow} flow"
            plan.append((f"realistic x{a.think_scale:g}{flow}", people, a.seconds, a.think_scale))
        for k in [int(x) for x in a.saturation.split(",") if x]:
            crowd = ([p for p in people if not p.expert][: max(1, k - k // 10)]
                     + [p for p in people if p.expert][: k // 10])
            plan.append((f"saturation {k}", crowd, a.step_seconds, 0.0))
        for i, (name, crowd, seconds, scale) in enumerate(plan):
            print(f"[realistic] {name}: {len(crowd)} people for {seconds:.0f} s", flush=True)
            g0, c0 = process_cpu_s(server.proc.pid), time.process_time()
            phase = asyncio.run(run_phase(f"http://127.0.0.1:{a.port}", crowd, seeded, rec, Phase(name), seconds,
                                          scale, seed=i, flow=a.reader_flow, client_kind=a.client))
            g1, c1 = process_cpu_s(server.proc.pid), time.process_time()
            s = summarise(phase, server_cpu(cpu_dir, phase.t0, phase.t1), len(crowd), g1 - g0, c1 - c0)
            print_phase(s)
            phases.append(s)
            for person in people:  # the cases opened at seeding belong to the first phase
                person.first = ""
    finally:
        server.stop()

    from django.db import connections

    connections.close_all()
    integrity = base.check_exactly_once(rec.acked, seeded["trial"])
    sat = [s for s in phases if s["phase"].startswith("saturation") and s["p95_ms_all"] < P95_SATURATION_MS]
    result = {
        "config": {k: getattr(a, k) for k in ("readers", "experts", "seconds", "think_scale", "reader_flow", "client",
                                              "saturation", "step_seconds", "cases", "workers", "threads",
                                              "cache_url")},
        "machine": {"cores": os.cpu_count(), "load_avg_end": os.getloadavg()},
        "seed": {k: v for k, v in seeded.items() if k not in ("tokens", "finding_codes")},
        "phases": phases, "integrity": integrity,
        "saturation_rps_p95_under_250ms": max((s["rps"] for s in sat), default=None),
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    i = integrity
    print(f"\nsubmits acknowledged {i['acknowledged']}, stored {i['stored']}, lost {i['lost']}, text mismatched "
          f"{i['mismatched']}, doubled {i['doubled']}")
    if a.saturation:
        print(f"saturation throughput (most req/s of a step with p95 < {P95_SATURATION_MS:.0f} ms): "
              f"{result['saturation_rps_p95_under_250ms']}")
    connections.close_all()
    return result
