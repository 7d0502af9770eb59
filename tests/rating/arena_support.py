"""Test data for the standalone arena (issue 20 item 1): a trial whose arena has several model versions with ready
drafts of every case."""
from __future__ import annotations

from inference.models import Draft, ModelVersion, OodAction
from inference.selectors import arm_model_version
from inference.services import register_model_version, set_arena_model_versions
from rating.models import ArenaTask
from tests.factories.rating import rating_trial
from tests.factories.reading import ready_draft

# Each version writes in its own words (the expert sees them normalised, never the version's name).
VERSION_TEXT = [
    ("Heart size is normal. Lungs are clear.", "No acute abnormality."),
    ("Cardiac silhouette within normal limits. No consolidation.", "Normal chest radiograph."),
    ("Normal heart size. No pleural effusion.", "No acute cardiopulmonary process."),
    ("Heart normal. Lungs clear. No effusion.", "Unremarkable study."),
]


def arena_versions(t: dict, n: int) -> list[ModelVersion]:
    """The AI arm's version plus n - 1 registered ones (names a blinding test can search for)."""
    base = arm_model_version(t["arms"]["ai_assisted"])
    code = t["trial"].code.lower()
    extra = [register_model_version(name=f"zz-{code}-secretmodel-{i}", backend="retrieval") for i in range(1, n)]
    return [base, *extra]


def arena_trial(code: str = "AR", versions: int = 3, cases: int = 6, experts: int = 3, panel: int = 2,
                **kw) -> dict:
    """An arena of ``versions`` model versions, each with a ready draft of every case."""
    t = rating_trial(code=code, experts=experts, panel=panel, cases=cases, ai_model=True, **kw)
    mvs = arena_versions(t, versions)
    set_arena_model_versions(actor=t["coordinator"], trial=t["trial"], model_versions=mvs)
    for c in t["cases"]:
        for i, mv in enumerate(mvs):
            f, imp = VERSION_TEXT[i % len(VERSION_TEXT)]
            ready_draft(c, mv, findings_text=f, impression_text=imp)
    t["versions"] = mvs
    return t


def tasks_of(membership) -> list[ArenaTask]:
    return list(ArenaTask.objects.filter(expert=membership).select_related("draft_a", "draft_b").order_by("pk"))


def spoil_drafts(t: dict) -> None:
    """One draft of each kind the arena leaves out, on the first two cases: failed, queued, withheld, empty,
    missing (an arena of three versions or more)."""
    cases, v = t["cases"], t["versions"]
    Draft.objects.filter(case=cases[0], model_version=v[0]).update(status=Draft.Status.FAILED)
    Draft.objects.filter(case=cases[0], model_version=v[1]).update(status=Draft.Status.QUEUED)
    Draft.objects.filter(case=cases[1], model_version=v[0]).update(ood_action=OodAction.WITHHELD)
    Draft.objects.filter(case=cases[1], model_version=v[1]).update(findings_text=" ", impression_text="")
    Draft.objects.filter(case=cases[1], model_version=v[2]).delete()
