"""The standalone arena (issue 20 item 1; docs/ai-evaluation.md, "Standalone arena"): which versions take part, the
draw of tasks from the trial's secret (uniform, reproducible, sides balanced), drafts left out and counted, the
expert's answers (double and concurrent submits), and the blinding rule between arena and reader-pair ratings."""
from __future__ import annotations

import hashlib
import hmac
import threading
from collections import Counter
from types import SimpleNamespace

import pytest
from django.db import connection, connections
from django.urls import reverse
from rest_framework.test import APIClient
from scipy import stats

from core.errors import Conflict, InvalidInput, NotAllowed
from inference.models import ArenaModelVersion, Draft, OodAction
from inference.selectors import arena_model_versions
from inference.services import set_arena_model_versions
from rating import selectors
from rating import services as rating_services
from rating.models import ArenaTask, Rating
from tests.factories.imaging import add_image
from tests.factories.rating import GOOD, complete_case, rating_trial
from tests.factories.trial import PASSWORD, add_cases
from tests.rating.arena_support import arena_trial, arena_versions, tasks_of
from trial import services
from trial.models import AuditEntry, Trial

pytestmark = pytest.mark.django_db

ANSWER = {"preference": "tie", "quality_a": 4, "quality_b": 3, "comment": "Both fine."}


def _hmac(secret: str, msg: str) -> str:
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


# -- which versions ---------------------------------------------------------------------------------------------
def test_the_default_arena_is_the_ai_arms_versions_and_needs_two():
    t = rating_trial(code="AD", cases=2, ai_model=True)
    assert arena_model_versions(t["trial"]) == [t["arms"]["ai_assisted"].model_assignment.model_version]
    with pytest.raises(InvalidInput, match="two or more model versions"):
        rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])


def test_setting_versions_queues_their_drafts_through_the_draft_path_and_is_audited():
    t = rating_trial(code="AV", cases=3, ai_model=True)
    mvs = arena_versions(t, 3)
    assert not Draft.objects.filter(model_version=mvs[1]).exists()
    with pytest.raises(NotAllowed):
        set_arena_model_versions(actor=t["experts"][0].user, trial=t["trial"], model_versions=mvs)
    with pytest.raises(InvalidInput, match="at least two"):
        set_arena_model_versions(actor=t["coordinator"], trial=t["trial"], model_versions=[mvs[1], mvs[1]])
    set_arena_model_versions(actor=t["coordinator"], trial=t["trial"], model_versions=mvs)
    assert arena_model_versions(t["trial"]) == sorted(mvs, key=lambda mv: mv.name)
    for mv in mvs[1:]:  # the extra versions' drafts are queued for every enrolled case
        assert set(Draft.objects.filter(model_version=mv).values_list("case", flat=True)) == {c.pk for c in t["cases"]}
    late = add_cases(t, 1, prefix="LATE")[0]  # a case enrolled later gets them at enrolment
    assert {d.model_version_id for d in Draft.objects.filter(case=late)} == {mv.pk for mv in mvs}
    entry = AuditEntry.objects.get(action="arena:versions")
    assert entry.after["model_versions"] == sorted(mv.name for mv in mvs)
    # Setting it again to two versions drops the third from the arena (its drafts stay: one per case and version).
    set_arena_model_versions(actor=t["coordinator"], trial=t["trial"], model_versions=mvs[:2])
    assert ArenaModelVersion.objects.filter(trial=t["trial"]).count() == 2


# -- the draw ---------------------------------------------------------------------------------------------------
def test_the_pair_draw_is_uniform_reproducible_and_recomputable_from_the_secret():
    trial = SimpleNamespace(secret="arena-uniformity-secret")
    drafts = ["d1", "d2", "d3", "d4"]
    pairs = [("d1", "d2"), ("d1", "d3"), ("d1", "d4"), ("d2", "d3"), ("d2", "d4"), ("d3", "d4")]
    counts = Counter()
    for pk in range(1, 6001):
        case = SimpleNamespace(pk=pk)
        pair = rating_services.draw_arena_pair(trial, case, drafts)
        assert pair == rating_services.draw_arena_pair(trial, case, drafts)  # the same whoever asks
        seed = _hmac(trial.secret, f"arena-pair|{pk}")  # recomputed without the code under test
        assert pair == pairs[int(seed[:14], 16) % 6]
        counts[pair] += 1
    assert set(counts) == set(pairs)
    assert stats.chisquare(list(counts.values())).pvalue > 0.001  # uniform over the 6 pairs
    assert rating_services.draw_arena_pair(trial, SimpleNamespace(pk=1), ["only"]) is None


