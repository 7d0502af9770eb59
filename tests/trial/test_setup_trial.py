import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from trial.models import AllocationSlot, Membership, Trial


def test_example_protocol_creates_the_trial(db, settings):
    call_command("setup_trial", str(settings.BASE_DIR / "fixtures" / "protocol.example.yaml"))
    trial = Trial.objects.get(code="EXAMPLE-CXR-01")
    assert trial.centers.count() == 2 and trial.arms.count() == 2
    assert Membership.objects.filter(trial=trial, role="reader").count() == 6
    assert trial.allocation_list.block_sizes == [2, 4]
    assert not AllocationSlot.objects.filter(revealed_at__isnull=False).exists()
    assert trial.arms.get(code="ai_assisted").model_assignment.model_version.name == "retrieval-baseline-v1"


def test_invalid_protocol_writes_nothing(db, tmp_path):
    bad = {"code": "BAD", "title": "Bad", "centers": [{"code": "c1"}], "arms": [{"code": "a"}, {"code": "b"}],
           "members": [{"username": "r1", "role": "reader", "center": "c1", "experience": "junior"},
                       {"username": "r1", "role": "expert"}]}
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(CommandError, match="reader and an expert"):
        call_command("setup_trial", str(p))
    assert not Trial.objects.filter(code="BAD").exists()
