"""The demo trial: a paired-by-case trial from the fixtures, seeded through the same services as real use."""
from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from imaging.dicom import make_rendition, make_secondary_capture_cxr, validate
from imaging.dicom.synthetic import to_bytes as sc_bytes
from imaging.services import import_file, import_reference_csv
from inference.reportbank import load_iu_bank
from rating import services as rating_services
from rating.models import Rating
from reading import services as reading
from reading.models import Read
from trial import services
from trial.models import Trial, default_findings

User = get_user_model()
DEMO_CODE = "DEMO-CXR"
DEMO_PASSWORD = "demo-password"


@dataclass
class DemoResult:
    trial: Trial
    logins: dict[str, str] = field(default_factory=dict)
    created: bool = True


def _user(username: str, **extra) -> User:
    return services.get_or_create_user(username, password=DEMO_PASSWORD, **extra)


@transaction.atomic
def seed_people(n_centers: int = 3) -> tuple[Trial, dict[str, str]]:
    coord = _user("coordinator", first_name="Casey", last_name="Coordinator")
    coord.is_staff = True
    coord.save(update_fields=["is_staff"])
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    coord = User.objects.get(pk=coord.pk)
    trial = services.create_trial(
        coord, code=DEMO_CODE, title="Demo: AI-drafted chest X-ray reports for junior radiologists",
        design=Trial.Design.PAIRED_BY_CASE, expert_panel_size=3, preference_majority=2,
        allow_retrieval_baseline=True, ask_blinding_guess=True,  # the demo's model is the retrieval baseline
    )
    centers = [services.add_center(coord, trial, code=f"c{i + 1}", name=name)
               for i, name in enumerate(["North Hospital", "River Clinic", "Hill Medical Center"][:n_centers])]
    services.add_arm(coord, trial, code="unassisted", name="Standard care")
    services.add_arm(coord, trial, code="ai_assisted", name="AI-assisted", is_ai=True)
    readers = []
    for c in centers:
        # Three readers per center: block sizes vary (2 or 4, issue 14), so two readers of a center could land in
        # one arm; with three, each center always has a reader of each arm.
        for j in range(3):
            u = _user(f"reader{len(readers) + 1}")
            readers.append(services.add_member(coord, trial, user=u, role="reader", center=c,
                                               experience="senior" if j == 1 else "junior"))
    for j in range(3):
        services.add_member(coord, trial, user=_user(f"expert{j + 1}"), role="expert", center=centers[j % len(centers)])
    services.add_member(coord, trial, user=_user("statistician"), role="statistician")
    # The seed gets a secret random part (trial.randomisation.sealed_seed); block sizes stay hidden until lock.
    services.generate_allocation_list(coord, trial, seed="demo-seed", block_sizes=[2, 4], slots_per_stratum=20)
    services.advance_status(coord, trial, Trial.Status.ENROLLING, reason="demo")
    for m in readers:
        services.enrol_reader(coord, m)
    services.advance_status(coord, trial, Trial.Status.READING, reason="demo: cases are enrolled after")
    logins = {"coordinator": "coordinator", "reader (AI arm)": "", "reader (unassisted)": "",
              "expert": "expert1", "statistician": "statistician"}
    for m in trial.memberships.filter(role="reader").select_related("arm", "user").order_by("user__username"):
        key = "reader (AI arm)" if m.arm.is_ai else "reader (unassisted)"
        logins[key] = logins[key] or m.user.username
    return trial, logins


Report = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def seed_demo(n_cases: int = 24, leave_open_cases: int = 2, report: Report | None = None) -> DemoResult:
    """Seed the demo trial (idempotent). ``report`` is told each step as it starts and ends (issue 17: `make demo`
    said nothing for about two minutes on a fresh machine)."""
    report = report or _quiet
    existing = Trial.objects.filter(code=DEMO_CODE).first()
    if existing is not None:
        return DemoResult(existing, demo_logins(existing), created=False)
    steps = [
        "people, centers and arms",
        f"importing {n_cases} chest radiographs (de-identified, rendered) and their reference reports",
        f"enrolling {n_cases - leave_open_cases} cases (reads and AI drafts)",
        "readers reporting most cases",
        "experts rating the report pairs",
    ]
    total = len(steps)
    started = time.monotonic()

    def step(n: int, fn: Callable[[], object]) -> object:
        t0 = time.monotonic()
        report(f"[{n}/{total}] {steps[n - 1]}...")
        out = fn()
        report(f"[{n}/{total}] done in {time.monotonic() - t0:.1f} s")
        return out

    trial, logins = step(1, seed_people)
    step(2, lambda: seed_cases(trial, n_cases, report=report))
    step(3, lambda: enrol_cases(trial, leave_open=leave_open_cases, report=report))
    step(4, lambda: prefill_reads(trial))
    step(5, lambda: prefill_ratings(trial))
    report(f"Seeded in {time.monotonic() - started:.1f} s.")
    return DemoResult(trial, logins)


