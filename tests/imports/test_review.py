"""Burned-in annotation holds a case for review (issue 14, part 3): not enrollable until a coordinator has
confirmed or excluded it; audited; Patient Identity Removed is YES only when the profile was fully applied."""
from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from django.urls import reverse

from core.errors import Conflict, ErrorCode, InvalidInput
from imaging import services as imports
from imaging.dicom.synthetic import make_secondary_capture_cxr
from imaging.dicom.synthetic import to_bytes as sc_bytes
from imaging.models import Image
from tests.factories.trial import PASSWORD, make_trial
from trial import services as trial_services
from trial.models import AuditEntry, Case, Trial

PNG = Path(settings.BASE_DIR) / "fixtures" / "cxr-png" / "00000001_000.png"


@pytest.fixture
def t(db):
    return make_trial(code="REV", status=Trial.Status.ENROLLING, enrol_readers=False)


def _import(t, burned_in: bool | None, modality: str = "CR") -> imports.FileResult:
    ds = make_secondary_capture_cxr(PNG, modality=modality, burned_in_annotation=bool(burned_in))
    if burned_in is None:
        del ds.BurnedInAnnotation
    return imports.import_file(t["coordinator"], t["trial"], t["centers"][0], "f.dcm", sc_bytes(ds))


def _stored(r: imports.FileResult) -> pydicom.Dataset:
    return pydicom.dcmread(Path(settings.MEDIA_ROOT) / Image.objects.get(public_id=r.image_id).dicom_file)


@pytest.mark.requirement("CAI-2")
def test_burned_in_case_cannot_be_enrolled_until_confirmed(t):
    r = _import(t, burned_in=True)
    case = Case.objects.get(code=r.case_code)
    assert case.needs_review and _stored(r).PatientIdentityRemoved == "NO"
    with pytest.raises(Conflict) as refused:
        trial_services.enrol_case(t["coordinator"], case)
    assert refused.value.code == ErrorCode.NEEDS_REVIEW
    done, problems = trial_services.enrol_all_imported(t["coordinator"], t["trial"])
    assert done == 0 and Case.objects.get(pk=case.pk).enrolled_at is None
    imports.review_case(t["coordinator"], case, decision="confirm", reason="label only, no identifiers")
    entry = AuditEntry.objects.get(trial=t["trial"], action="review:confirm")
    assert entry.before["needs_review"] is True and entry.after["needs_review"] is False
    assert entry.reason == "label only, no identifiers"
    trial_services.enrol_case(t["coordinator"], Case.objects.get(pk=case.pk))
    assert Case.objects.get(pk=case.pk).status == Case.Status.ENROLLED


def test_exclude_needs_a_reason_and_is_audited(t):
    case = Case.objects.get(code=_import(t, burned_in=True).case_code)
    with pytest.raises(InvalidInput):
        imports.review_case(t["coordinator"], case, decision="exclude")
    imports.review_case(t["coordinator"], case, decision="exclude", reason="name burned in top left")
    case.refresh_from_db()
    assert case.status == Case.Status.EXCLUDED and not case.needs_review
    assert AuditEntry.objects.filter(trial=t["trial"], action="review:exclude").count() == 1
    with pytest.raises(Conflict):
        imports.review_case(t["coordinator"], case, decision="confirm")


def test_only_coordinators_review(t):
    from core.errors import NotAllowed

    case = Case.objects.get(code=_import(t, burned_in=True).case_code)
    with pytest.raises(NotAllowed):
        imports.review_case(t["readers"][0].user, case, decision="confirm")


def test_absent_burned_in_annotation_reviewed_only_when_the_trial_asks(t):
    plain = _import(t, burned_in=None)
    assert not Case.objects.get(code=plain.case_code).needs_review
    assert _stored(plain).PatientIdentityRemoved == "YES"
    trial_services.update_trial_settings(t["coordinator"], t["trial"],
                                         import_settings={"review_when_burned_in_absent": True},
                                         reason="site reports unmarked burned-in text")
    t["trial"].refresh_from_db()
    held = _import(t, burned_in=None, modality="DX")
    assert "burned_in_annotation_unknown" in held.flags
    case = Case.objects.get(code=held.case_code)
    assert case.needs_review and case.review_reason == "burned_in_annotation_unknown"
    assert _stored(held).PatientIdentityRemoved == "NO"
    explicit_no = _import(t, burned_in=False)
    assert not Case.objects.get(code=explicit_no.case_code).needs_review


def test_review_buttons_on_the_trial_page(client, t):
    r = _import(t, burned_in=True)
    case = Case.objects.get(code=r.case_code)
    client.login(username=t["coordinator"].username, password=PASSWORD)
    html = client.get(reverse("trial:detail", args=[t["trial"].code])).content.decode()
    assert f'data-review="{case.code}"' in html and f'data-enrol="{case.code}"' not in html
    assert reverse("imaging:image-display", args=[r.image_id]) in html
    resp = client.post(reverse("imports:review", args=[t["trial"].code, case.pk]), {"decision": "confirm"})
    assert resp.status_code == 302 and not Case.objects.get(pk=case.pk).needs_review
    html = client.get(reverse("trial:detail", args=[t["trial"].code])).content.decode()
    assert f'data-enrol="{case.code}"' in html
