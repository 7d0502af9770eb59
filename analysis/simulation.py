"""A synthetic trial with known effects, made through the same services as real use (``manage.py simulate_trial``).

Setup, allocation, enrolment: ``trial.services`` (create_trial, add_center, add_arm, add_member,
generate_allocation_list, advance_status, enrol_reader, add_case, enrol_case). Reads: ``reading.services``
(open_read, submit_read). Ratings: ``rating.services`` (open_rating, submit_rating).

Three things are written directly, each marked where it happens:
- the reference standard (``Case.reference_findings``): no service sets it (the import does, from source data);
- the model's drafts: simulated cases have no images, so a *ready* ``inference.Draft`` with simulated
  probabilities is stored for each case before it is enrolled (enrolment then finds it ready and queues nothing);
- reading times: the services stamp the real clock and cap active time by wall time, and no service accepts a
  clock, so after ``submit_read`` the read's opened_at / submitted_at / active_seconds are set to the simulated
  elapsed times.

Data model (per read, per rating):
    quality  = round(quality_base + quality_shift*AI + case + reader + center + expert + e), clipped to 1-5
    log time = log(base_seconds) + log(time_ratio)*AI + case + reader + center + e
    preference: no preference with probability ``ties``, else the AI report with probability ``preference``
    model probability: binormal score with AUC ``model_auc`` per finding; readers' calls: binormal, better with AI.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.contrib.auth.models import Permission
from django.utils import timezone
from scipy.stats import norm

from inference.models import Draft, ModelVersion
from rating import services as rating_services
from rating.models import Rating
from reading import services as reading_services
from reading.models import Read
from trial import services
from trial.models import Case, Membership, Trial
from trial.models import default_findings as trial_findings

SIM_MODEL = "simulated-model-v1"


@dataclass
class SimulationParams:
    code: str = "SIM"
    cases: int = 120
    readers: int = 8
    centers: int = 2
    experts: int = 3
    design: str = Trial.Design.PAIRED_BY_CASE
    quality_shift: float = 0.25
    time_ratio: float = 0.82
    preference: float = 0.55
    ties: float = 0.10
    reader_sd: float = 0.2
    center_sd: float = 0.1
    expert_sd: float = 0.2
    case_sd: float = 0.45
    residual_sd: float = 0.6
    quality_base: float = 3.6
    base_seconds: float = 146.6
    time_reader_sd: float = 0.15
    time_center_sd: float = 0.1
    time_case_sd: float = 0.2
    time_residual_sd: float = 0.3
    model_auc: float = 0.85
    prevalence: float = 0.3
    seed: int = 1
    lock: bool = True
    password: str | None = None
    # Blinding question (asked when either share is > 0): shares of right and of don't-know answers; the rest wrong.
    guess_right: float = 0.0
    guess_dont_know: float = 0.0


def _user(username: str, password: str | None):
    return services.get_or_create_user(username, password=password, email=f"{username}@example.org")


def _guess(rng: np.random.Generator, p: SimulationParams, r: Rating) -> str:
    """An expert's answer to the blinding question: right, don't know or wrong with the parameters' shares."""
    u = rng.random()
    if p.guess_right <= u < p.guess_right + p.guess_dont_know:
        return "dont_know"
    right = u < p.guess_right
    if r.read_b_id is None:  # a single report: is it AI-assisted?
        return "A" if r.read_a.arm.is_ai == right else "not_a"
    return "A" if r.read_a.arm.is_ai == right else "B"


