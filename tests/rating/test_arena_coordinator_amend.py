"""A coordinator amends an arena judgement (as a rating: rating.services.amend_rating): the task's expert, or a
coordinator of the trial who neither reads nor rates in it (trial.blinding), before lock, with a reason, audited,
idempotent on retry, signed where the trial signs submissions; reached from the arena's coordinator page; the
coordinator's amendment page shows no draft (docs/ai-evaluation.md, "Amending a judgement")."""
from __future__ import annotations

import pytest
from django.urls import reverse

from analysis.export import build_export
from core.errors import Conflict, InvalidInput, NotAllowed, TrialLocked
from rating import services as rating_services
from rating.models import ArenaAmendment, ArenaTask
from tests.clients import browser_client, token_client
from tests.factories.imaging import add_image
from tests.factories.trial import PASSWORD, make_trial
from tests.rating.arena_support import VERSION_TEXT, arena_trial, tasks_of
from trial import services as trial_services
from trial.models import AuditEntry, Membership, Signature, Trial
from trial.signatures import SignatureInput, signature_valid

pytestmark = pytest.mark.django_db

ANSWER = {"preference": "A", "quality_a": 4, "quality_b": 3, "comment": "A is clearer."}


def _arena(code: str, sign: bool = False) -> dict:
    """One case, two experts, each with a submitted arena judgement."""
    t = arena_trial(code=code, versions=2, cases=1, experts=2, panel=2, sign_submissions=sign)
    add_image(t["cases"][0])
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    signature = SignatureInput(PASSWORD, "authorship") if sign else None
    t["tasks"] = []
    for expert in t["experts"]:
        task = tasks_of(expert)[0]
        rating_services.submit_arena_task(expert.user, task, ANSWER, signature=signature)
        t["tasks"].append(ArenaTask.objects.get(pk=task.pk))
    return t


def _forbidden(t) -> list[str]:
    """What a coordinator's amendment page and answers must not hold: a version's name, a draft's text."""
    return [*(mv.name for mv in t["versions"]), *(s for pair in VERSION_TEXT for s in pair)]


# -- the service ---------------------------------------------------------------------------------------------------
def test_the_owner_and_a_coordinator_amend_in_their_roles_and_the_first_submission_stays():
    t = _arena("ACA")
    task, expert, coordinator = t["tasks"][0], t["experts"][0].user, t["coordinator"]
    first, created = rating_services.amend_arena_task(actor=expert, task=task, answer={"preference": "B"},
                                                      reason="Misread A")
    assert created and first.amended_as == "expert"
    second, created = rating_services.amend_arena_task(actor=coordinator, task=task, answer={"quality_b": 5},
                                                       reason="The expert's e-mail of 3 May")
    assert created and (second.number, second.amended_as, second.amended_by) == (2, "coordinator", coordinator)
    assert second.previous == {**ANSWER, "preference": "B"} and second.amended == {**ANSWER, "preference": "B",
                                                                                    "quality_b": 5}
    assert ArenaTask.objects.get(pk=task.pk).preference == "A"  # what the analysis counts
    entry = AuditEntry.objects.filter(action="arena:amend").order_by("pk").last()
    assert (entry.actor, entry.reason, entry.after["amendment"]) == (coordinator, "The expert's e-mail of 3 May", 2)


def test_a_retried_coordinator_amendment_is_answered_with_the_stored_one():
    t = _arena("ACR")
    task, coordinator = t["tasks"][0], t["coordinator"]
    kwargs = {"task": task, "answer": {"preference": "tie"}, "reason": "Typed for the expert"}
    first, created = rating_services.amend_arena_task(actor=coordinator, **kwargs)
    again, created_again = rating_services.amend_arena_task(actor=coordinator, **kwargs)
    assert created and not created_again and again.pk == first.pk and ArenaAmendment.objects.count() == 1
    assert AuditEntry.objects.filter(action="arena:amend").count() == 1
    # The same answer and reason from another person is no retry of theirs: nothing to amend.
    with pytest.raises(Conflict, match="nothing to amend"):
        rating_services.amend_arena_task(actor=t["experts"][0].user, **kwargs)


