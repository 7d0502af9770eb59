"""Similar cases of the trial's reference library (issue 21 item 2): the encoders (weight-free default; DenseNet
features from a tiny checkpoint the test writes) and the ranking; the library (flagged at the reference CSV, never
enrolled); the worker stores the neighbours with the draft; the AI-arm reader sees them, with the report and the
images, and nobody else does."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from django.urls import reverse
from PIL import Image as PILImage
from rest_framework.test import APIClient

from analysis.export import build_export
from core.errors import Conflict, InvalidInput
from imaging.services import import_reference_csv
from inference.backends.similar import ImageEncoder, XrvDenseNetEncoder, load_encoder, nearest
from inference.backends.xrv_densenet import build_xrv_densenet, save_state_dict_bytes, xrv_input
from inference.models import Draft, OodAction
from reading import services as reading_services
from reading.models import Read
from tests.factories.imaging import SAMPLE_PNGS, add_image, add_picture, png_bytes
from tests.factories.trial import add_cases, make_trial
from tests.inference.xrv_checkpoint import TINY
from trial import services
from trial.models import Case

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _chest(name: str = "00027426_000.png", size: int = 256) -> PILImage.Image:
    with PILImage.open(FIXTURES / "cxr-png" / name) as im:
        return im.convert("L").resize((size, size))


def _synthetic(seed: int, size: int = 256) -> PILImage.Image:
    return PILImage.open(io.BytesIO(png_bytes(size, seed=seed))).convert("L")


def _near_copy(im: PILImage.Image, seed: int = 1) -> PILImage.Image:
    arr = np.asarray(im, dtype=np.float64) + np.random.default_rng(seed).normal(0, 3, (im.height, im.width))
    return PILImage.fromarray(arr.clip(0, 255).astype(np.uint8))


# -- pure ---------------------------------------------------------------------------------------------------
def test_nearest_ranks_by_cosine_similarity_best_first_ties_by_order():
    lib = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 5.0]])
    got = nearest(np.array([0.0, 1.0]), lib, 3)
    assert [i for i, _s in got] == [1, 3, 2]  # 1 and 3 tie at 1.0: library order
    assert got[0][1] == pytest.approx(1.0) and got[2][1] == pytest.approx(np.sqrt(0.5))
    assert nearest(np.array([1.0, 0.0]), lib, 0) == [] and nearest(np.ones(2), np.zeros((0, 2)), 3) == []


def test_the_weight_free_encoder_finds_the_near_duplicate():
    enc = load_encoder("image")
    library = [_chest(), _chest("00000001_000.png"), _synthetic(3)]
    x = enc.embed(library)
    assert x.shape[0] == 3 and np.allclose(np.linalg.norm(x, axis=1), 1.0)
    for i, im in enumerate(library):
        best, score = nearest(enc.embed([_near_copy(im)])[0], x, 1)[0]
        assert best == i and score > 0.9
    with pytest.raises(ValueError, match="unknown similar-cases encoder"):
        load_encoder("clip")


def _tiny_checkpoint(path: Path) -> dict:
    torch.manual_seed(0)
    model = build_xrv_densenet(18, **TINY).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path.write_bytes(save_state_dict_bytes(state))
    return state


def test_the_densenet_encoder_gives_the_pooled_features_of_local_weights(tmp_path):
    weights = tmp_path / "tiny-densenet.pt"
    state = _tiny_checkpoint(weights)
    enc = load_encoder("xrv_densenet", str(weights))
    assert isinstance(enc, XrvDenseNetEncoder) and enc.version == f"tiny-densenet.pt:{weights.stat().st_size}"
    images = [_chest(), _chest("00000001_000.png"), _synthetic(3)]
    x = enc.embed(images)
    # The features as an independent model with the same tensors computes them, pooled and unit-normalised
    ref = build_xrv_densenet(18, **TINY).eval()
    ref.load_state_dict(state)
    with torch.inference_mode():
        batch = torch.from_numpy(np.stack([xrv_input(im) for im in images])[:, None])
        pooled = torch.relu(ref.features(batch)).mean(dim=(2, 3)).double().numpy()
    want = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    assert x.shape == want.shape and np.allclose(x, want, atol=1e-6)
    best, _score = nearest(enc.embed([_near_copy(images[1])])[0], x, 1)[0]
    assert best == 1
    assert ImageEncoder().embed([]).shape[0] == 0 and enc.embed([]).shape[0] == 0


# -- the library, the worker and the reader ----------------------------------------------------------------
REPORTS = {"LIB-A": "Findings: Large left pleural effusion.\nImpression: Effusion.",
           "LIB-B": "Findings: Clear lungs, normal heart.\nImpression: Normal chest.",
           "LIB-C": "Findings: Enlarged cardiac silhouette.\nImpression: Cardiomegaly."}


def _library_trial(code: str, k: int = 2, **settings) -> dict:
    """A trial that shows ``k`` similar cases: three library cases (one a near copy of the test cases' image),
    flagged through the reference CSV before enrolment, then one enrolled case (drafted eagerly)."""
    t = make_trial(code=code, centers=1, similar_cases_k=k, **settings)
    coord, trial = t["coordinator"], t["trial"]
    with PILImage.open(SAMPLE_PNGS[0]) as im:
        own = im.convert("L").resize((256, 256))
    pictures = {"LIB-A": _chest(), "LIB-B": _near_copy(own), "LIB-C": _synthetic(3)}
    lib = {}
    for code_, picture in pictures.items():
        case = services.add_case(coord, trial, center=t["centers"][0], code=code_)
        add_picture(case, picture)
        lib[code_] = case
    csv = "case,report,library\n" + "".join(f'{c},"{REPORTS[c]}",1\n' for c in pictures)
    result = import_reference_csv(coord, trial, csv)
    assert result.errors == [] and result.updated == 3
    t["library"] = {c: Case.objects.get(pk=v.pk) for c, v in lib.items()}
    t["cases"] = add_cases(t, 1, enrol=False)
    add_image(t["cases"][0], 256)
    services.enrol_case(coord, t["cases"][0])
    return t


def _client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


@pytest.mark.django_db(transaction=True)  # drafts are made on commit
def test_library_cases_are_never_enrolled_and_the_csv_flags_only_cases_not_enrolled():
    t = _library_trial("SIMLIB")
    coord, trial = t["coordinator"], t["trial"]
    assert all(c.library for c in t["library"].values())
    with pytest.raises(Conflict, match="reference library"):
        services.enrol_case(coord, t["library"]["LIB-A"])
    assert services.enrol_all_imported(coord, trial)[0] == 0  # the library is left out
    assert not Read.objects.filter(case__library=True).exists()
    bad = import_reference_csv(coord, trial, f"case,library\n{t['cases'][0].code},1\n")
    assert bad.errors and "enrolled" in bad.errors[0]["message"]
    bad = import_reference_csv(coord, trial, "case,library\nLIB-A,yes\n")
    assert "0, 1 or empty" in bad.errors[0]["message"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_stores_the_nearest_library_cases_and_only_the_ai_reader_sees_them(client):
    t = _library_trial("SIMW")
    case = t["cases"][0]
    draft = Draft.objects.get(case=case)
    assert draft.status == "ready", draft.error
    lib = t["library"]
    assert [n["case_id"] for n in draft.similar_cases] == [lib["LIB-B"].pk, lib["LIB-A"].pk]  # k = 2, best first
    assert draft.similar_cases[0]["score"] > 0.9 > draft.similar_cases[1]["score"]
    assert draft.similar_cases[0]["encoder"] == "image:tinyhog-v1"

    ai = Read.objects.select_related("reader__user").get(case=case, arm__is_ai=True)
    un = Read.objects.select_related("reader__user").get(case=case, arm__is_ai=False)
    reading_services.open_read(ai.reader.user, ai)
    body = _client(ai.reader.user).get(reverse("reading-api:detail", args=[ai.public_id])).json()
    similar = body["draft"]["similar_cases"]
    assert [s["rank"] for s in similar] == [1, 2]
    assert [s["report"] for s in similar] == [REPORTS["LIB-B"], REPORTS["LIB-A"]]
    assert similar[0]["score"] == round(draft.similar_cases[0]["score"], 3)
    assert "LIB-" not in str(similar)  # no case code
    image_url = similar[0]["images"][0]["display_url"]
    # The AI-arm reader may load the library case's image; the unassisted reader may not, and sees nothing of it
    client.force_login(ai.reader.user)
    assert client.get(image_url).status_code == 200
    page = client.get(reverse("reading:read", args=[t["trial"].code, ai.public_id])).content.decode()
    assert "Similar cases from the reference library (2)" in page and "Large left pleural effusion" in page
    client.force_login(un.reader.user)
    assert client.get(image_url).status_code in (403, 404)
    page = client.get(reverse("reading:read", args=[t["trial"].code, un.public_id])).content.decode()
    assert "similar" not in page.lower() and "pleural effusion." not in page
    body = _client(un.reader.user).get(reverse("reading-api:detail", args=[un.public_id])).json()
    assert "draft" not in body and "similar" not in str(body)

    # Off (k = 0): nothing shown, and the library's images are closed again
    services.update_trial_settings(t["coordinator"], t["trial"], reason="off", similar_cases_k=0)
    client.force_login(ai.reader.user)
    assert client.get(image_url).status_code in (403, 404)
    body = _client(ai.reader.user).get(reverse("reading-api:detail", args=[ai.public_id])).json()
    assert body["draft"]["similar_cases"] == []
    # A withheld draft shows none either
    services.update_trial_settings(t["coordinator"], t["trial"], reason="on", similar_cases_k=2)
    Draft.objects.filter(pk=draft.pk).update(ood_action=OodAction.WITHHELD, ood_reasons=["noise"])
    body = _client(ai.reader.user).get(reverse("reading-api:detail", args=[ai.public_id])).json()
    assert body["draft"]["similar_cases"] == []


@pytest.mark.django_db(transaction=True)
def test_the_densenet_encoder_from_local_weights_drives_the_worker(tmp_path):
    weights = tmp_path / "tiny-densenet.pt"
    _tiny_checkpoint(weights)
    t = _library_trial("SIMX", k=3, similar_cases_encoder="xrv_densenet", similar_cases_weights=str(weights))
    draft = Draft.objects.get(case=t["cases"][0])
    assert draft.status == "ready", draft.error
    assert len(draft.similar_cases) == 3
    assert draft.similar_cases[0]["case_id"] == t["library"]["LIB-B"].pk
    assert draft.similar_cases[0]["encoder"].startswith("xrv_densenet:tiny-densenet.pt:")


@pytest.mark.django_db
def test_the_similar_cases_settings_are_checked():
    t = make_trial(code="SIMSET", centers=1)
    for bad in ({"similar_cases_k": 11}, {"similar_cases_k": -1}, {"similar_cases_encoder": "clip"},
                {"similar_cases_encoder": "xrv_densenet"}):
        with pytest.raises(InvalidInput):
            services.update_trial_settings(t["coordinator"], t["trial"], reason="x", **bad)
    assert t["trial"].similar_cases_k == 0  # off by default


@pytest.mark.django_db(transaction=True)
def test_the_library_is_not_in_the_exported_cases_and_the_manifest_counts_it():
    t = _library_trial("SIMEXP")
    export = build_export(t["trial"])
    assert {r["case_code"] for r in export.tables["cases"]} == {t["cases"][0].code}
    assert export.manifest["reference_library"] == {"cases": 3, "similar_cases_shown": 2, "encoder": "image"}