def test_tasks_are_drawn_reproducibly_with_balanced_sides_and_a_full_panel():
    t = arena_trial(code="AT", versions=3, cases=24, experts=3, panel=2)
    trial = t["trial"]
    draw = rating_services.create_arena_tasks(actor=t["coordinator"], trial=trial)
    assert (draw.cases_considered, draw.cases_in_arena, draw.tasks_made, draw.cases_short_of_panel) == (24, 24, 48, 0)
    assert draw.excluded_drafts == dict.fromkeys(rating_services.ARENA_EXCLUSIONS, 0)
    tasks = list(ArenaTask.objects.filter(case__trial=trial).select_related("draft_a__model_version",
                                                                              "draft_b__model_version"))
    names = sorted(mv.name for mv in t["versions"])
    swapped = 0
    for task in tasks:
        assert task.pair_seed == _hmac(trial.secret, f"arena-pair|{task.case_id}")
        assert task.order_seed == _hmac(trial.secret, f"arena-order|{task.public_id}")
        pair = sorted((task.draft_a.model_version.name, task.draft_b.model_version.name))
        all_pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        assert tuple(pair) == all_pairs[int(task.pair_seed[:14], 16) % 3]
        is_swapped = task.draft_a.model_version.name > task.draft_b.model_version.name
        assert is_swapped == (int(task.order_seed[:16], 16) & 1 == 1)
        swapped += is_swapped
    # Sides: each task's own fair bit; over 48 tasks both sides come up often (exact binomial, two-sided).
    assert stats.binomtest(swapped, len(tasks)).pvalue > 0.001 and 0 < swapped < len(tasks)
    per_case = Counter(task.case_id for task in tasks)
    assert set(per_case.values()) == {2}
    assert all(len({tk.draft_a_id for tk in tasks if tk.case_id == c} | {tk.draft_b_id for tk in tasks
                                                                         if tk.case_id == c}) == 2 for c in per_case)
    load = Counter(task.expert_id for task in tasks)
    assert max(load.values()) - min(load.values()) <= 1  # least loaded first
    again = rating_services.create_arena_tasks(actor=t["coordinator"], trial=trial)  # idempotent
    assert again.tasks_made == 0 and ArenaTask.objects.filter(case__trial=trial).count() == 48
    assert AuditEntry.objects.filter(action="arena:create").count() == 48
    assert AuditEntry.objects.filter(action="arena:draw").count() == 2


def test_withheld_failed_and_unready_drafts_are_left_out_and_counted():
    t = arena_trial(code="AX", versions=2, cases=5, experts=2, panel=2)
    base, other = t["versions"]
    c = t["cases"]
    Draft.objects.filter(case=c[0], model_version=other).update(ood_action=OodAction.WITHHELD)
    Draft.objects.filter(case=c[1], model_version=other).update(status=Draft.Status.FAILED, findings_text="",
                                                                impression_text="")
    Draft.objects.filter(case=c[2], model_version=base).update(status=Draft.Status.QUEUED)
    Draft.objects.filter(case=c[3], model_version=base).update(findings_text=" ", impression_text="")
    draw = rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    assert draw.excluded_drafts == {"missing": 0, "queued": 1, "failed": 1, "withheld": 1, "empty": 1}
    assert (draw.cases_considered, draw.cases_without_pair, draw.cases_in_arena) == (5, 4, 1)
    assert set(ArenaTask.objects.values_list("case", flat=True)) == {c[4].pk}