def test_who_may_not_amend_another_experts_judgement():
    t = _arena("ACN")
    task = t["tasks"][0]
    kwargs = {"task": task, "answer": {"preference": "B"}, "reason": "x"}
    with pytest.raises(NotAllowed):  # another expert
        rating_services.amend_arena_task(actor=t["experts"][1].user, **kwargs)
    with pytest.raises(NotAllowed):  # the statistician
        rating_services.amend_arena_task(actor=t["statistician"].user, **kwargs)
    with pytest.raises(NotAllowed):  # another trial's coordinator
        rating_services.amend_arena_task(actor=make_trial(code="ACNX", experts=1)["coordinator"], **kwargs)
    # A coordinator who also rates, or also reads, in the unlocked trial is a blinded participant (trial.blinding).
    for member in (t["experts"][1], t["readers"][0]):
        Membership.objects.create(user=member.user, trial=t["trial"], role="coordinator")
        with pytest.raises(NotAllowed):
            rating_services.amend_arena_task(actor=member.user, **kwargs)
    # ... who may still amend their own judgement, as its expert.
    own, _ = rating_services.amend_arena_task(actor=t["experts"][1].user, task=t["tasks"][1],
                                              answer={"preference": "B"}, reason="own")
    assert own.amended_as == "expert"
    assert not ArenaAmendment.objects.filter(task=task).exists()


def test_a_coordinator_cannot_amend_after_lock():
    t = _arena("ACL")
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    with pytest.raises(TrialLocked):
        rating_services.amend_arena_task(actor=t["coordinator"], task=t["tasks"][0], answer={"preference": "B"},
                                         reason="late")
    assert not ArenaAmendment.objects.exists()


def test_a_coordinators_amendment_is_signed_where_the_trial_signs_submissions():
    t = _arena("ACS", sign=True)
    task, coordinator = t["tasks"][0], t["coordinator"]
    kwargs = {"task": task, "answer": {"preference": "tie"}, "reason": "Entered for the expert"}
    with pytest.raises(InvalidInput):  # no password
        rating_services.amend_arena_task(actor=coordinator, **kwargs)
    with pytest.raises(NotAllowed):  # a wrong one: recorded, nothing amended
        rating_services.amend_arena_task(actor=coordinator, signature=SignatureInput("nope", "authorship"), **kwargs)
    assert AuditEntry.objects.get(action="sign:failed", actor=coordinator).after["step"] == "arena:amend"
    assert not ArenaAmendment.objects.exists()
    amendment, _ = rating_services.amend_arena_task(actor=coordinator, signature=SignatureInput(PASSWORD,
                                                                                                "authorship"),
                                                    **kwargs)
    sig = Signature.objects.get(object_type="rating.ArenaAmendment")
    assert (sig.object_id, sig.signer, sig.meaning) == (str(amendment.pk), coordinator, "authorship")
    assert "amended_as" in sig.signed_fields and sig.entry.action == "arena:amend" and signature_valid(sig)
    ArenaAmendment.objects.filter(pk=amendment.pk).update(amended_as="expert")  # the role is signed too
    assert not signature_valid(sig)


# -- the API -------------------------------------------------------------------------------------------------------
def test_the_api_takes_a_coordinators_amendment_and_refuses_the_others():
    t = _arena("ACP")
    task, code = t["tasks"][0], t["trial"].code
    url = reverse("arena-amend", args=[code, task.public_id])
    body = {"preference": "B", "reason": "The expert asked by e-mail"}
    r = token_client(t["coordinator"]).post(url, body, format="json")
    assert r.status_code == 200, r.content
    got = r.json()
    assert (got["number"], got["amended_as"], got["already_amended"]) == (1, "coordinator", False)
    assert got["amended"] == {**ANSWER, "preference": "B"}
    assert token_client(t["coordinator"]).post(url, body, format="json").json()["already_amended"] is True
    assert not [s for s in _forbidden(t) if s in r.content.decode()]
    # the expert's own answer says in which role
    r = token_client(t["experts"][0].user).post(url, {"quality_a": 2, "reason": "Own second look"}, format="json")
    assert (r.status_code, r.json()["amended_as"]) == (200, "expert")
    assert token_client(t["experts"][1].user).post(url, body, format="json").status_code == 404  # not theirs
    assert token_client(t["statistician"].user).post(url, body, format="json").status_code == 403
    assert token_client(t["readers"][0].user).post(url, body, format="json").status_code == 403
    outsider = make_trial(code="ACPX", experts=1)["coordinator"]  # another trial's coordinator
    assert token_client(outsider).post(url, body, format="json").status_code == 403
    blinded = t["experts"][1]
    Membership.objects.create(user=blinded.user, trial=t["trial"], role="coordinator")
    assert token_client(blinded.user).post(url, body, format="json").status_code == 404  # as another expert
    assert ArenaAmendment.objects.count() == 2
    # No reason: 400; unsubmitted: 409.
    assert token_client(t["coordinator"]).post(url, {"preference": "tie"}, format="json").status_code == 400


