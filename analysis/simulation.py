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

Outcomes follow the one trial model of :mod:`analysis.stats.synthetic` (``TrialScenario``; also used by
``python -m analysis power`` and ``benchmarks/calibration.py``): report quality with reader, case, report (reader x
case) and expert effects, experts preferring the report they perceive as better (ties inside a band), log reading
time with reader and case effects. The structure (who reads what) comes from the services' own allocation.
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
from trial.models import Case, Center, Membership, Trial
from trial.models import default_findings as trial_findings

from .stats.synthetic import TrialScenario, draw_effects, judge_reports, log_seconds, report_quality

SIM_MODEL = "simulated-model-v1"


@dataclass
class SimulationParams:
    """A simulated trial: the counts, the true effects and variance components (see ``TrialScenario``)."""

    code: str = "SIM"
    cases: int = 120
    readers: int = 8
    centers: int = 2
    experts: int = 3
    design: str = Trial.Design.PAIRED_BY_CASE
    quality_shift: float = 0.24  # observed 1-5 scale, AI - control
    time_ratio: float = 0.82
    preference: float | None = None  # share of cases with a panel majority for AI; None: the default tie band
    reader_sd: float = 0.2
    case_sd: float = 0.35
    report_sd: float = 0.3
    expert_sd: float = 0.15
    residual_sd: float = 0.5
    time_reader_sd: float = 0.2
    time_case_sd: float = 0.2
    time_residual_sd: float = 0.25
    quality_control_mean: float = 4.11
    base_seconds: float = 146.6
    model_auc: float = 0.85
    prevalence: float = 0.3
    seed: int = 1
    lock: bool = True
    password: str | None = None
    # Blinding question (asked when either share is > 0): shares of right and of don't-know answers; the rest wrong.
    guess_right: float = 0.0
    guess_dont_know: float = 0.0

    def scenario(self) -> TrialScenario:
        """The shared trial model for these parameters (ValueError when the counts do not fit the design)."""
        sc = TrialScenario(
            design=str(self.design), n_cases=self.cases, n_readers=self.readers, n_centers=self.centers,
            n_experts=self.experts, quality_effect=self.quality_shift, quality_control_mean=self.quality_control_mean,
            time_ratio=self.time_ratio, time_control_seconds=self.base_seconds, sd_reader=self.reader_sd,
            sd_case=self.case_sd, sd_report=self.report_sd, sd_expert=self.expert_sd, sd_residual=self.residual_sd,
            sd_log_reader=self.time_reader_sd, sd_log_case=self.time_case_sd,
            sd_log_residual=self.time_residual_sd, model_auc=self.model_auc, prevalence=self.prevalence,
            findings=tuple(f["code"] for f in trial_findings())).validate()
        return sc.with_preference_share(self.preference) if self.preference is not None else sc


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
    """Create and run the whole simulated trial; returns counts, the parameters and the realised random effects."""
    if p.design not in Trial.Design.values:
        raise services.InvalidInput(f"design must be one of {', '.join(Trial.Design.values)}")
    try:
        sc = p.scenario()
    except ValueError as exc:  # counts that do not fit the design are refused, never silently dropped
        raise services.InvalidInput(str(exc)) from exc
    rng = np.random.default_rng(p.seed)
    coord, trial, readers, experts = _setup(p, log)
    truth, case_index = _cases(p, sc, coord, trial, rng)
    trial = services.advance_status(coord, trial, Trial.Status.READING, reason="simulation")
    log(f"{p.cases} cases enrolled with reference standard and model drafts")

    eff = draw_effects(sc, rng)
    reader_pos = {m.pk: j for j, m in enumerate(readers)}
    n_reads, unassigned, quality = _reads(p, sc, trial, truth, case_index, reader_pos, eff, rng)
    log(f"{n_reads} reads submitted ({unassigned} unassigned)")

    trial = services.advance_status(coord, trial, Trial.Status.RATING, reason="simulation")
    n_ratings = _ratings(p, sc, trial, experts, quality, eff, rng)
    log(f"{n_ratings} ratings submitted")
    if p.lock:
        trial = services.advance_status(coord, trial, Trial.Status.LOCKED, reason="Simulation complete")
        log(f"Trial {p.code} locked")
    # The realised random effects, so a test can tell sampling error from bias.
    effects = {
        "reader_quality": {m.user.username: float(eff.reader_q[j]) for j, m in enumerate(readers)},
        "reader_log_time": {m.user.username: float(eff.reader_t[j]) for j, m in enumerate(readers)},
        "expert_quality": {m.user.username: float(eff.expert_q[j]) for j, m in enumerate(experts)},
    }
    return {"trial": trial, "params": {k: v for k, v in asdict(p).items() if k != "password"},
            "scenario": sc.to_dict(), "truths": sc.truths(), "reads": n_reads, "unassigned_reads": unassigned,
            "ratings": n_ratings, "readers": Membership.objects.filter(trial=trial, role="reader").count(),
            "effects": effects}


def _setup(p: SimulationParams, log: Callable[[str], Any]) -> tuple[Any, Trial, list, list]:
    """People, centers, arms, allocation list and reader enrolment (trial.services)."""
    prefix = p.code.lower()
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
    trial = services.advance_status(coord, trial, Trial.Status.ENROLLING, reason="simulation")
    for m in readers:
        services.enrol_reader(coord, m)
    log(f"Trial {p.code}: {p.centers} centers, {p.readers} readers, {p.experts} experts enrolled")
    return coord, trial, readers, experts


