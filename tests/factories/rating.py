"""Test data for rating: trials with experts, reads submitted through the reading services (issue 6)."""
from __future__ import annotations

import datetime as dt
import random

from inference.selectors import arm_model_version
from rating.models import Rating
from reading.models import Read
from tests.factories.trial import add_cases, make_trial
from trial import services
from trial.models import Case, Signature, Trial
from trial.signatures import SignatureInput

SENTENCES = [
    "Heart size is normal",
    "The mediastinum is not widened",
    "No pleural effusion or pneumothorax",
    "Small left pleural effusion",
    "Patchy opacity in the right lower zone, e.g. consolidation",
    "Mild bibasal atelectasis",
    "ET tube tip 4 cm above the carina",
    "The cardiac silhouette is enlarged",
    "Degenerative change at T12",
    "No focal consolidation",
    "Lungs are clear",
]
IMPRESSIONS = ["No acute cardiopulmonary abnormality", "Findings suggest pneumonia", "Cardiomegaly",
               "Small pleural effusion", "Stable appearances"]
EXTRA = "Follow-up radiograph recommended"
FIXED_READ_TIME = dt.datetime(2023, 2, 17, 13, 47, 29, tzinfo=dt.UTC)  # distinctive: any leak of it is findable


def rating_trial(code="RT", design=Trial.Design.PAIRED_BY_CASE, experts=3, panel=2, cases=4, off_center=False,
                 ai_model=False, secret: str | None = None, **kw) -> dict:
    t = make_trial(code=code, design=design, experts=experts, ai_model=ai_model, expert_panel_size=panel,
                   preference_majority=panel // 2 + 1, experts_off_own_center=off_center, **kw)
    if secret is not None:
        Trial.objects.filter(pk=t["trial"].pk).update(secret=secret)
        t["trial"].refresh_from_db()
    if design == Trial.Design.CASE_RANDOMISED:  # readers have no arm; they are enrolled to take reads
        t["readers"] = [services.enrol_reader(t["coordinator"], m) for m in t["readers"]]
    t["cases"] = add_cases(t, cases) if cases else []
    return t


def draft_style(sentences: list[str]) -> str:
    """A model draft's look: upper case, bullets, ragged spacing, no final stops."""
    return "FINDINGS:\n" + "\n".join(f"-  {s.upper()}  " for s in sentences)


def prose_style(sentences: list[str], rng: random.Random) -> str:
    style = rng.choice(["prose", "numbered", "lower"])
    if style == "numbered":
        return "\n".join(f"{i}. {s}." for i, s in enumerate(sentences, start=1))
    if style == "lower":
        return " ".join(s.lower() + "." for s in sentences)
    return ".  ".join(sentences) + "."


def _ensure_draft_ready(read: Read) -> None:
    from inference.models import Draft

    mv = arm_model_version(read.arm)
    if read.arm.is_ai and mv is not None:
        Draft.objects.update_or_create(
            case=read.case, model_version=mv,
            defaults={"status": Draft.Status.READY, "findings_text": "HEART SIZE IS NORMAL",
                      "impression_text": "NO ACUTE ABNORMALITY", "probabilities": {}},
        )


def submit_read(read: Read, findings: str = "Lungs are clear.", impression: str = "Normal chest.",
                marks: dict | None = None, when: dt.datetime | None = None, sign: str | None = None) -> Read:
    """Submit a read through the reading services as its reader (open, then submit); submit_read calls
    rating_services.on_read_submitted. `when` rewrites the read's times afterwards (distinctive values that a
    blinding test can search for). `sign`: the reader's password, where the trial signs each submission."""
    from reading import services as reading_services

    read = Read.objects.select_related("arm__model_assignment__model_version", "case__trial",
                                       "reader__user").get(pk=read.pk)
    _ensure_draft_ready(read)
    actor = read.reader.user
    codes = read.case.trial.finding_codes
    data = {
        "findings_text": findings,
        "impression_text": impression,
        "finding_marks": marks or {c: {"present": False, "confidence": 4} for c in codes},
    }
    reading_services.open_read(actor, read)
    signature = SignatureInput(sign, Signature.Meaning.AUTHORSHIP) if sign else None
    read, _ = reading_services.submit_read(actor, read, data, seconds=0, signature=signature)
    if when is not None:
        Read.objects.filter(pk=read.pk).update(
            opened_at=when - dt.timedelta(seconds=140), last_heartbeat_at=when - dt.timedelta(seconds=2),
            autosaved_at=when - dt.timedelta(seconds=3), submitted_at=when, active_seconds=987.654,
        )
        read.refresh_from_db()
    return read


def complete_case(case: Case, rng: random.Random | None = None, extra_for_ai: bool = False,
                  when: dt.datetime | None = None, sign: str | None = None) -> list[Read]:
    """Submit all reads of a case with the same content in arm-typical styles."""
    rng = rng or random.Random(case.pk)
    body = rng.sample(SENTENCES, rng.randint(2, 5))
    imp = [rng.choice(IMPRESSIONS)]
    out = []
    for read in Read.objects.filter(case=case).select_related("arm").order_by("session", "pk"):
        if read.arm.code == "ai_assisted":
            findings = draft_style(body + ([EXTRA] if extra_for_ai else []))
            impression = "IMPRESSION: " + imp[0].upper()
        else:
            findings, impression = prose_style(body, rng), prose_style(imp, rng)
        out.append(submit_read(read, findings, impression, when=when, sign=sign))
    return out


def tasks_of(t: dict, expert_index: int = 0) -> list[Rating]:
    return list(Rating.objects.filter(expert=t["experts"][expert_index]).order_by("order_key"))


GOOD = {"preference": "A", "quality_a": 4, "quality_b": 3, "comment": "Clear."}
