"""The three-arm demo (issue 20): two model versions and unassisted reading, run end to end through the same
services as real use: setup, allocation, enrolment, drafts (Celery tasks; in-process without a broker), reads,
rating pairs drawn uniformly among the case's three reports, ratings, lock, and the analysis with the arena ranking
and the declared multi-arm primary analysis (docs/primary_analysis.md, "Three or more arms").

The two model versions are the retrieval baseline with two settings (k = 10 and k = 3 nearest neighbours for the
finding probabilities); both are labelled as baselines. They give the same report text for a case (the nearest
bank entry) and differ in their finding calls, so readers' reports differ through what they were shown and what
they changed. The standalone arena (docs/ai-evaluation.md) then compares the two versions' drafts of every case,
judged by the experts. ``manage.py seed_demo --arms 3`` seeds it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from analysis.models import AnalysisRun
from analysis.services import request_analysis, run_dir
from imaging.services import import_file
from inference.models import ModelVersion
from inference.selectors import arena_model_versions
from inference.services import register_model_version
from rating import services as rating_services
from rating.models import ArenaTask, Rating
from reading.models import Read
from trial import services
from trial.models import Trial

from .seed import DEMO_PASSWORD, _user, enrol_cases, seed_cases, submit_demo_read

THREE_ARM_CODE = "DEMO-CXR3"
#: (arm code, arm name, model version name, generation params, mean expert quality score of its reports)
AI_ARMS = (
    ("baseline_k10", "Retrieval baseline, k = 10", "retrieval-baseline-k10", {"k": 10}, 4.4),
    ("baseline_k3", "Retrieval baseline, k = 3", "retrieval-baseline-k3", {"k": 3}, 4.15),
)
CONTROL_QUALITY = 3.9
PREFIX = "arena3"


@dataclass
class ThreeArmDemo:
    trial: Trial
    logins: dict[str, str] = field(default_factory=dict)
    created: bool = True
    analysis: AnalysisRun | None = None
    arena_judgements: int = 0  #: the standalone arena's submitted judgements
    arena_versions: int = 0  #: the model versions the arena compares

    def __post_init__(self) -> None:
        self.arena_judgements = ArenaTask.objects.filter(case__trial=self.trial,
                                                         status=ArenaTask.Status.DONE).count()
        self.arena_versions = len(arena_model_versions(self.trial))


def _model_version(name: str, params: dict) -> ModelVersion:
    mv = ModelVersion.objects.filter(name=name).first()
    return mv or register_model_version(name=name, backend=ModelVersion.Backend.RETRIEVAL, generation_params=params)


def seed_three_arm_people(n_centers: int = 2) -> Trial:
    """Coordinator, two centers, three arms (unassisted + two baseline versions), readers at each center until
    each arm has one there, five experts, the statistician."""
    coord = _user("coordinator", first_name="Casey", last_name="Coordinator")
    coord.is_staff = True
    coord.save(update_fields=["is_staff"])
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    coord = type(coord).objects.get(pk=coord.pk)
    trial = services.create_trial(
        coord, code=THREE_ARM_CODE, title="Demo: two report-generator versions against unassisted reading",
        design=Trial.Design.PAIRED_BY_CASE, expert_panel_size=5, preference_majority=3,
        allow_retrieval_baseline=True, ask_blinding_guess=False,  # "which report had AI help?" has two AI arms here
    )
    centers = [services.add_center(coord, trial, code=f"c{i + 1}", name=name)
               for i, name in enumerate(["North Hospital", "River Clinic", "Hill Medical Center"][:n_centers])]
    services.add_arm(coord, trial, code="unassisted", name="Standard care")
    for code, name, mv_name, params, _q in AI_ARMS:
        services.add_arm(coord, trial, code=code, name=name, is_ai=True, model_version=_model_version(mv_name, params))
    for j in range(5):  # five experts rate every case: more judgements for the arena
        services.add_member(coord, trial, user=_user(f"{PREFIX}-expert{j + 1}"), role="expert",
                            center=centers[j % len(centers)])
    services.add_member(coord, trial, user=_user("statistician"), role="statistician")
    services.generate_allocation_list(coord, trial, seed="demo-three-arm", block_sizes=[3, 6], slots_per_stratum=24)
    services.advance_status(coord, trial, Trial.Status.ENROLLING, reason="demo")
    n = 0
    for c in centers:
        # Readers are randomised in blocks of 3 or 6: enrol them one by one until the center has a reader in each
        # arm (3 to 6 readers), so that every case is read in all three arms.
        arms_here: set[int] = set()
        while len(arms_here) < 3 and n < 6 * len(centers):
            n += 1
            m = services.add_member(coord, trial, user=_user(f"{PREFIX}-reader{n}"), role="reader", center=c,
                                    experience="senior" if n % 3 == 2 else "junior")
            m = services.enrol_reader(coord, m) or m
            m.refresh_from_db()
            arms_here.add(m.arm_id)
    services.advance_status(coord, trial, Trial.Status.READING, reason="demo: cases are enrolled after")
    return trial


def refuse_one_file(trial: Trial) -> None:
    """A file the import refuses (a 16 x 16 cervical-spine radiograph: too small), so the CONSORT flow shows a
    refused input by its reason."""
    coord = trial.memberships.get(role="coordinator").user
    name = "pydicom_CR_cspine_MONO1_16x16.dcm"
    data = (Path(settings.BASE_DIR) / "fixtures" / "dicom" / name).read_bytes()
    r = import_file(coord, trial, trial.centers.order_by("code").first(), name, data)
    if r.status != "refused":
        raise RuntimeError(f"Demo file {name} was expected to be refused, got {r.status}")


def read_all(trial: Trial) -> int:
    """Every read submitted through the reading services (the AI-arm readers mostly keep the draft they were
    shown), with demo durations."""
    rng = np.random.default_rng(21)
    clock = timezone.now() - timedelta(days=2)
    n = 0
    for m in trial.memberships.filter(role="reader").select_related("user", "arm").order_by("user__username"):
        for read in Read.objects.filter(reader=m).select_related("case__trial", "arm").order_by("order_key"):
            submit_demo_read(m.user, read, rng, clock)
            n += 1
    return n


def rate_all(trial: Trial) -> int:
    """Every rating task answered through the rating services; quality depends on the arm (the demo's truth:
    k10 > k3 > unassisted), the preference follows quality, ties when equal."""
    rng = np.random.default_rng(23)
    means = {code: q for code, _n, _mv, _p, q in AI_ARMS}
    n = 0
    for r in (Rating.objects.filter(case__trial=trial).select_related("expert__user", "read_a__arm", "read_b__arm")
              .order_by("order_key")):
        rating_services.open_rating(r.expert.user, r)
        q = {x.pk: int(np.clip(round(rng.normal(means.get(x.arm.code, CONTROL_QUALITY), 0.6)), 1, 5))
             for x in (r.read_a, r.read_b)}
        diff = q[r.read_a_id] - q[r.read_b_id]
        pref = "A" if diff > 0 else "B" if diff < 0 else "none"
        rating_services.submit_rating(r.expert.user, r, {"quality_a": q[r.read_a_id], "quality_b": q[r.read_b_id],
                                                         "preference": pref})
        n += 1
    return n


def judge_arena(trial: Trial) -> int:
    """The standalone arena through the rating services: the coordinator draws its tasks (the arena's versions are
    the AI arms' by default: the two baselines), each expert opens and judges theirs. The two versions' drafts of a
    case share their text, so the judgements follow the demo's truth as the ratings do (k10 > k3): each draft gets a
    noisy quality from its version's mean, the better one is preferred, a tie when equal. Returns the judgements."""
    coord = trial.memberships.get(role="coordinator").user
    rating_services.create_arena_tasks(actor=coord, trial=trial)
    rng = np.random.default_rng(29)
    means = {mv_name: q for _c, _n, mv_name, _p, q in AI_ARMS}
    n = 0
    for task in (ArenaTask.objects.filter(case__trial=trial)
                 .select_related("expert__user", "draft_a__model_version", "draft_b__model_version")
                 .order_by("order_key", "public_id")):
        user = task.expert.user
        rating_services.open_arena_task(user, task)
        qa, qb = (int(np.clip(round(rng.normal(means.get(d.model_version.name, CONTROL_QUALITY), 0.6)), 1, 5))
                  for d in (task.draft_a, task.draft_b))
        pref = "A" if qa > qb else "B" if qb > qa else "tie"
        rating_services.submit_arena_task(user, task, {"preference": pref, "quality_a": qa, "quality_b": qb})
        n += 1
    return n


def seed_three_arm_demo(n_cases: int = 12, lock: bool = True, analyse: bool = True) -> ThreeArmDemo:
    """The three-arm demo trial end to end (idempotent: an existing one is returned as it is). ``lock`` locks it
    after the ratings; ``analyse`` then runs the analysis as the statistician (a Celery task; in-process without a
    broker) and returns the run."""
    existing = Trial.objects.filter(code=THREE_ARM_CODE).first()
    if existing is not None:
        return ThreeArmDemo(existing, three_arm_logins(), created=False,
                            analysis=AnalysisRun.objects.filter(trial=existing).order_by("pk").last())
    trial = seed_three_arm_people()
    seed_cases(trial, n_cases)
    refuse_one_file(trial)
    enrol_cases(trial, leave_open=0)
    read_all(trial)
    rate_all(trial)
    judge_arena(trial)
    run = None
    if lock:
        trial = lock_trial(trial)
        if analyse:
            run = analyse_as_statistician(trial)
    return ThreeArmDemo(trial, three_arm_logins(), analysis=run)


def lock_trial(trial: Trial) -> Trial:
    coord = trial.memberships.get(role="coordinator").user
    trial = services.advance_status(coord, trial, Trial.Status.RATING, reason="demo")
    return services.advance_status(coord, trial, Trial.Status.LOCKED, reason="demo complete")


def analyse_as_statistician(trial: Trial) -> AnalysisRun:
    """An analysis run requested by the statistician (the task runs in-process without a broker)."""
    stat = trial.memberships.get(role="statistician").user
    return AnalysisRun.objects.get(pk=request_analysis(stat, trial).pk)


def three_arm_logins() -> dict[str, str]:
    return {"coordinator": "coordinator", "reader": f"{PREFIX}-reader1", "expert": f"{PREFIX}-expert1",
            "statistician": "statistician"}


def results_path(run: AnalysisRun) -> Path:
    """results.json of an analysis run."""
    return run_dir(run) / "report" / "results.json"


__all__ = ["THREE_ARM_CODE", "AI_ARMS", "DEMO_PASSWORD", "ThreeArmDemo", "seed_three_arm_demo", "judge_arena",
           "lock_trial", "analyse_as_statistician", "results_path"]
