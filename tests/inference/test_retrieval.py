"""The weight-free retrieval baseline: embedding, report bank (IU X-ray reports), nearest neighbours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.backends import DEFAULT_FINDINGS, get_backend
from inference.backends.embedding import EMBEDDING_DIM, embed_image
from inference.backends.labels import MESH_FINDINGS, labels_from_mesh
from inference.backends.retrieval import RetrievalBackend
from inference.reportbank import IU_TGZ, ReportBank, load_iu_bank, parse_iu_tgz

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def iu_bank():
    return load_iu_bank()


@pytest.fixture(scope="module")
def reference_bank(cxr_images):
    entries = [
        {
            "id": f"REF{i:02d}",
            "image": image,
            "report": f"Findings: Reference report number {i}.\nImpression: Case {i}.",
            "labels": {code: int((i >> bit) & 1) for bit, code in enumerate(DEFAULT_FINDINGS)},
        }
        for i, image in enumerate(cxr_images)
    ]
    return ReportBank.from_entries(entries, name="reference")


def test_iu_tgz_parses_all_3955_reports_with_labels(iu_bank):
    assert IU_TGZ.is_file()
    assert len(iu_bank) == 3955
    assert len({e.id for e in iu_bank.entries}) == 3955
    assert sum(1 for e in iu_bank.entries if e.findings) > 3300
    # > 3900 raw; cleaning the "XXXX" tokens empties the impressions whose every sentence carried one
    assert sum(1 for e in iu_bank.entries if e.impression) > 3800
    counts = {code: sum(e.labels[code] for e in iu_bank.entries) for code in DEFAULT_FINDINGS}
    for code in DEFAULT_FINDINGS:
        assert all(code in e.labels for e in iu_bank.entries)
        assert counts[code] >= 20, (code, counts)
    assert counts["lung_opacity"] > counts["pleural_effusion"] > counts["pneumothorax"]
    cxr1 = iu_bank["CXR1"]
    assert "pleural effusion" in cxr1.findings and cxr1.impression
    # The corpus's de-identification tokens are cleaned as the bank loads (issue 14): "no XXXX of" and "x-XXXX"
    # are repaired, and no entry carries a token.
    assert "There are no signs of a pleural effusion." in cxr1.findings and cxr1.impression == "Normal chest x-ray."
    assert not any("XXX" in e.text or "XXX" in e.meta["indication"] for e in iu_bank.entries)


def test_parse_iu_tgz_returns_sections_and_mesh():
    reports = parse_iu_tgz()
    assert len(reports) == 3955
    assert reports[0]["id"] == "CXR1"
    assert any(r["mesh"] == ["normal"] for r in reports)
    assert all({"findings", "impression", "indication", "mesh", "images"} <= set(r) for r in reports)


def test_mesh_mapping_is_data_and_prefix_matched():
    assert set(DEFAULT_FINDINGS) <= set(MESH_FINDINGS)
    labels = labels_from_mesh(
        ["Cardiac Shadow/enlarged/mild", "Pericardial Effusion", "opacity/lung/base/left"]
    )
    assert labels["cardiomegaly"] == 1 and labels["lung_opacity"] == 1
    assert labels["pleural_effusion"] == 0 and labels["pneumothorax"] == 0
    assert labels_from_mesh(["Cardiac Shadow"])["cardiomegaly"] == 0
    assert labels_from_mesh(["Hydropneumothorax/right"])["pneumothorax"] == 1
    assert labels_from_mesh(["normal"]) == {code: 0 for code in MESH_FINDINGS}
    assert labels_from_mesh(["Foo/bar"], {"foo": ["foo"]}) == {"foo": 1}


def test_embedding_is_deterministic_normalised_and_mode_robust(make_cxr):
    a = embed_image(make_cxr(3))
    b = embed_image(make_cxr(3))
    assert a.shape == (EMBEDDING_DIM,) and a.dtype == np.float32
    assert a.tobytes() == b.tobytes()
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert float(a @ embed_image(make_cxr(3, mode="RGB"))) > 0.999
    assert float(a @ embed_image(make_cxr(3, mode="I;16"))) > 0.98
    assert float(a @ embed_image(make_cxr(4))) < float(a @ embed_image(make_cxr(3, size=(300, 280))))
    flat = embed_image(make_cxr(0).point(lambda _: 128))
    assert np.isfinite(flat).all()


def test_nearest_neighbour_returns_the_query_cases_own_report(reference_bank, cxr_images):
    backend = RetrievalBackend(reference_bank)
    backend.load({"k": 5})
    for i, image in enumerate(cxr_images):
        draft = backend.generate([image], DEFAULT_FINDINGS)
        assert draft.backend == "retrieval baseline"
        assert draft.neighbours[0] == f"REF{i:02d}"
        assert len(draft.neighbours) == 5 and len(set(draft.neighbours)) == 5
        assert draft.findings == f"Reference report number {i}." and draft.impression == f"Case {i}."
        assert draft.parameters["retrieval_mode"] == "nearest"
        assert draft.parameters["similarities"][0] == pytest.approx(1.0, abs=1e-5)
        assert set(draft.probabilities) == set(DEFAULT_FINDINGS)
        assert all(0.0 <= p <= 1.0 for p in draft.probabilities.values())
        assert draft.parameters["probabilities_from"].startswith("retrieval baseline: label frequencies")
        # the query's own labels dominate the distance-weighted vote
        own = reference_bank[f"REF{i:02d}"].labels
        for code in DEFAULT_FINDINGS:
            assert (draft.probabilities[code] > 0.5) == bool(own[code]) or 0.3 < draft.probabilities[
                code
            ] < 0.7


def test_retrieval_is_deterministic_across_instances(reference_bank, make_cxr):
    query = make_cxr(99)
    drafts = []
    for _ in range(2):
        backend = RetrievalBackend(reference_bank)
        backend.load({"k": 4})
        drafts.append(backend.generate([query]))
    assert drafts[0].to_dict() | {"generate_s": 0, "load_s": 0} == drafts[1].to_dict() | {
        "generate_s": 0,
        "load_s": 0,
    }
    leave_one_out = RetrievalBackend(reference_bank)
    leave_one_out.load({"k": 3})
    draft = leave_one_out.generate([make_cxr(0)], context={"exclude_ids": ["REF00"]})
    assert "REF00" not in draft.neighbours


def test_text_only_bank_falls_back_to_a_deterministic_hash(iu_bank, make_cxr):
    backend = get_backend("retrieval")
    backend.load({})  # the bundled IU reports, which have no images
    a1 = backend.generate([make_cxr(10)])
    a2 = backend.generate([make_cxr(10)])
    others = {backend.generate([make_cxr(s)]).neighbours[0] for s in range(11, 16)}
    assert a1.parameters["retrieval_mode"] == "hash" and "hash" in a1.parameters["note"]
    assert a1.neighbours == a2.neighbours and a1.text == a2.text
    assert len(others | {a1.neighbours[0]}) >= 4
    assert a1.findings  # hash mode picks reports that have a findings section
    # no image information, so no probabilities: an all-black and an all-white image get none, not made-up ones
    black, white = (backend.generate([Image.new("L", (64, 64), v)]) for v in (0, 255))
    assert a1.probabilities == black.probabilities == white.probabilities == {}
    assert black.parameters["probabilities_from"] is None and "no probabilities" in black.parameters["note"]


def test_iu_reports_paired_with_images_become_searchable(iu_bank, make_cxr):
    paired = iu_bank.with_images(
        {"CXR1": make_cxr(20), "CXR2": make_cxr(21), "CXR3": [make_cxr(22), make_cxr(23)]}
    )
    assert paired.has_embeddings and not iu_bank.has_embeddings
    result = paired.query(embed_image(make_cxr(21)), k=3)
    assert result.mode == "nearest" and result.entry.id == "CXR2"
    assert paired.only_embedded().entries[0].id == "CXR1" and len(paired.only_embedded()) == 3


def test_bank_npz_roundtrip(reference_bank, tmp_path, make_cxr):
    path = tmp_path / "bank.npz"
    reference_bank.save_npz(path)
    loaded = ReportBank.load_npz(path)
    assert [e.id for e in loaded.entries] == [e.id for e in reference_bank.entries]
    q = embed_image(make_cxr(4))
    assert loaded.query(q).entry.id == reference_bank.query(q).entry.id == "REF04"
    backend = get_backend("retrieval")
    backend.load({"bank_path": str(path), "k": 2})
    assert backend.generate([make_cxr(4)]).neighbours[0] == "REF04"


def test_bank_rejects_bad_entries():
    with pytest.raises(ValueError):
        ReportBank.from_entries([{"report": "x"}])
    with pytest.raises(ValueError):
        ReportBank.from_entries([{"id": "a", "report": "x"}, {"id": "a", "report": "y"}])
    with pytest.raises(ValueError):
        ReportBank.from_entries([{"id": "a", "embedding": [1.0, 2.0]}])


def test_retrieval_backend_does_not_import_torch():
    code = (
        "import sys; from inference.backends import load_backend; from PIL import Image; "
        "b = load_backend('retrieval'); b.generate([Image.new('L', (64, 64), 100)]); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
