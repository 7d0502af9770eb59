"""Helpers for rating tests: trials with experts, submitted reads, images (issue 6)."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import random

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from imaging.models import Image
from rating.models import Rating
from reading.models import Read
from tests.factories import add_cases, make_trial
from trial import services
from trial.models import Case, Trial

# The same clinical content in two surface styles: what a model draft edited by a reader looks like, and what an
# unaided reader writes. After normalisation both must read the same.
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

    mv = read.arm.model_version
    if read.arm.is_ai and mv is not None:
        Draft.objects.update_or_create(
            case=read.case, model_version=mv,
            defaults={"status": Draft.Status.READY, "findings_text": "HEART SIZE IS NORMAL",
                      "impression_text": "NO ACUTE ABNORMALITY", "probabilities": {}},
        )


def submit_read(read: Read, findings: str = "Lungs are clear.", impression: str = "Normal chest.",
                marks: dict | None = None, when: dt.datetime | None = None) -> Read:
    """Submit a read through the reading services as its reader (open, then submit); submit_read calls
    rating_services.on_read_submitted. `when` rewrites the read's times afterwards (distinctive values that a
    blinding test can search for)."""
    from reading import services as reading_services

    read = Read.objects.select_related("arm__model_version", "case__trial", "reader__user").get(pk=read.pk)
    _ensure_draft_ready(read)
    actor = read.reader.user
    codes = read.case.trial.finding_codes
    data = {
        "findings_text": findings,
        "impression_text": impression,
        "finding_marks": marks or {c: {"present": False, "confidence": 4} for c in codes},
    }
    reading_services.open_read(actor, read)
    read, _ = reading_services.submit_read(actor, read, data, seconds=0)
    if when is not None:
        Read.objects.filter(pk=read.pk).update(
            opened_at=when - dt.timedelta(seconds=140), last_heartbeat_at=when - dt.timedelta(seconds=2),
            autosaved_at=when - dt.timedelta(seconds=3), submitted_at=when, active_seconds=987.654,
        )
        read.refresh_from_db()
    return read


def complete_case(case: Case, rng: random.Random | None = None, extra_for_ai: bool = False,
                  when: dt.datetime | None = None) -> list[Read]:
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
        out.append(submit_read(read, findings, impression, when=when))
    return out


def png_bytes(size: int = 384, seed: int = 0) -> bytes:
    """A synthetic chest-radiograph-like picture (body, lungs, heart, spine, ribs): no real patient data."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFilter

    rng = random.Random(seed)
    s = size
    img = PILImage.new("L", (s, s), 12)
    d = ImageDraw.Draw(img)
    d.ellipse((0.06 * s, 0.04 * s, 0.94 * s, 1.25 * s), fill=150)  # soft tissue
    for x0, x1 in ((0.14, 0.47), (0.53, 0.86)):  # lungs
        d.ellipse((x0 * s, 0.14 * s, x1 * s, 0.86 * s), fill=52 + rng.randint(0, 10))
    for i in range(9):  # ribs
        y = (0.2 + 0.07 * i) * s
        for x0, x1 in ((0.12, 0.49), (0.51, 0.88)):
            d.arc((x0 * s, y - 0.06 * s, x1 * s, y + 0.1 * s), 200, 340, fill=95, width=max(2, s // 90))
    d.rectangle((0.475 * s, 0.0, 0.525 * s, s), fill=185)  # spine
    d.ellipse((0.38 * s, 0.48 * s, 0.7 * s + rng.randint(0, s // 20), 0.84 * s), fill=165)  # heart
    d.line((0.2 * s, 0.16 * s, 0.46 * s, 0.2 * s), fill=190, width=s // 40)  # clavicles
    d.line((0.54 * s, 0.2 * s, 0.8 * s, 0.16 * s), fill=190, width=s // 40)
    img = img.filter(ImageFilter.GaussianBlur(s / 110))
    noise = PILImage.effect_noise((s, s), 9).point(lambda v: v - 128)
    img = PILImage.eval(PILImage.blend(img, noise.convert("L"), 0.04), lambda v: v)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def add_image(case: Case, seed: int = 0) -> Image:
    data = png_bytes(seed=seed)
    sha = hashlib.sha256(data + str(case.pk).encode()).hexdigest()
    display = default_storage.save(f"images/{case.trial_id}/{sha}-display.png", ContentFile(data))
    full = default_storage.save(f"images/{case.trial_id}/{sha}-full.png", ContentFile(data))
    return Image.objects.create(
        case=case, source_sha256=sha, sha256=sha, dicom_file=f"images/{case.trial_id}/{sha}.dcm",
        display_file=display, full_range_file=full, sop_instance_uid=f"2.25.{int(sha[:16], 16)}", modality="DX",
        view_position="PA", rows=384, columns=384, bits_allocated=16, bits_stored=12,
        photometric_interpretation="MONOCHROME2",
        display={"min": 0, "max": 255, "window_center": 128, "window_width": 256},
    )


def tasks_of(t: dict, expert_index: int = 0) -> list[Rating]:
    return list(Rating.objects.filter(expert=t["experts"][expert_index]).order_by("order_key"))


GOOD = {"preference": "A", "quality_a": 4, "quality_b": 3, "comment": "Clear."}
