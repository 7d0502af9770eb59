"""core.serializers.represent: an output serializer's answer by one shared instance is the answer a new instance
gives (``.data``), for the reading room's serializers with nested and optional fields, also from many threads."""
from __future__ import annotations

import json
import threading

import pytest

from core.serializers import represent
from rating.models import Rating
from rating.selectors import task_payload
from rating.serializers import SavedSerializer, TaskSerializer
from reading.models import Read
from reading.selectors import read_payload
from reading.serializers import HeartbeatSerializer, ReadSerializer
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.reading import with_images_and_drafts

pytestmark = pytest.mark.django_db


@pytest.fixture
def payloads():
    """Real payloads: a read of each arm (the AI read with its draft) and a rating task with its two reports."""
    t = rating_trial(code="REP", cases=2, ai_model=True)
    with_images_and_drafts(t, t["cases"], size=64)
    complete_case(t["cases"][0])
    reads = {r.arm.code: read_payload(r) for r in Read.objects.filter(case=t["cases"][0]).select_related(
        "case__trial", "arm")}
    task = tasks_of(t, 0) or tasks_of(t, 1)
    return reads, task_payload(Rating.objects.select_related("case__trial", "read_a", "read_b").get(pk=task[0].pk))


def _same(cls, payload) -> None:
    assert json.dumps(represent(cls, payload)) == json.dumps(cls(payload).data)


def test_represent_answers_as_a_new_serializer(payloads):
    reads, task = payloads
    assert "draft" in reads["ai_assisted"] and "draft" in represent(ReadSerializer, reads["ai_assisted"])
    for payload in reads.values():
        _same(ReadSerializer, payload)
    assert "draft" not in represent(ReadSerializer, reads["unassisted"])  # none comes out where none went in
    _same(HeartbeatSerializer, {"status": "in_progress", "active_seconds": 3.0, "submitted": False})
    _same(SavedSerializer, {"saved": True, "status": "in_progress"})
    _same(TaskSerializer, task)


def test_represent_from_many_threads(payloads):
    TASK = payloads[1]
    want = json.dumps({**TaskSerializer(TASK).data, "id": "t1"})
    bad: list[str] = []

    def worker(n: int) -> None:
        for i in range(200):
            task = {**TASK, "id": f"t{n}-{i}"}
            got = represent(TaskSerializer, task)
            if got["id"] != task["id"] or json.dumps({**got, "id": "t1"}) != want:
                bad.append(got["id"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert bad == []
