"""Refused files are recorded by reason only (imaging.ImportRefusal; issue 20) and counted in the export's
manifest, which the analysis's CONSORT flow reads."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from analysis.export import build_export
from imaging import services as imports
from imaging.models import ImportRefusal
from imaging.selectors import import_refusals_by_reason
from tests.factories.trial import make_trial
from trial.models import Trial

FIX = Path(settings.BASE_DIR) / "fixtures" / "dicom"


@pytest.fixture
def t(db):
    return make_trial(code="REF", status=Trial.Status.SETUP, enrol_readers=False)


def test_refusals_are_recorded_by_reason_without_identifiers(t):
    coord, trial, center = t["coordinator"], t["trial"], t["centers"][0]
    names = ["bad/MR_truncated.dcm", "pydicom_CR_cspine_MONO1_16x16.dcm", "pydicom_CR_cspine_MONO1_16x16.dcm",
             "NIH_DX_chest_MONO2_implicitLE.dcm", "NIH_DX_chest_MONO2_implicitLE.dcm"]
    results = imports.import_files(coord, trial, center, [(n, (FIX / n).read_bytes()) for n in names])
    assert [r.status for r in results] == ["refused", "refused", "refused", "imported", "duplicate"]
    assert import_refusals_by_reason(trial) == {"too_small": 2, "truncated": 1}
    assert ImportRefusal.objects.filter(trial=trial, center=center).count() == 3
    # nothing that identifies the file: trial, center, reason and time only
    assert {f.name for f in ImportRefusal._meta.get_fields()} == {"id", "trial", "center", "reason_code",
                                                                   "created_at"}
    assert import_refusals_by_reason(make_trial(code="OTHER", status=Trial.Status.SETUP)["trial"]) == {}
    manifest = build_export(trial).manifest
    assert manifest["import_refusals"] == {"too_small": 2, "truncated": 1}


def test_oversized_upload_is_recorded(t, settings):
    settings.DICOM_MAX_FILE_BYTES = 10

    class Upload:
        name, size = "big.dcm", 11

        def read(self):  # never called: refused from its size
            raise AssertionError

    [r] = imports.import_uploads(t["coordinator"], t["trial"], t["centers"][0], [Upload()])
    assert r.status == "refused" and r.reason_code == "too_large"
    assert import_refusals_by_reason(t["trial"]) == {"too_large": 1}