# -- the pages -----------------------------------------------------------------------------------------------------
def test_a_coordinator_amends_from_the_arena_page_and_sees_no_draft():
    t = arena_trial(code="ACG", versions=2, cases=2, experts=2, panel=2)
    for case in t["cases"]:
        add_image(case)
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    expert = t["experts"][0]
    done, todo = tasks_of(expert)[:2]
    rating_services.submit_arena_task(expert.user, done, ANSWER)
    rating_services.autosave_arena_task(expert.user, todo, {"preference": "B", "comment": "Half-way thought"})
    code, c = t["trial"].code, browser_client(t["coordinator"])
    setup = reverse("arena:setup", args=[code])
    url = reverse("arena:amend", args=[code, done.public_id])
    html = c.get(setup).content.decode()
    assert url in html and reverse("arena:amend", args=[code, todo.public_id]) not in html  # submitted only
    assert html.count("data-amend-arena") == 1 and html.count('data-arena-status="') == ArenaTask.objects.count()

    pages = [c.get(url)]
    text = pages[0].content.decode()
    assert pages[0].status_code == 200 and "the expert's submitted judgement" in text
    assert 'id="drafts-withheld"' in text and 'id="draft-A"' not in text and setup in text
    assert 'name="preference" value="A" checked' in text
    pages.append(c.post(url, {"preference": "tie"}))  # no reason
    assert pages[-1].status_code == 400 and "Give the reason for the amendment." in pages[-1].content.decode()
    r = c.post(url, {"preference": "tie", "reason": "Entered for the expert"})
    assert r.status_code == 302 and r["Location"] == url
    a = ArenaAmendment.objects.get()
    assert (a.amended_by, a.amended_as, a.amended["preference"]) == (t["coordinator"], "coordinator", "tie")
    pages.append(c.get(url))
    assert "(coordinator)" in pages[-1].content.decode() and "Entered for the expert" in pages[-1].content.decode()
    assert ">1</td>" in c.get(setup).content.decode()  # the count of amendments
    # The unsubmitted task: explained, nothing to change, and the expert's answer in progress not shown.
    pages.append(c.get(reverse("arena:amend", args=[code, todo.public_id])))
    text = pages[-1].content.decode()
    assert pages[-1].status_code == 409 and "has not submitted it yet" in text
    assert "Half-way thought" not in text and 'value="B" checked' not in text
    body = " ".join(p.content.decode() for p in pages)
    assert not [s for s in _forbidden(t) if s in body]
    # The expert sees the coordinator's amendment in the history, with the drafts as before.
    html = browser_client(expert.user).get(url).content.decode()
    assert "(coordinator)" in html and 'id="draft-A"' in html and 'name="preference" value="tie" checked' in html
    # Locked: no link, the page read-only, the POST refused.
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    assert "data-amend-arena" not in c.get(setup).content.decode()
    assert "is locked" in c.get(url).content.decode()
    r = c.post(url, {"preference": "B", "reason": "late"})
    assert r.status_code == 409 and ArenaAmendment.objects.count() == 1


def test_a_blinded_coordinator_reaches_no_other_experts_amendmentbrowser_client():
    t = _arena("ACB")
    code, other = t["trial"].code, t["tasks"][0]
    url = reverse("arena:amend", args=[code, other.public_id])
    expert = t["experts"][1]
    Membership.objects.create(user=expert.user, trial=t["trial"], role="coordinator")
    c = browser_client(expert.user)
    assert c.get(url).status_code == 404 and c.post(url, {"preference": "B", "reason": "x"}).status_code == 404
    assert c.get(reverse("arena:setup", args=[code])).status_code == 403
    assert c.get(reverse("arena:amend", args=[code, t["tasks"][1].public_id])).status_code == 200  # their own
    assert browser_client(t["statistician"].user).get(url).status_code == 403
    assert not ArenaAmendment.objects.exists()


def test_the_export_records_the_coordinators_role():
    t = _arena("ACX")
    task = t["tasks"][0]
    rating_services.amend_arena_task(actor=t["experts"][0].user, task=task, answer={"preference": "B"}, reason="own")
    rating_services.amend_arena_task(actor=t["coordinator"], task=task, answer={"quality_a": 1}, reason="for them")
    trial_services.lock_trial(t["coordinator"], t["trial"], reason="end of study")
    rows = build_export(Trial.objects.get(pk=t["trial"].pk)).tables["arena_amendments"]
    assert [(r["amendment"], r["amended_as"], r["reason"]) for r in rows] == [
        (1, "expert", "own"), (2, "coordinator", "for them")]