def simulate_trial(p: SimulationParams, log: Callable[[str], Any] = lambda s: None) -> dict[str, Any]:
    """Create and run the whole simulated trial; returns counts and the parameters."""
    if p.design not in Trial.Design.values:
        raise services.InvalidInput(f"design must be one of {', '.join(Trial.Design.values)}")
    if p.readers < 2 * p.centers and p.design != Trial.Design.CROSSOVER:
        raise services.InvalidInput("Need at least two readers per center (one per arm).")
    if p.readers < 3 * p.centers and p.design == Trial.Design.PAIRED_BY_CASE:
        raise services.InvalidInput("Need at least three readers per center: block sizes vary (2 or 4), so two "
                                    "readers of a center can land in one arm.")
    rng = np.random.default_rng(p.seed)
    prefix = p.code.lower()
    findings = [f["code"] for f in trial_findings()]

    # -- people and setup (trial.services) ------------------------------------------------------------------
    coord = _user(f"{prefix}-coord", p.password)
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    coord = type(coord).objects.get(pk=coord.pk)  # fresh permission cache
    trial = services.create_trial(coord, code=p.code, title=f"Simulated trial {p.code}", design=p.design,
                                  expert_panel_size=p.experts, preference_majority=p.experts // 2 + 1,
                                  washout_days=0, ask_blinding_guess=p.guess_right + p.guess_dont_know > 0)
    centers = [services.add_center(coord, trial, code=f"c{i + 1}", name=f"Simulated center {i + 1}")
               for i in range(p.centers)]
    mv, _ = ModelVersion.objects.get_or_create(name=SIM_MODEL, defaults={
        "backend": ModelVersion.Backend.RETRIEVAL, "generation_params": {"simulated": True}})
    services.add_arm(coord, trial, code="unassisted", name="Standard care")
    services.add_arm(coord, trial, code="ai_assisted", name="AI-assisted", is_ai=True, model_version=mv)
    readers = []
    for j in range(p.readers):
        u = _user(f"{prefix}-reader-{j + 1:02d}", p.password)
        readers.append(services.add_member(coord, trial, user=u, role="reader", center=centers[j % p.centers],
                                           experience="senior" if j % 3 == 0 else "junior"))
    experts = []
    for j in range(p.experts):
        u = _user(f"{prefix}-expert-{j + 1:02d}", p.password)
        experts.append(services.add_member(coord, trial, user=u, role="expert", center=centers[j % p.centers]))
    services.add_member(coord, trial, user=_user(f"{prefix}-stat", p.password), role="statistician")
    per_center = math.ceil(p.cases / p.centers)
    services.generate_allocation_list(coord, trial, seed=f"simulation-{p.seed}", block_sizes=[2, 4],
                                      slots_per_stratum=max(100, per_center + 10))
    trial = services.advance_status(coord, trial, Trial.Status.ENROLLING)
    for m in readers:
        services.enrol_reader(coord, m)
    log(f"Trial {p.code}: {p.centers} centers, {p.readers} readers, {p.experts} experts enrolled")

    # -- cases, reference standard, drafts ------------------------------------------------------------------
    truth = {f: rng.random(p.cases) < p.prevalence for f in findings}
    d_model = math.sqrt(2) * norm.ppf(p.model_auc)  # binormal separation giving the target AUC
    case_q = rng.normal(0, p.case_sd, p.cases)
    case_t = rng.normal(0, p.time_case_sd, p.cases)
    center_q = rng.normal(0, p.center_sd, p.centers)
    center_t = rng.normal(0, p.time_center_sd, p.centers)
    case_index: dict[int, int] = {}
    for i in range(p.cases):
        center = centers[i % p.centers]
        case = services.add_case(coord, trial, center=center, code=f"{p.code}-{i + 1:05d}")
        ref = {f: int(truth[f][i]) for f in findings}
        # Direct write: no service sets the reference standard (the DICOM import takes it from source data).
        Case.objects.filter(pk=case.pk).update(reference_findings=ref, reference_report="Simulated reference.")
        probs = {f: round(float(1 / (1 + math.exp(-(rng.normal(0, 1) + d_model * truth[f][i] - d_model / 2)))), 6)
                 for f in findings}
        # Direct write: simulated cases have no images for the model; a ready draft with simulated
        # probabilities stands in for inference (enrolment sees it ready and queues no task).
        present = [f.replace("_", " ") for f in findings if probs[f] >= 0.5]
        now = timezone.now()
        Draft.objects.create(
            case=case, model_version=mv, status=Draft.Status.READY, probabilities=probs,
            findings_text="FINDINGS: " + ("; ".join(present) if present else "no acute abnormality") + ".",
            impression_text="IMPRESSION: " + ("abnormal" if present else "normal") + ".",
            started_at=now, finished_at=now, queue_wait_s=0.0, generate_s=float(rng.uniform(2, 6)),
            worker_host="simulation", attempts=1)
        services.enrol_case(coord, case)
        case_index[case.pk] = i
    trial = services.advance_status(coord, trial, Trial.Status.READING)
    log(f"{p.cases} cases enrolled with reference standard and model drafts")

    # -- reads (reading.services) ---------------------------------------------------------------------------
    reader_pos = {m.pk: j for j, m in enumerate(readers)}
    reader_q = rng.normal(0, p.reader_sd, p.readers)
    reader_t = rng.normal(0, p.time_reader_sd, p.readers)
    clock = {m.pk: timezone.now() - timedelta(days=60) for m in readers}
    reads = list(Read.objects.filter(case__trial=trial, reader__isnull=False)
                 .select_related("reader__user", "arm", "case").order_by("session", "case__code", "arm__code"))
    unassigned = Read.objects.filter(case__trial=trial, reader__isnull=True).count()
    for read in reads:
        i, j, ai = case_index[read.case_id], reader_pos[read.reader_id], read.arm.is_ai
        c = i % p.centers
        user = read.reader.user
        reading_services.open_read(user, read)
        sep = 2.2 if ai else 1.7
        marks, present = {}, []
        for f in findings:
            z = rng.normal(0, 1) + sep * truth[f][i]
            call = bool(z > sep / 2)
            marks[f] = {"present": call, "confidence": int(min(5, 1 + abs(z - sep / 2) * 2))}
            if call:
                present.append(f.replace("_", " "))
        text = ("Simulated report. " + (", ".join(present).capitalize() if present else "No acute findings") + ".")
        reading_services.submit_read(user, read, {"findings_text": text, "impression_text": "Simulated impression.",
                                                  "finding_marks": marks})
        secs = float(math.exp(math.log(p.base_seconds) + math.log(p.time_ratio) * ai + case_t[i] + reader_t[j]
                              + center_t[c] + rng.normal(0, p.time_residual_sd)))
        wall = secs * float(rng.uniform(1.05, 1.5))
        opened = clock[read.reader_id] + timedelta(seconds=float(rng.uniform(5, 60)))
        submitted = opened + timedelta(seconds=wall)
        clock[read.reader_id] = submitted
        # Direct write (simulation of elapsed time): the services use the real clock and accept none.
        Read.objects.filter(pk=read.pk).update(opened_at=opened, submitted_at=submitted, last_heartbeat_at=submitted,
                                               autosaved_at=submitted, active_seconds=round(secs, 3))
    log(f"{len(reads)} reads submitted ({unassigned} unassigned)")

    # -- ratings (rating.services) ------------------------------------------------------------------
    trial = services.advance_status(coord, trial, Trial.Status.RATING)
    expert_pos = {m.pk: j for j, m in enumerate(experts)}
    expert_q = rng.normal(0, p.expert_sd, p.experts)
    ratings = list(Rating.objects.filter(case__trial=trial)
                   .select_related("expert__user", "read_a__arm", "read_b__arm", "read_a", "read_b")
                   .order_by("case__code", "expert__user__username"))

    def score(read: Read, i: int, e: int) -> int:
        mu = (p.quality_base + p.quality_shift * read.arm.is_ai + case_q[i] + reader_q[reader_pos[read.reader_id]]
              + center_q[i % p.centers] + expert_q[e])
        return int(np.clip(np.rint(mu + rng.normal(0, p.residual_sd)), 1, 5))

    for r in ratings:
        i, e = case_index[r.case_id], expert_pos[r.expert_id]
        user = r.expert.user
        rating_services.open_rating(user, r)
        if r.read_b_id is None:
            answer: dict[str, Any] = {"quality_a": score(r.read_a, i, e)}
        else:
            # Draw in the canonical order (control, then AI) so results do not depend on the A/B draw.
            pair = sorted([r.read_a, r.read_b], key=lambda x: x.arm.is_ai)
            q = {x.pk: score(x, i, e) for x in pair}
            u = rng.random()
            pref_ai = None if u < p.ties else bool(rng.random() < p.preference)
            a_is_ai = r.read_a.arm.is_ai
            pref = "none" if pref_ai is None else ("A" if pref_ai == a_is_ai else "B")
            answer = {"quality_a": q[r.read_a_id], "quality_b": q[r.read_b_id], "preference": pref}
        if trial.ask_blinding_guess:
            answer["blinding_guess"] = _guess(rng, p, r)
        rating_services.submit_rating(user, r, answer)
    log(f"{len(ratings)} ratings submitted")

    if p.lock:
        trial = services.advance_status(coord, trial, Trial.Status.LOCKED, reason="Simulation complete")
        log(f"Trial {p.code} locked")
    # The realised random effects, so a test can tell sampling error from bias.
    effects = {
        "reader_quality": {m.user.username: float(reader_q[j]) for j, m in enumerate(readers)},
        "reader_log_time": {m.user.username: float(reader_t[j]) for j, m in enumerate(readers)},
        "expert_quality": {m.user.username: float(expert_q[j]) for j, m in enumerate(experts)},
        "center_quality": {c.code: float(center_q[k]) for k, c in enumerate(centers)},
        "center_log_time": {c.code: float(center_t[k]) for k, c in enumerate(centers)},
    }
    return {"trial": trial, "params": {k: v for k, v in asdict(p).items() if k != "password"},
            "reads": len(reads), "unassigned_reads": unassigned, "ratings": len(ratings),
            "readers": Membership.objects.filter(trial=trial, role="reader").count(), "effects": effects}