def test_a_sample_of_cases_is_drawn_from_the_secret_and_kept_on_reruns():
    t = arena_trial(code="AS", versions=2, cases=8, experts=2, panel=1)
    with pytest.raises(InvalidInput, match="sample size"):
        rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"], sample_size=0)
    draw = rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"], sample_size=3)
    assert draw.cases_in_arena == 3 and draw.tasks_made == 3
    chosen = set(ArenaTask.objects.values_list("case", flat=True))
    keyed = sorted(t["cases"], key=lambda c: _hmac(t["trial"].secret, f"arena-sample|{c.pk}"))
    assert chosen == {c.pk for c in keyed[:3]}
    assert rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"], sample_size=3).tasks_made == 0
    assert set(ArenaTask.objects.values_list("case", flat=True)) == chosen


def test_the_coordinator_may_name_the_arena_experts():
    t = arena_trial(code="AE", versions=2, cases=4, experts=3, panel=1)
    only = t["experts"][2]
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"], experts=[only])
    assert set(ArenaTask.objects.values_list("expert", flat=True)) == {only.pk}
    other = rating_trial(code="AE2", cases=0)
    with pytest.raises(InvalidInput, match="expert of this trial"):
        rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"], experts=[other["experts"][0]])


# -- the expert's answers ---------------------------------------------------------------------------------------
@pytest.fixture
def at(db):
    t = arena_trial(code="AA", versions=2, cases=2, experts=2, panel=2)
    for case in t["cases"]:
        add_image(case)
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    t["task"] = tasks_of(t["experts"][0])[0]
    t["user"] = t["experts"][0].user
    return t


def _url(t, action="task"):
    return reverse(f"arena-{action}", args=[t["trial"].code, t["task"].public_id])


def test_double_submit_is_answered_clearly_and_stored_once(at):
    api = api_for(at["user"])
    assert api.post(_url(at, "autosave"), {"quality_a": 2}, format="json").status_code == 200
    missing = api.post(_url(at, "submit"), {"quality_b": 3}, format="json")
    assert missing.status_code == 400 and "preference (A, B or tie)" in missing.json()["detail"]
    bad = api.post(_url(at, "autosave"), {"preference": "C"}, format="json")
    assert bad.status_code == 400
    assert api.post(_url(at, "autosave"), {"quality_a": 9}, format="json").status_code == 400
    first = api.post(_url(at, "submit"), ANSWER, format="json")
    assert first.status_code == 200 and first.json()["already_submitted"] is False
    again = api.post(_url(at, "submit"), ANSWER, format="json")  # a double click / retried request
    assert again.status_code == 200 and again.json()["already_submitted"] is True
    changed = api.post(_url(at, "submit"), {**ANSWER, "preference": "A"}, format="json")
    assert changed.status_code == 409 and changed.json()["code"] == "already_submitted"
    assert api.post(_url(at, "autosave"), {"quality_a": 1}, format="json").status_code == 409
    task = ArenaTask.objects.get(pk=at["task"].pk)
    assert (task.status, task.preference, task.quality_a, task.quality_b) == ("done", "tie", 4, 3)
    assert AuditEntry.objects.filter(action="arena:submit", object_id=str(task.pk)).count() == 1


