"""Amending an arena judgement (as a rating's amendment, issue 18 item 2): its expert only, before lock, with a reason;
the task keeps its first submission; audited; signed (authorship) where the trial signs submissions."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from analysis.export import build_export
from rating import services as rating_services
from rating.models import ArenaAmendment, ArenaTask
from tests.factories.imaging import add_image
from tests.factories.trial import PASSWORD
from tests.rating.arena_support import arena_trial, tasks_of
from trial import services as trial_services
from trial.models import AuditEntry, Signature, Trial
from trial.signatures import SignatureInput, signature_valid

pytestmark = pytest.mark.django_db

ANSWER = {"preference": "A", "quality_a": 4, "quality_b": 3, "comment": "A is clearer."}


def _arena(code: str, sign: bool = False) -> dict:
    t = arena_trial(code=code, versions=2, cases=1, experts=2, panel=2, sign_submissions=sign)
    add_image(t["cases"][0])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    return t


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_expert_amends_a_submitted_judgement_through_the_api_and_the_page():
    t = _arena("AAM")
    code = t["trial"].code
    task, user = tasks_of(t["experts"][0])[0], t["experts"][0].user
    other = t["experts"][1].user
    api = _api(user)
    url = reverse("arena-amend", args=[code, task.public_id])
    # Not submitted yet: nothing to amend (the page sends the expert to the task).
    r = api.post(url, {"preference": "B", "reason": "second look"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "not_submitted"
    page = Client()
    page.force_login(user)
    page_url = reverse("arena:amend", args=[code, task.public_id])
    assert page.get(page_url)["Location"] == reverse("arena:task", args=[code, task.public_id])

    rating_services.submit_arena_task(user, task, ANSWER)
    assert api.post(url, {"preference": "B"}, format="json").status_code == 400  # a reason is required
    assert api.post(url, {"preference": "C", "reason": "x"}, format="json").status_code == 400
    assert _api(other).post(url, {"preference": "B", "reason": "x"}, format="json").status_code == 404  # not theirs
    r = api.post(url, {"preference": "B", "reason": "Misread draft A's impression."}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["number"], body["already_amended"]) == (1, False)
    assert body["previous"]["preference"] == "A" and body["amended"] == {**ANSWER, "preference": "B"}
    task.refresh_from_db()
    assert task.preference == "A"  # the first submission is kept: it is what the analysis counts
    entry = AuditEntry.objects.get(action="arena:amend")
    assert entry.reason == "Misread draft A's impression." and entry.after["preference"] == "B"
    # A retried request repeats nothing; the same answer with another reason is no change.
    again = api.post(url, {"preference": "B", "reason": "Misread draft A's impression."}, format="json")
    assert again.json()["already_amended"] is True and ArenaAmendment.objects.count() == 1
    r = api.post(url, {"preference": "B", "reason": "other"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "no_change"
    # No model version reaches the expert.
    for mv in t["versions"]:
        assert mv.name not in r.content.decode()

    # The page: the current version in the form, the history, a second amendment from the form.
    html = page.get(page_url).content.decode()
    assert 'id="amendment-1"' in html and "after amendment 1" in html
    assert 'name="preference" value="B" checked' in html
    assert page.post(page_url, {"quality_a": "2"}).status_code == 400  # no reason: the page says so
    r = page.post(page_url, {"quality_a": "2", "reason": "Scored A too high."})
    assert r.status_code == 302
    second = ArenaAmendment.objects.get(number=2)
    assert second.previous["quality_a"] == 4
    assert second.amended["quality_a"] == 2 and second.amended["preference"] == "B"
    assert 'name="quality_a" value="2" checked' in page.get(page_url).content.decode()
    html = page.get(reverse("arena:task", args=[code, task.public_id])).content.decode()
    assert f'href="{page_url}"' in html  # the submitted task page links its amendment page
    assert 'name="quality_a" value="4" checked' in html  # the task page shows the first submission
    assert page.get(page_url).status_code == 200 and Client().get(page_url).status_code == 302  # login required

    # After lock: read-only, refused.
    Trial.objects.filter(pk=t["trial"].pk).update(status=Trial.Status.LOCKED)
    r = api.post(url, {"preference": "tie", "reason": "late"}, format="json")
    assert r.status_code == 409 and ArenaAmendment.objects.count() == 2
    assert f'href="{page_url}"' not in page.get(reverse("arena:task", args=[code, task.public_id])).content.decode()


def test_an_amendment_is_signed_where_the_trial_signs_submissions():
    t = _arena("AAMS", sign=True)
    code = t["trial"].code
    task, user = tasks_of(t["experts"][0])[0], t["experts"][0].user
    rating_services.submit_arena_task(user, task, ANSWER, signature=SignatureInput(PASSWORD, "authorship"))
    api = _api(user)
    url = reverse("arena-amend", args=[code, task.public_id])
    change = {"preference": "tie", "reason": "On reflection they are equal."}
    assert api.post(url, change, format="json").status_code == 400  # no password
    assert api.post(url, {**change, "password": "nope"}, format="json").status_code == 403
    failed = AuditEntry.objects.get(action="sign:failed", actor=user)
    assert failed.after["step"] == "arena:amend" and not ArenaAmendment.objects.exists()
    r = api.post(url, {**change, "password": PASSWORD}, format="json")
    assert r.status_code == 200, r.content
    amendment = ArenaAmendment.objects.get()
    sig = Signature.objects.get(object_type="rating.ArenaAmendment")
    assert (sig.object_id, sig.signer_id, sig.meaning) == (str(amendment.pk), user.pk, "authorship")
    assert sig.entry.action == "arena:amend" and signature_valid(sig)
    ArenaAmendment.objects.filter(pk=amendment.pk).update(reason="forged")
    assert not signature_valid(sig)
    # The page asks for the password too.
    page = Client()
    page.force_login(user)
    html = page.get(reverse("arena:amend", args=[code, task.public_id])).content.decode()
    assert 'id="signature-password"' in html
    assert ArenaTask.objects.get(pk=task.pk).preference == "A"


def test_the_export_carries_arena_amendments_after_lock_only_and_the_arena_table_keeps_the_first():
    t = _arena("AAMX")
    trial = t["trial"]
    task, user = tasks_of(t["experts"][0])[0], t["experts"][0].user
    rating_services.submit_arena_task(user, task, ANSWER)
    rating_services.amend_arena_task(actor=user, task=task, answer={"preference": "tie", "comment": "Equal after all."},
                                     reason="Read B again")
    rating_services.amend_arena_task(actor=user, task=task, answer={"quality_b": 5}, reason="B is better written")
    before = build_export(trial)
    assert "arena_amendments" not in before.tables
    assert "arena_amendments" in before.manifest["tables_withheld_until_lock"]
    assert not any(d["table"] == "arena_amendments" for d in before.dictionary)
    text = json.dumps([before.tables, before.manifest, before.dictionary, before.files], default=str)
    assert "Read B again" not in text and "Equal after all." not in text
    trial_services.lock_trial(t["coordinator"], trial, reason="end of study")
    trial.refresh_from_db()
    export = build_export(trial)
    assert export.manifest["tables_withheld_until_lock"] == []
    rows = export.tables["arena_amendments"]
    assert [(r["task_id"], r["amendment"], r["amended_as"], r["reason"]) for r in rows] == [
        (task.public_id, 1, "expert", "Read B again"), (task.public_id, 2, "expert", "B is better written")]
    assert (rows[0]["preference"], rows[0]["quality_a"], rows[0]["quality_b"], rows[0]["comment"]) == \
        ("tie", 4, 3, "Equal after all.")
    assert (rows[1]["preference"], rows[1]["quality_b"]) == ("tie", 5)
    assert "model_a" not in rows[0] and not any(mv.name in export.csv_text("arena_amendments") for mv in t["versions"])
    first = next(r for r in export.tables["arena"] if r["task_id"] == task.public_id)
    assert (first["preference"], first["quality_b"], first["comment"]) == ("A", 3, "A is clearer.")
    assert export.manifest["tables"]["arena_amendments"]["rows"] == 2
    described = {d["column"] for d in export.dictionary if d["table"] == "arena_amendments"}
    assert described == set(rows[0])
