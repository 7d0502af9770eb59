"""The read API's calibrated confidence (issue 21 item 3): an AI-arm read's draft carries the raw and calibrated
probabilities and what the calibration was fitted on; a withheld draft carries neither; an unassisted read has no
draft key at all (tests/security covers every response of the unassisted reader)."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from inference.models import Draft, OodAction
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial

pytestmark = pytest.mark.django_db


def _get(member, case) -> dict:
    client = APIClient()
    client.force_authenticate(member.user)
    read = reads_of(member).get(case=case)
    response = client.get(reverse("reading-api:detail", args=[read.public_id]))
    assert response.status_code == 200
    return response.json()


def test_the_api_carries_raw_and_calibrated_probabilities_with_their_calibration():
    t = make_trial(code="CALA", centers=1)
    own, other = add_cases(t, 2)
    with_images_and_drafts(t, [own, other])
    Draft.objects.filter(case=own).update(
        calibrated_probabilities={"pleural_effusion": 0.612345678, "unknown_code": 0.5},
        parameters={"calibration": {"id": 3, "method": "platt", "trial": "CALA", "n_cases": 24}})
    Draft.objects.filter(case=other).update(
        calibrated_probabilities={"pneumothorax": 0.1},
        parameters={"calibration": {"id": 4, "method": "platt", "trial": "PILOT", "n_cases": 60}})
    ai = reader_in(t, "ai_assisted")
    draft = _get(ai, own)["draft"]
    assert draft["probabilities"]["pleural_effusion"] == 0.8731  # raw, as before
    assert draft["calibrated_probabilities"] == {"pleural_effusion": 0.6123}  # the trial's findings only
    assert draft["calibration"] == {"n_cases": 24, "method": "platt", "same_trial": True,
                                    "label": "calibrated on 24 trial cases"}
    assert _get(ai, other)["draft"]["calibration"]["label"] == \
        "calibrated on 60 reference cases of an earlier trial"

    Draft.objects.filter(case=own).update(ood_action=OodAction.WITHHELD)
    withheld = _get(ai, own)["draft"]
    assert withheld["probabilities"] == {} and withheld["calibrated_probabilities"] == {}
    assert withheld["calibration"] is None
    assert "draft" not in _get(reader_in(t, "unassisted"), own)


def test_a_cam_box_keeps_its_source_in_the_api():
    t = make_trial(code="CAMA", centers=1)
    (case,) = add_cases(t, 1)
    with_images_and_drafts(t, [case])
    image = case.images.first()
    cam = {"finding": "pleural_effusion", "x0": 1.0, "y0": 2.0, "x1": 30.0, "y1": 40.0, "score": 1.0,
           "label": "expert model's activation map", "reasoning": "", "source": "cam", "cam_fraction": 0.5,
           "image": image.public_id}
    text = {**cam, "source": None, "label": "left effusion"}
    text.pop("source")
    Draft.objects.filter(case=case).update(boxes=[cam, text], parameters={"boxes_image_size": [256, 256]})
    boxes = _get(reader_in(t, "ai_assisted"), case)["draft"]["boxes"]
    assert boxes[0]["source"] == "cam" and "cam_fraction" not in boxes[0]
    assert "source" not in boxes[1]  # a box parsed from the report's text has none
