"""The out-of-distribution check through the real path: cases enrolled, drafts made by a real Celery worker on
Redis (the retrieval baseline: no weights), the result on the draft, in the AI-arm reader's payload and page,
in the export and in the CONSORT flow. Blank, white and noise pictures are withheld (or marked, by the trial's
setting); a real chest radiograph (fixtures/cxr-png, NIH ChestX-ray14) is not."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import redis
from django.urls import reverse
from PIL import Image as PILImage

from analysis.export import build_export
from analysis.pipeline import consort_flow
from config.celery import app
from imaging.dicom.rendition import make_rendition
from inference.models import Draft, OodAction
from reading import selectors as reading_selectors
from reading import services as reading_services
from reading.models import Read
from tests.factories.imaging import add_picture
from tests.factories.trial import make_trial
from tests.inference.test_ood import _variants
from tests.processes import CeleryWorker, wait_until
from trial import services

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REPORT = "Findings: The lungs are clear. No effusion.\nImpression: No acute disease."


def _png(name: str) -> PILImage.Image:
    with PILImage.open(FIXTURES / "cxr-png" / name) as im:
        return im.convert("L")


def _dicom(name: str) -> PILImage.Image:
    r = make_rendition(pydicom.dcmread(FIXTURES / "dicom" / name))
    return PILImage.open(io.BytesIO(r.display_png)).convert("L")


PICTURES = {
    "BLANK": lambda: PILImage.new("L", (512, 512), 0),
    "WHITE": lambda: PILImage.new("L", (512, 512), 255),
    "NOISE": lambda: PILImage.fromarray(np.random.default_rng(7).integers(0, 256, (512, 512)).astype(np.uint8)),
    "CHEST": lambda: _png("00027426_000.png"),
}
EXPECTED = {"BLANK": "blank", "WHITE": "all_white", "NOISE": "noise"}


@pytest.fixture
def broker(redis_url, settings):
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    old = {k: app.conf.get(k) for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    settings.CELERY_BROKER_URL = redis_url
    app._pool, app.amqp._producer_pool = None, None
    yield r
    app.conf.update(**old)
    app._pool, app.amqp._producer_pool = None, None
    r.flushdb()


def _enrol(t: dict, code: str, picture: PILImage.Image, **kw):
    case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=code)
    add_picture(case, picture, **kw)
    return services.enrol_case(t["coordinator"], case)


def _wait_drafts(cases, worker) -> dict[str, Draft]:
    ids = [c.pk for c in cases]
    wait_until(lambda: Draft.objects.filter(case__in=ids, status__in=["ready", "failed"]).count() == len(ids), 180,
               "the drafts", worker.log)
    drafts = {d.case.code: d for d in Draft.objects.filter(case__in=ids).select_related("case", "model_version")}
    assert all(d.status == "ready" for d in drafts.values()), {c: d.error for c, d in drafts.items()}
    return drafts


def _ai_read(case) -> Read:
    return Read.objects.select_related("arm", "reader__user", "case__trial").get(case=case, arm__is_ai=True)


def test_worker_withholds_drafts_of_blank_white_and_noise_images_and_not_of_a_chest(broker, redis_url, tmp_path,
                                                                                    client):
    t = make_trial(code="OODW", ood_action="withhold")
    worker = CeleryWorker(redis_url, tmp_path / "worker.log")
    try:
        cases = [_enrol(t, code, make()) for code, make in PICTURES.items()]
        lateral = _enrol(t, "LAT", _png("00000001_000.png"), view_position="LL")
        drafts = _wait_drafts([*cases, lateral], worker)
    finally:
        worker.stop()
    for code, reason in EXPECTED.items():
        d = drafts[code]
        assert d.ood_action == OodAction.WITHHELD and reason in d.ood_reasons, (code, d.ood_reasons, d.ood)
        assert d.ood_score > 1.0 and d.ood["threshold"] == 1.0
        assert d.findings_text  # the draft itself is kept (standalone accuracy), only not shown
    chest = drafts["CHEST"]
    assert chest.ood_action == "" and chest.ood_reasons == [] and chest.ood_score < 1.0, chest.ood
    assert chest.ood["mahalanobis"]["computed"] is False  # this trial has no reference cases
    assert drafts["LAT"].ood_reasons == ["lateral_only"] and drafts["LAT"].ood_action == OodAction.WITHHELD

    # The AI-arm reader: a withheld draft shows no text, no probabilities, and the warning; the form is empty.
    blank = _ai_read(cases[0])
    blank = reading_services.open_read(blank.reader.user, blank)
    assist = reading_selectors.read_payload(blank)["draft"]
    assert assist["findings_text"] == "" and assist["impression_text"] == "" and assist["probabilities"] == {}
    assert assist["ood"]["action"] == "withheld" and "blank" in assist["ood"]["warning"]
    assert blank.findings_text == "" and blank.draft_id == drafts["BLANK"].pk
    # Nor are its present/absent calls pre-filled (trial setting prefill_draft_findings is on by default).
    assert t["trial"].prefill_draft_findings and blank.prefilled_marks == {} and not blank.finding_marks
    client.force_login(blank.reader.user)
    page = client.get(reverse("reading:read", args=[t["trial"].code, blank.public_id])).content.decode()
    assert "The AI draft is withheld" in page and "The form starts from the AI draft" not in page
    ok = _ai_read(cases[3])
    ok = reading_services.open_read(ok.reader.user, ok)
    client.force_login(ok.reader.user)
    page = client.get(reverse("reading:read", args=[t["trial"].code, ok.public_id])).content.decode()
    assert "ood-warning" not in page and "The form starts from the AI draft" in page
    assert reading_selectors.read_payload(ok)["draft"]["ood"] == {"action": "", "reasons": [], "warning": ""}
    assert ok.findings_text == chest.findings_text  # prefilled as before

    # Export and CONSORT flow: the out-of-distribution drafts are counted with their reasons.
    export = build_export(t["trial"])
    rows = {r["case_code"]: r for r in export.tables["drafts"]}
    assert rows["NOISE"]["ood_action"] == "withheld" and "noise" in rows["NOISE"]["ood_reasons"].split(";")
    assert rows["CHEST"]["ood_action"] == "" and rows["CHEST"]["ood_score"] != ""
    flow = consort_flow({k: pd.DataFrame(v) for k, v in export.tables.items()}, ["x", "y"])
    ood_flow = flow.drafts_out_of_distribution  # typed: analysis.pipeline.OODFlow
    assert ood_flow.cases_withheld == 4 and ood_flow.cases_marked == 0
    assert ood_flow.reasons == {"blank": 1, "all_white": 1, "noise": 1, "lateral_only": 1}


def test_worker_marks_by_default_and_measures_the_distance_from_the_trials_reference(broker, redis_url, tmp_path):
    # Reference cases (reference report and images, not enrolled): crops, rotations and contrast changes of a real
    # chest radiograph and of three chest DICOM renditions (fixtures/). The new chest is the other real radiograph.
    t = make_trial(code="OODM")
    assert t["trial"].ood_action == "mark"
    sources = [_png("00000001_000.png"), _dicom("SIIM_CR_chest_MONO2_jpeg_baseline.dcm"),
               _dicom("NIH_DX_chest_MONO2_implicitLE.dcm"), _dicom("RG1_CR_chest_MONO1_J2K_lossless.dcm")]
    for j, src in enumerate(sources):
        for i, v in enumerate(_variants(src, 3, j)):
            case = services.add_case(t["coordinator"], t["trial"], center=t["centers"][0], code=f"REF{j}{i}")
            case.reference_report = REPORT
            case.save(update_fields=["reference_report"])
            add_picture(case, v)
    worker = CeleryWorker(redis_url, tmp_path / "worker.log")
    try:
        cases = [_enrol(t, code, make()) for code, make in PICTURES.items()]
        drafts = _wait_drafts(cases, worker)
    finally:
        worker.stop()
    for code, reason in EXPECTED.items():
        d = drafts[code]
        assert d.ood_action == OodAction.MARKED and reason in d.ood_reasons, (code, d.ood)
        assert d.ood["mahalanobis"]["computed"] and d.ood["mahalanobis"]["n"] == 12
    chest = drafts["CHEST"]
    assert chest.ood_action == "" and chest.ood_reasons == [], chest.ood
    assert chest.ood["mahalanobis"]["computed"] and chest.ood["components"]["mahalanobis"] < 1.0
    for code in ("BLANK", "NOISE"):  # the embedding alone also places them outside the reference
        assert drafts[code].ood["components"]["mahalanobis"] > 1.0
        assert "embedding_outlier" in drafts[code].ood_reasons
    marked = _ai_read(cases[2])
    marked = reading_services.open_read(marked.reader.user, marked)
    assist = reading_selectors.read_payload(marked)["draft"]
    assert assist["findings_text"] == drafts["NOISE"].findings_text  # marked: shown, with the warning
    assert assist["ood"]["action"] == "marked" and assist["ood"]["warning"].startswith("Caution")
