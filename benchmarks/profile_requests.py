"""Server CPU per request, in process (issue 19.2): each reader and expert endpoint through Django's full
middleware stack (WSGI handler, real PostgreSQL, Redis cache and cached_db sessions when --cache-url is given),
with CPU ms per request (``time.thread_time``), queries per request, and optionally a cProfile of one endpoint.

    .venv/bin/python benchmarks/profile_requests.py [--db cxr_profile] [--cache-url redis://127.0.0.1:6379/8]
        [--n 200] [--profile autosave] [--top 30]

It drops and recreates its own database (like load.py), seeds a small trial through the services (load.seed:
readers enrolled, cases enrolled, drafts ready), signs people in with session cookies and CSRF tokens as the
browser is, and calls each endpoint ``--n`` times (after a warm-up) through ``django.test.Client`` with CSRF
checks on: the same handler and middleware as gunicorn's WSGI app, without the HTTP parsing (gunicorn adds
~0.3-0.5 ms a request; benchmarks/gunicorn_cpu.py measures inside gunicorn). DEBUG is off.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import string
import sys
import time
from pathlib import Path

import load as base

ROOT = Path(__file__).resolve().parents[1]


def _csrf() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def setup(db: str, cache_url: str) -> None:
    base.recreate_database(db)
    env = base.app_env(db, conn_max_age=60)
    if cache_url:
        env.update(CACHE_URL=cache_url, CACHE_KEY_PREFIX=f"profile-{secrets.token_hex(4)}")
    mig = base.manage(env, "migrate", "--noinput", "-v0")
    if mig.returncode != 0:
        raise SystemExit(f"migrate failed: {mig.stderr[-2000:]}")
    for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "AUDIT_SIGNING_KEY", "ALLOWED_HOSTS",
              "SECURE_SSL_REDIRECT", "CELERY_BROKER_URL", "CONN_MAX_AGE", "LOG_LEVEL", "CACHE_URL", "CACHE_KEY_PREFIX",
              "MEDIA_ROOT"):
        if k in env:
            os.environ[k] = env[k]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


class Caller:
    """One person's signed-in client (session cookie + CSRF cookie and header, as the page's JavaScript sends)."""

    def __init__(self, session: str):
        from django.test import Client

        self.csrf = _csrf()
        self.client = Client(enforce_csrf_checks=True, HTTP_X_CSRFTOKEN=self.csrf, HTTP_HOST="127.0.0.1")
        self.client.cookies["sessionid"] = session
        self.client.cookies["csrftoken"] = self.csrf

    def __call__(self, method: str, url: str, body=None):
        if method == "GET":
            r = self.client.get(url)
        else:
            r = self.client.post(url, body or {}, content_type="application/json")
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.content[:300]!r}")
        return r


def _backend_cpu_ns(pid: int) -> int:
    """A PostgreSQL backend's CPU time so far (ns; its run time in /proc/PID/schedstat): the database's share of a
    request's server CPU. The server runs on this machine (the benchmark's own)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def measure(endpoints: dict, n: int, profile: str) -> list[dict]:
    """Warm every endpoint up, count each one's queries, then time them round-robin (``n`` rounds), so that each
    sees the same machine: a shared machine's load changes from minute to minute."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sql = {}
    for fn, _ in endpoints.values():
        for _ in range(5):  # warm-up: URL resolvers, templates, prepared connections
            fn(0)
    cpu = {name: [] for name in endpoints}
    wall = dict.fromkeys(endpoints, 0.0)
    db_cpu = dict.fromkeys(endpoints, 0.0)
    with connection.cursor() as c:  # the PostgreSQL backend serving this process (persistent: CONN_MAX_AGE)
        c.execute("SELECT pg_backend_pid()")
        backend = c.fetchone()[0]
    prof = cProfile.Profile(time.thread_time) if profile else None  # CPU, not waits
    for i in range(n):
        for name, (fn, limit) in endpoints.items():
            if i >= limit:
                continue
            if prof is not None and name == profile:
                prof.enable()
            if name not in sql:  # the queries of the first measured call (a first open is one, not a resume)
                with CaptureQueriesContext(connection) as q:
                    fn(i + 1)
                sql[name] = [x["sql"][:200] for x in q.captured_queries]
                continue
            d, t, w = _backend_cpu_ns(backend), time.thread_time(), time.perf_counter()
            fn(i + 1)
            cpu[name].append((time.thread_time() - t) * 1000)
            wall[name] += (time.perf_counter() - w) * 1000
            db_cpu[name] += (_backend_cpu_ns(backend) - d) / 1e6
            if prof is not None and name == profile:
                prof.disable()
    out = []
    for name, v in cpu.items():
        v.sort()
        out.append({"endpoint": name, "n": len(v), "cpu_ms_mean": sum(v) / len(v), "cpu_ms_median": v[len(v) // 2],
                    "db_cpu_ms": db_cpu[name] / len(v), "wall_ms": wall[name] / len(v), "queries": len(sql[name]),
                    "sql": sql[name]})
    out.append(prof)
    return out


def run(a) -> list[dict]:
    setup(a.db, a.cache_url)
    import load_realistic as lr
    from django.conf import settings

    seeded = base.seed(a.cases, a.readers, sample=a.cases, n_experts=a.experts)
    lr.seed_rating_tasks(seeded["trial"], 20)
    readers = list(seeded["tokens"])
    experts = ["load-expert-0", "load-expert-1"]
    sessions = lr.sessions_for(readers + experts)
    first = lr.open_first(seeded["trial"], readers, experts)
    trial = seeded["trial"]
    codes = seeded["finding_codes"]
    print(f"[profile] sessions {settings.SESSION_ENGINE.rsplit('.', 1)[-1]}, cache "
          f"{settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}; {seeded['reads']} reads", flush=True)

    r0 = Caller(sessions[readers[0]])
    pid = first[readers[0]]
    api = f"/api/reading/reads/{pid}/"
    e0 = Caller(sessions[experts[0]])
    tid = first[experts[0]]
    root = f"/api/rating/{trial}/"
    # submit: call i submits the read opened at seeding of reader i + 1 (fresh each time; the warm-up's calls are
    # repeats of the first, answered already_submitted)
    submit_queue = [(name, first[name]) for name in readers[1:] if name in first]
    report = base.report_for(readers[0], pid, codes)

    def submit(i):
        name, spid = submit_queue[i % len(submit_queue)]
        Caller(sessions[name])("POST", f"/api/reading/reads/{spid}/submit/", {**report, "seconds": 5})

    from imaging.models import Image
    from reading.models import Read

    # first opens: a read still to do of each reader, opened by the page itself (what a reader's next case does)
    todo = [(r.reader.user.username, r.public_id) for r in Read.objects.filter(
        status=Read.Status.TODO, reader__user__username__in=readers).select_related("reader__user")
        .order_by("order_key")]

    def first_open(i):
        name, rpid = todo[i % len(todo)]
        Caller(sessions[name])("GET", f"/reading/{trial}/read/{rpid}/")

    # rating tasks still to do (every expert's), each opened once by its expert, then submitted once
    from rating.models import Rating

    rating_todo = [(r.expert.user.username, r.public_id) for r in Rating.objects.filter(
        status=Rating.Status.TODO).exclude(public_id=tid).select_related("expert__user").order_by("pk")]
    sessions.update(lr.sessions_for(sorted({name for name, _ in rating_todo} - set(sessions))))
    answer = {"preference": "A", "quality_a": 4, "quality_b": 3}

    def rating_first_open(i):
        name, rtid = rating_todo[i % len(rating_todo)]
        Caller(sessions[name])("POST", f"{root}{rtid}/open/")

    def rating_submit(i):
        name, rtid = rating_todo[i % len(rating_todo)]
        Caller(sessions[name])("POST", f"{root}{rtid}/submit/", answer)

    image = Image.objects.filter(case__reads__public_id=pid).values_list("public_id", flat=True).first()
    endpoints = {
        "next": lambda i: r0("GET", f"/reading/{trial}/next/"),
        "image meta": lambda i: r0("GET", f"/reading/images/{image}/meta.json"),
        "display image": lambda i: r0("GET", f"/reading/images/{image}/display.png"),
        "heartbeat": lambda i: r0("POST", api + "heartbeat/", {"seconds": 15}),
        "autosave": lambda i: r0("POST", api + "autosave/",
                                 {"findings_text": f"Draft {i}: lungs " + "clear " * (i % 12), "seconds": 3}),
        "detail": lambda i: r0("GET", api),
        "open": lambda i: r0("POST", api + "open/"),
        "worklist": lambda i: r0("GET", f"/api/reading/trials/{trial}/worklist/"),
        "read page": lambda i: r0("GET", f"/reading/{trial}/read/{pid}/"),
        "read page first open": first_open,
        "submit": submit,
        "rating worklist": lambda i: e0("GET", root),
        "rating task": lambda i: e0("GET", f"{root}{tid}/"),
        "rating open": lambda i: e0("POST", f"{root}{tid}/open/"),
        "rating autosave": lambda i: e0("POST", f"{root}{tid}/autosave/", {"preference": "A", "quality_a": 1 + i % 5}),
        "rating first open": rating_first_open,
        "rating submit": rating_submit,
    }
    limits = {"submit": len(submit_queue) - 1, "read page first open": len(todo) - 6,  # fresh ones (5 warm-ups)
              "rating first open": len(rating_todo) - 6, "rating submit": len(rating_todo) - 6}
    endpoints = {k: (fn, limits.get(k, a.n)) for k, fn in endpoints.items()
                 if not a.only or k in a.only.split(",")}
    *out, prof = measure(endpoints, a.n, a.profile)
    if prof is not None:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats(a.sort).print_stats(a.top)
        print(s.getvalue())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default="cxr_profile")
    p.add_argument("--cache-url", default="")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--cases", type=int, default=120)
    p.add_argument("--readers", type=int, default=40)
    p.add_argument("--experts", type=int, default=2, help="experts in the trial (the realistic run has 100)")
    p.add_argument("--only", default="")
    p.add_argument("--profile", default="", help="cProfile this endpoint")
    p.add_argument("--sort", default="cumulative")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--sql", action="store_true", help="print each endpoint's queries")
    a = p.parse_args(argv)
    rows = run(a)
    print(f"\nload average {os.getloadavg()[0]:.1f}")
    print("| endpoint | CPU ms mean | CPU ms median | PostgreSQL CPU ms | wall ms mean | queries |\n"
          "|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['endpoint']} | {r['cpu_ms_mean']:.2f} | {r['cpu_ms_median']:.2f} | {r['db_cpu_ms']:.2f} "
              f"| {r['wall_ms']:.2f} | {r['queries']} |")
        if a.sql:
            for s in r["sql"]:
                print("      ", s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