def _every(report: Report, i: int, n: int, what: str) -> None:
    if i == n or i % max(1, n // 4) == 0:
        report(f"      {i}/{n} {what}")


# -- cases: real chest radiographs, each paired with a real IU report as its reference -------------------------
REAL_FILES = ["NIH_DX_chest_MONO2_implicitLE.dcm", "SIIM_CR_chest_MONO2_jpeg_baseline.dcm",
              "CR-MONO1-10-chest_nometa.dcm", "RG1_CR_chest_MONO1_J2K_lossless.dcm"]


def _fixture_dir() -> Path:
    return Path(settings.BASE_DIR) / "fixtures"


def _base_images() -> list[np.ndarray]:
    """8-bit pixel arrays of the fixture chest radiographs (display orientation: bone bright)."""

    out = []
    for png in sorted((_fixture_dir() / "cxr-png").glob("*.png")):
        with PILImage.open(png) as im:
            out.append(np.asarray(im.convert("L")))
    for name in REAL_FILES[:2]:
        data = (_fixture_dir() / "dicom" / name).read_bytes()
        inst = validate(data, name)
        r = make_rendition(inst.dataset, pixels=inst.pixels, max_size=768)
        with PILImage.open(io.BytesIO(r.display_png)) as im:
            out.append(np.asarray(im.convert("L")))
    return out


def _variant(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A distinct study from a real radiograph: small crop, slight exposure change (a demo needs more cases
    than there are openly licensed chest radiographs)."""
    h, w = base.shape
    dy, dx = (int(rng.integers(0, max(1, h // 12))) for _ in range(2))
    crop = base[dy: h - int(rng.integers(0, max(1, h // 12))), dx: w - int(rng.integers(0, max(1, w // 12)))]
    gamma = float(rng.uniform(0.85, 1.15))
    out = 255.0 * (crop / 255.0) ** gamma
    return np.clip(out, 0, 255).astype(np.uint8)


def _demo_reports(n: int) -> list[dict]:
    """IU reports with a findings section, half with at least one of the trial's findings, in a stable order."""

    bank = load_iu_bank()
    codes = [f["code"] for f in default_findings()]
    usable = [e for e in bank.entries if e.findings and e.impression]
    positive = [e for e in usable if any(e.labels.get(c) for c in codes)]
    normal = [e for e in usable if not any(e.labels.get(c) for c in codes)]
    picked = [x for pair in zip(positive[: n // 2 + 1], normal[: n // 2 + 1], strict=False) for x in pair][:n]
    return [{"id": e.id, "findings": e.findings, "impression": e.impression,
             "labels": {c: int(bool(e.labels.get(c))) for c in codes}} for e in picked]


def seed_cases(trial: Trial, n_cases: int, report: Report = _quiet) -> None:

    coord = trial.memberships.get(role="coordinator").user
    centers = list(trial.centers.order_by("code"))
    rng = np.random.default_rng(7)
    png = next(iter(sorted((_fixture_dir() / "cxr-png").glob("*.png"))))
    files: list[tuple[str, bytes]] = [(n, (_fixture_dir() / "dicom" / n).read_bytes()) for n in REAL_FILES]
    bases = _base_images()
    while len(files) < n_cases:
        arr = _variant(bases[len(files) % len(bases)], rng)
        ds = make_secondary_capture_cxr(png, pixels=arr, modality="CR")
        files.append((f"demo-{len(files):02d}.dcm", sc_bytes(ds)))
    codes = []
    for i, (name, data) in enumerate(files[:n_cases]):
        r = import_file(coord, trial, centers[i % len(centers)], name, data)
        if r.status != "imported":
            raise RuntimeError(f"Demo fixture {name} was refused: {r.reason_code} {r.message}")
        codes.append(r.case_code)
        _every(report, i + 1, n_cases, "images imported")
    buf = io.StringIO()
    w = csv.writer(buf)
    finding_codes = trial.finding_codes
    w.writerow(["case", *finding_codes, "report"])
    for code, rep in zip(codes, _demo_reports(len(codes)), strict=True):
        text = f"Findings: {rep['findings']}\nImpression: {rep['impression']}"
        w.writerow([code, *[rep["labels"][c] for c in finding_codes], text])
    result = import_reference_csv(coord, trial, buf.getvalue())
    if result.errors:
        raise RuntimeError(f"Demo reference standard refused: {result.errors}")


def enrol_cases(trial: Trial, leave_open: int, report: Report = _quiet) -> None:
    """Enrol all but a few cases (left for the visitor); drafts are made in-process by the retrieval baseline."""
    coord = trial.memberships.get(role="coordinator").user
    cases = list(trial.cases.order_by("code"))
    todo = cases[: len(cases) - leave_open]
    for i, case in enumerate(todo, start=1):
        services.enrol_case(coord, case)
        _every(report, i, len(todo), "cases enrolled")


def _reader_text(case, read, rng) -> tuple[str, str, dict]:
    findings, _, impression = case.reference_report.partition("\nImpression: ")
    findings = findings.removeprefix("Findings: ")
    if read.draft_id and rng.random() < 0.7:
        # AI arm: the reader mostly keeps the draft
        findings, impression = read.draft.findings_text or findings, read.draft.impression_text or impression
    if rng.random() < 0.35:  # readers of both arms add a line now and then (one arm's habit would show in lengths)
        findings = findings + " Heart size is within normal limits."
    marks = {}
    for code in case.trial.finding_codes:
        truth = bool(case.reference_findings.get(code))
        call = truth if rng.random() < (0.9 if read.draft_id else 0.85) else not truth
        marks[code] = {"present": call, "confidence": int(rng.integers(3, 6))}
    return findings, impression, marks


def submit_demo_read(user, read: Read, rng: np.random.Generator, clock) -> None:
    """Opens and submits one demo read with the case's generated report, then gives it a realistic duration
    (the services stamp the real clock): about 119 s on an AI arm, 146 s otherwise, opened within 30 minutes
    after ``clock``."""
    read = reading.open_read(user, read)
    findings, impression, marks = _reader_text(read.case, read, rng)
    reading.submit_read(user, read, {"findings_text": findings, "impression_text": impression,
                                     "finding_marks": marks})
    seconds = float(rng.lognormal(np.log(119 if read.arm.is_ai else 146), 0.35))
    opened = clock + timedelta(minutes=float(rng.uniform(1, 30)))
    Read.objects.filter(pk=read.pk).update(
        opened_at=opened, submitted_at=opened + timedelta(seconds=seconds * 1.15),
        last_heartbeat_at=opened + timedelta(seconds=seconds), active_seconds=round(seconds, 1))


def prefill_reads(trial: Trial, share: float = 0.75) -> None:
    """Most reads submitted through the reading services; the readers the visitor logs in as (the first of each
    arm) keep a few open. Allocation is random (three readers a center), so counts are rounded up: small demos still
    get complete pairs for the experts."""

    rng = np.random.default_rng(11)
    clock = timezone.now() - timedelta(days=3)
    visitor = set(demo_logins(trial).values())
    for m in trial.memberships.filter(role="reader").select_related("user", "arm").order_by("user__username"):
        reads = list(Read.objects.filter(reader=m).select_related("case__trial", "arm").order_by("order_key"))
        keep_open = min(3, (len(reads) + 1) // 2) if m.user.username in visitor else 0
        for read in reads[: max(0, min(math.ceil(len(reads) * share), len(reads) - keep_open))]:
            submit_demo_read(m.user, read, rng, clock)


def prefill_ratings(trial: Trial) -> None:
    """Rate most pairs through the rating services; expert1 keeps a few open for the visitor."""

    rng = np.random.default_rng(13)
    open_left = 0
    for r in Rating.objects.filter(case__trial=trial).select_related("expert__user", "read_a__arm", "read_b__arm",
                                                                     "read_b").order_by("order_key"):
        if r.expert.user.username == "expert1" and open_left < 3:
            open_left += 1
            continue
        rating_services.open_rating(r.expert.user, r)
        if r.read_b_id is None:
            rating_services.submit_rating(r.expert.user, r, {"quality_a": int(rng.integers(3, 6))})
            continue
        q = {x.pk: int(np.clip(round(rng.normal(4.3 if x.arm.is_ai else 4.1, 0.6)), 1, 5))
             for x in (r.read_a, r.read_b)}
        better_a = q[r.read_a_id] - q[r.read_b_id]
        pref = "A" if better_a > 0 else "B" if better_a < 0 else rng.choice(["A", "B", "none"])
        answer = {"quality_a": q[r.read_a_id], "quality_b": q[r.read_b_id], "preference": str(pref)}
        if trial.ask_blinding_guess:  # demo experts: mostly unsure, right a little more often than wrong
            ai_letter = "A" if r.read_a.arm.is_ai else "B"
            answer["blinding_guess"] = str(rng.choice([ai_letter, "B" if ai_letter == "A" else "A", "dont_know"],
                                                      p=[0.35, 0.25, 0.4]))
        rating_services.submit_rating(r.expert.user, r, answer)


def demo_logins(trial: Trial) -> dict[str, str]:
    logins = {"coordinator": "coordinator", "expert": "expert1", "statistician": "statistician"}
    for m in trial.memberships.filter(role="reader").select_related("arm", "user").order_by("user__username"):
        key = "reader (AI arm)" if m.arm and m.arm.is_ai else "reader (unassisted)"
        logins.setdefault(key, m.user.username)
    return logins