def test_quality_is_optional_and_the_page_form_submits_once(at, client):
    client.login(username=at["user"].username, password=PASSWORD)
    page = reverse("arena:task", args=[at["trial"].code, at["task"].public_id])
    assert client.post(page, {}).status_code == 400  # no preference
    r = client.post(page, {"preference": "B"}, follow=True)
    assert r.status_code == 200 and b"Judgement submitted." in r.content
    assert client.post(page, {"preference": "A"}).status_code == 409
    task = ArenaTask.objects.get(pk=at["task"].pk)
    assert (task.preference, task.quality_a, task.quality_b) == ("B", None, None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_store_exactly_one_judgement(monkeypatch):
    assert connection.vendor == "postgresql", "row locks are only meaningful on PostgreSQL"
    t = arena_trial(code="ACC", versions=2, cases=1, experts=1, panel=1)
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    task = ArenaTask.objects.get()
    user = t["experts"][0].user
    answers = [{"preference": p, "quality_a": q, "comment": f"thread {i}"}
               for i, (p, q) in enumerate([("A", 5), ("B", 2), ("tie", 3), ("A", 4)] * 3)]
    barrier = threading.Barrier(len(answers))
    results, errors = [], []

    def worker(answer):
        try:
            barrier.wait()
            results.append(rating_services.submit_arena_task(user, ArenaTask.objects.get(pk=task.pk), answer))
        except Exception as exc:  # Conflict expected for all but one; anything else fails below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(a,)) for a in answers]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [type(e) for e in errors if not isinstance(e, Conflict)] == [], [repr(e) for e in errors]
    assert sum(1 for _, created in results if created) == 1, (results, [repr(e) for e in errors])
    stored = ArenaTask.objects.get(pk=task.pk)
    winner = next(a for a in answers if a["comment"] == stored.comment)
    assert (stored.preference, stored.quality_a) == (winner["preference"], winner["quality_a"])
    assert AuditEntry.objects.filter(action="arena:submit", object_id=str(task.pk)).count() == 1


def test_an_expert_never_receives_a_model_name_or_another_experts_task(at, client):
    task = at["task"]
    other_task = tasks_of(at["experts"][1])[0]
    forbidden = [mv.name for mv in at["versions"]] + [at["arms"]["ai_assisted"].code, at["arms"]["unassisted"].code,
                                                      "0.8731", f'"draft_a": {task.draft_a_id}']
    client.login(username=at["user"].username, password=PASSWORD)
    api = api_for(at["user"])
    bodies = [
        client.get(reverse("arena:worklist", args=[at["trial"].code])).content.decode(),
        client.get(reverse("arena:task", args=[at["trial"].code, task.public_id])).content.decode(),
        api.get(reverse("arena-worklist", args=[at["trial"].code])).content.decode(),
        api.get(_url(at)).content.decode(),
        api.post(_url(at, "open")).content.decode(),
        api.post(_url(at, "submit"), {"preference": "Z"}, format="json").content.decode(),
        api.get(reverse("arena-setup", args=[at["trial"].code])).content.decode(),  # refused: coordinators only
    ]
    for body in bodies:
        for s in forbidden:
            assert s.lower() not in body.lower(), s
    payload = api.get(_url(at)).json()
    assert [d["label"] for d in payload["drafts"]] == ["A", "B"] and set(payload["drafts"][0]) == {
        "label", "findings", "impression"}
    assert "Heart" in " ".join(payload["drafts"][0]["findings"] + payload["drafts"][1]["findings"])
    for url in (reverse("arena:task", args=[at["trial"].code, other_task.public_id]),
                reverse("arena-task", args=[at["trial"].code, other_task.public_id])):
        r = client.get(url)
        assert r.status_code == 404
        assert all(s.lower() not in r.content.decode().lower() for s in forbidden)
    # The task's case images are the expert's to view; another case's (no task of theirs) are not.
    image = task.case.images.get()
    assert payload["images"][0]["id"] == image.public_id
    assert client.get(reverse("imaging:image-meta", args=[image.public_id])).status_code == 200
    stranger = rating_trial(code="AO", cases=1)["cases"][0]
    assert client.get(reverse("imaging:image-meta", args=[add_image(stranger).public_id])).status_code in (403, 404)


def test_coordinator_api_sets_versions_and_draws(at):
    api = api_for(at["coordinator"])
    url = reverse("arena-setup", args=[at["trial"].code])
    got = api.get(url).json()
    assert got["model_versions"] == sorted(mv.name for mv in at["versions"]) and got["default"] is False
    assert got["total"] == 4 and got["cases"] == 2
    bad = api.post(url, {"model_versions": ["no-such-model", at["versions"][0].name]}, format="json")
    assert bad.status_code == 400 and "no-such-model" in bad.json()["detail"]
    assert api.post(url, {"model_versions": [at["versions"][0].name]}, format="json").status_code == 400
    draw = api.post(reverse("arena-draw", args=[at["trial"].code]), {"sample_size": 1}, format="json")
    assert draw.status_code == 200 and draw.json()["tasks_made"] == 0
    assert api_for(at["user"]).post(reverse("arena-draw", args=[at["trial"].code])).status_code == 403


# -- the blinding rule --------------------------------------------------------------------------------------------
def test_arena_drafts_of_a_case_wait_until_the_experts_reader_pair_rating_is_submitted(client):
    t = arena_trial(code="AB", versions=2, cases=2, experts=2, panel=2)
    complete_case(t["cases"][0])  # both experts now hold a reader-pair rating of case 0, not yet submitted
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    expert = t["experts"][0]
    task0 = ArenaTask.objects.get(case=t["cases"][0], expert=expert)
    task1 = ArenaTask.objects.get(case=t["cases"][1], expert=expert)
    user = expert.user
    assert list(selectors.arena_worklist(user, t["trial"])) == [task1]
    client.login(username=user.username, password=PASSWORD)
    api = api_for(user)
    for r in (client.get(reverse("arena:task", args=[t["trial"].code, task0.public_id])),
              api.get(reverse("arena-task", args=[t["trial"].code, task0.public_id])),
              api.post(reverse("arena-submit", args=[t["trial"].code, task0.public_id]), ANSWER, format="json")):
        assert r.status_code == 404  # as if it did not exist
    with pytest.raises(NotAllowed):  # the service refuses too
        rating_services.submit_arena_task(user, task0, ANSWER)
    rating = Rating.objects.get(case=t["cases"][0], expert=expert)
    rating_services.submit_rating(user, rating, GOOD)
    assert set(selectors.arena_worklist(user, t["trial"])) == {task0, task1}
    assert client.get(reverse("arena:task", args=[t["trial"].code, task0.public_id])).status_code == 200
    # The other expert has not submitted: still held back for them.
    other = ArenaTask.objects.get(case=t["cases"][0], expert=t["experts"][1])
    assert other not in selectors.arena_worklist(t["experts"][1].user, t["trial"])
    # Having seen the drafts, the expert can no longer amend that rating (a coordinator still can).
    with pytest.raises(Conflict, match="arena"):
        rating_services.amend_rating(actor=user, rating=rating, answer={"quality_a": 2}, reason="second look")
    amendment, _ = rating_services.amend_rating(actor=t["coordinator"], rating=rating, answer={"quality_a": 2},
                                                reason="typo")
    assert amendment.amended_as == "coordinator"


def test_an_expert_holding_an_arena_task_of_a_case_never_joins_its_reader_pair_panel():
    t = arena_trial(code="AP", versions=2, cases=1, experts=3, panel=1)
    rating_services.create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
    arena_expert = ArenaTask.objects.get().expert_id
    complete_case(t["cases"][0])  # the reads come in after the arena was drawn
    ratings = list(Rating.objects.filter(case=t["cases"][0]))
    assert len(ratings) == 1 and ratings[0].expert_id != arena_expert
    # Even when the panel asks for every expert: the arena's expert stays off, the panel stays short.
    Trial.objects.filter(pk=t["trial"].pk).update(expert_panel_size=3)
    rating_services.create_rating_tasks(t["cases"][0])
    assert arena_expert not in set(Rating.objects.filter(case=t["cases"][0]).values_list("expert", flat=True))


def test_arena_is_read_only_after_lock(at):
    coord = at["coordinator"]
    trial = at["trial"]
    for status in services.STATUS_ORDER[services.STATUS_ORDER.index(trial.status) + 1:]:
        trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), status, reason="test")
    api = api_for(at["user"])
    r = api.post(_url(at, "submit"), ANSWER, format="json")
    assert r.status_code == 409 and "locked" in r.json()["detail"]
    assert api.get(_url(at)).status_code == 200  # still viewable, read-only
    with pytest.raises(Exception, match="locked"):
        rating_services.create_arena_tasks(actor=coord, trial=trial)