def _cases(p: SimulationParams, sc: TrialScenario, coord, trial: Trial, rng: np.random.Generator
           ) -> tuple[dict[str, np.ndarray], dict[int, int]]:
    """Cases with reference standard and a ready draft each, enrolled (trial.services)."""
    findings = list(sc.findings)
    centers = list(Center.objects.filter(trial=trial).order_by("pk"))
    mv = ModelVersion.objects.get(name=SIM_MODEL)
    truth = {f: rng.random(p.cases) < p.prevalence for f in findings}
    d_model = math.sqrt(2) * norm.ppf(p.model_auc)  # binormal separation giving the target AUC
    case_index: dict[int, int] = {}
    for i in range(p.cases):
        case = services.add_case(coord, trial, center=centers[i % p.centers], code=f"{p.code}-{i + 1:05d}")
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
    return truth, case_index


def _marks(findings: list[str], truth: dict[str, np.ndarray], i: int, ai: bool, rng: np.random.Generator
           ) -> tuple[dict[str, Any], str]:
    sep = 2.2 if ai else 1.7
    marks, present = {}, []
    for f in findings:
        z = rng.normal(0, 1) + sep * truth[f][i]
        call = bool(z > sep / 2)
        marks[f] = {"present": call, "confidence": int(min(5, 1 + abs(z - sep / 2) * 2))}
        if call:
            present.append(f.replace("_", " "))
    text = "Simulated report. " + (", ".join(present).capitalize() if present else "No acute findings") + "."
    return marks, text


def _reads(p: SimulationParams, sc: TrialScenario, trial: Trial, truth: dict[str, np.ndarray],
           case_index: dict[int, int], reader_pos: dict[int, int], eff: Any, rng: np.random.Generator
           ) -> tuple[int, int, dict[int, float]]:
    """Open and submit every assigned read (reading.services); returns counts and each read's latent quality."""
    findings = list(sc.findings)
    reads = list(Read.objects.filter(case__trial=trial, reader__isnull=False)
                 .select_related("reader__user", "arm", "case").order_by("session", "case__code", "arm__code"))
    unassigned = Read.objects.filter(case__trial=trial, reader__isnull=True).count()
    case_i = np.array([case_index[r.case_id] for r in reads], dtype=int)
    reader_i = np.array([reader_pos[r.reader_id] for r in reads], dtype=int)
    arm_i = np.array([int(r.arm.is_ai) for r in reads], dtype=int)
    quality = report_quality(sc, case_i, reader_i, arm_i, eff, rng)
    secs_all = np.exp(log_seconds(sc, case_i, reader_i, arm_i, eff, rng))
    clock = {pk: timezone.now() - timedelta(days=60) for pk in reader_pos}
    for k, read in enumerate(reads):
        user = read.reader.user
        reading_services.open_read(user, read)
        marks, text = _marks(findings, truth, int(case_i[k]), bool(arm_i[k]), rng)
        reading_services.submit_read(user, read, {"findings_text": text, "impression_text": "Simulated impression.",
                                                  "finding_marks": marks})
        secs = float(secs_all[k])
        wall = secs * float(rng.uniform(1.05, 1.5))
        opened = clock[read.reader_id] + timedelta(seconds=float(rng.uniform(5, 60)))
        submitted = opened + timedelta(seconds=wall)
        clock[read.reader_id] = submitted
        # Direct write (simulation of elapsed time): the services use the real clock and accept none.
        Read.objects.filter(pk=read.pk).update(opened_at=opened, submitted_at=submitted, last_heartbeat_at=submitted,
                                               autosaved_at=submitted, active_seconds=round(secs, 3))
    return len(reads), unassigned, {r.pk: float(q) for r, q in zip(reads, quality, strict=True)}


def _ratings(p: SimulationParams, sc: TrialScenario, trial: Trial, experts: list, quality: dict[int, float],
             eff: Any, rng: np.random.Generator) -> int:
    """Every expert's rating task, answered by the shared expert model (rating.services)."""
    expert_pos = {m.pk: j for j, m in enumerate(experts)}
    ratings = list(Rating.objects.filter(case__trial=trial)
                   .select_related("expert__user", "read_a__arm", "read_b__arm", "read_a", "read_b")
                   .order_by("case__code", "expert__user__username"))
    for r in ratings:
        e = expert_pos[r.expert_id]
        if r.read_b_id is None:
            j = judge_reports(sc, np.array([quality[r.read_a_id]]), None, eff.expert_q[[e]], rng)
            answer: dict[str, Any] = {"quality_a": int(j["score_first"][0])}
        else:
            # The AI report first, as the model is written; A/B is the service's stored draw.
            ai_read, ctl_read = (r.read_a, r.read_b) if r.read_a.arm.is_ai else (r.read_b, r.read_a)
            j = judge_reports(sc, np.array([quality[ai_read.pk]]), np.array([quality[ctl_read.pk]]),
                              eff.expert_q[[e]], rng)
            q = {ai_read.pk: int(j["score_first"][0]), ctl_read.pk: int(j["score_second"][0])}
            pref_ai = int(j["preference"][0])
            a_is_ai = r.read_a_id == ai_read.pk
            pref = "none" if pref_ai == 0 else ("A" if (pref_ai == 1) == a_is_ai else "B")
            answer = {"quality_a": q[r.read_a_id], "quality_b": q[r.read_b_id], "preference": pref}
        if trial.ask_blinding_guess:
            answer["blinding_guess"] = _guess(rng, p, r)
        rating_services.open_rating(r.expert.user, r)
        rating_services.submit_rating(r.expert.user, r, answer)
    return len(ratings)
