"""Heartbeat and autosave of an open read take a short path (issue 19.2; reading.services._HEARTBEAT_SQL and
_autosave_open_read): the same answers, the same refusals and the same row history as the general path. Each case
below is checked against the rule, not against the code: the credited time, another reader's read, an unknown id,
a locked trial, a submitted read, a read not yet opened, invalid input (nothing saved), box decisions (the general
path), and the user and URL on the row-history event of an API call. Real PostgreSQL, committed transactions (the
history context is per transaction, as in production)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.errors import InvalidInput, TrialLocked
from reading import services
from reading.models import Read
from reading.selectors import id_urls, next_read_for
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial
from trial.models import Trial

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def t(transactional_db):
    t = make_trial(code="HOT")
    cases = add_cases(t, 3)
    with_images_and_drafts(t, cases, size=64)
    t["reader"] = reader_in(t, "unassisted")
    t["other"] = reader_in(t, "ai_assisted")
    return t


def opened(m) -> Read:
    return services.open_read(m.user, reads_of(m).first())


def test_heartbeat_credits_the_capped_time_and_answers_the_state(t):
    m = t["reader"]
    read = opened(m)
    Read.objects.filter(pk=read.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=30))
    state = services.heartbeat(m.user, read.public_id, 500)  # capped by the 30 s since the last beat
    read.refresh_from_db()
    assert 29 <= read.active_seconds <= 31 and state.active_seconds == read.active_seconds
    assert state.status == read.status == Read.Status.IN_PROGRESS and state.is_submitted is False
    before = read.active_seconds
    Read.objects.filter(pk=read.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=30))
    services.heartbeat(m.user, read.public_id, 8)  # the client's 8 s, under the wall time
    read.refresh_from_db()
    assert read.active_seconds - before == pytest.approx(8, abs=0.01)
    Read.objects.filter(pk=read.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=2))
    services.heartbeat(m.user, read.public_id, 5000)
    read.refresh_from_db()
    assert read.active_seconds - before == pytest.approx(8 + services.HEARTBEAT_MAX_SECONDS, abs=0.01)
    with pytest.raises(InvalidInput):
        services.heartbeat(m.user, read.public_id, -1)


def test_autosave_saves_the_report_and_credits_time(t):
    m = t["reader"]
    read = opened(m)
    Read.objects.filter(pk=read.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=10))
    code = t["trial"].finding_codes[0]
    state = services.autosave(m.user, read.public_id, {"findings_text": "Clear\r\nlungs.", "finding_marks": {
        code: {"present": True, "confidence": 3}}}, seconds=4)
    read.refresh_from_db()
    assert read.findings_text == "Clear\nlungs." and read.impression_text == ""
    assert read.finding_marks[code] == {"present": True, "confidence": 3}
    assert set(read.finding_marks) == set(t["trial"].finding_codes)  # every finding, unmarked ones null
    assert read.active_seconds == pytest.approx(4, abs=0.01) and state.active_seconds == read.active_seconds
    assert state.autosaved_at == read.autosaved_at and state.status == Read.Status.IN_PROGRESS


def test_bad_input_is_refused_and_nothing_is_saved(t):
    m = t["reader"]
    read = opened(m)
    services.autosave(m.user, read.public_id, {"findings_text": "Kept."})
    for bad in ({"findings_text": 3}, {"finding_marks": {"no_such_finding": {}}}, {"findings_text": "x" * 20_001},
                {"finding_marks": {t["trial"].finding_codes[0]: {"confidence": 9}}}):
        with pytest.raises(InvalidInput):
            services.autosave(m.user, read.public_id, bad)
    with pytest.raises(InvalidInput):
        services.autosave(m.user, read.public_id, {"findings_text": "Lost."}, seconds="lots")
    read.refresh_from_db()
    assert read.findings_text == "Kept."


def test_refusals_are_those_of_the_general_path(t):
    m, other = t["reader"], t["other"]
    read = opened(m)
    for call in (lambda pid, u: services.heartbeat(u, pid, 3),
                 lambda pid, u: services.autosave(u, pid, {"findings_text": "Mine."}, seconds=1)):
        with pytest.raises(Http404):
            call(read.public_id, other.user)  # another reader's read: an unknown id's answer
        with pytest.raises(Http404):
            call("no-such-read-id", m.user)
    Trial.objects.filter(pk=t["trial"].pk).update(status=Trial.Status.LOCKED)
    for call in (lambda: services.heartbeat(m.user, read.public_id, 3),
                 lambda: services.autosave(m.user, read.public_id, {"findings_text": "Late."})):
        with pytest.raises(TrialLocked):
            call()
    read.refresh_from_db()
    assert read.findings_text == "" and read.active_seconds < 1


def test_submitted_and_unopened_reads_take_the_general_path(t):
    m = t["reader"]
    read = opened(m)
    marks = {c: {"present": False, "confidence": 4} for c in t["trial"].finding_codes}
    services.submit_read(m.user, read, {"findings_text": "Final.", "impression_text": "Normal.",
                                        "finding_marks": marks}, seconds=3)
    read.refresh_from_db()
    seconds = read.active_seconds
    assert services.heartbeat(m.user, read.public_id, 3).is_submitted
    state = services.autosave(m.user, read.public_id, {"findings_text": "Changed after submit."}, seconds=3)
    read.refresh_from_db()
    assert state.is_submitted and read.findings_text == "Final." and read.active_seconds == seconds
    fresh = reads_of(m).filter(opened_at__isnull=True).first()
    assert services.heartbeat(m.user, fresh.public_id, 3).active_seconds == 0  # not opened: nothing credited
    services.autosave(m.user, fresh.public_id, {"findings_text": "Before open."})
    fresh.refresh_from_db()
    assert fresh.findings_text == "Before open." and fresh.status == Read.Status.IN_PROGRESS


def test_api_answers_and_row_history_names_the_user_and_url(t):
    m = t["reader"]
    read = opened(m)
    c = Client()
    c.force_login(m.user)
    events = Read.pgh_event_models["update"] if "update" in Read.pgh_event_models else None
    event_model = events or next(iter(Read.pgh_event_models.values()))
    n0 = event_model.objects.filter(pgh_obj_id=read.pk).count()
    for name, body in (("heartbeat", {"seconds": 2}), ("autosave", {"findings_text": "Via API.", "seconds": 1})):
        url = reverse(f"reading-api:{name}", args=[read.public_id])
        r = c.post(url, json.dumps(body), content_type="application/json")
        assert r.status_code == 200 and r.json()["status"] == "in_progress" and r.json()["submitted"] is False
        ev = event_model.objects.filter(pgh_obj_id=read.pk).order_by("-pgh_id").select_related("pgh_context").first()
        assert ev.pgh_context is not None and ev.pgh_context.metadata == {"user": m.user.pk, "url": url}
    assert event_model.objects.filter(pgh_obj_id=read.pk).count() == n0 + 2
    boxes = json.dumps({"box_reviews": {"x": "accepted"}})  # box decisions: the general path's rule
    assert c.post(reverse("reading-api:autosave", args=[read.public_id]), boxes,
                  content_type="application/json").status_code == 400


def test_worklist_urls_are_those_reverse_makes(t):
    from_reverse = [(reverse("reading:read", args=[t["trial"].code, r.public_id]),
                     reverse("reading-api:detail", args=[r.public_id])) for r in reads_of(t["reader"])]
    page, api = id_urls("reading:read", t["trial"].code), id_urls("reading-api:detail")
    assert [(page(r.public_id), api(r.public_id)) for r in reads_of(t["reader"])] == from_reverse
    assert page("Odd-id_9") == reverse("reading:read", args=[t["trial"].code, "Odd-id_9"])  # the id's alphabet


def test_next_read_is_the_one_in_progress_else_the_first_to_do(t):
    m = t["reader"]
    order = list(reads_of(m).order_by("order_key", "pk"))
    assert next_read_for(m.user, t["trial"]) == order[0]
    services.open_read(m.user, order[-1])
    assert next_read_for(m.user, t["trial"]) == order[-1]  # in progress beats to do, whatever the order
    c = Client()
    c.force_login(m.user)
    body = c.get(reverse("reading-api:worklist", args=[t["trial"].code])).json()
    assert body["next"] == order[-1].public_id and body["counts"]["in_progress"] == 1
    assert body["pages"] == 1 and [r["public_id"] for r in body["reads"]] == [r.public_id for r in order]
