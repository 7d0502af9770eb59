"""The coordinator's case page and API (issue 17): metadata, flags, images, draft and read status, exclusion."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from inference.selectors import arm_model_version
from rating.models import Rating
from reading.models import Read
from tests.factories.imaging import add_image
from tests.factories.rating import complete_case, submit_read
from tests.factories.reading import DRAFT_FINDINGS, ready_draft
from tests.factories.trial import PASSWORD, add_cases, make_trial
from trial.models import AuditEntry, Case, Trial

pytestmark = pytest.mark.django_db


@pytest.fixture
def t():
    t = make_trial(code="CP", status=Trial.Status.READING)
    case = add_cases(t, 1)[0]
    image = add_image(case)
    image.flags = ["burned_in_annotation_checked"]
    image.save(update_fields=["flags"])
    ready_draft(case, arm_model_version(t["arms"]["ai_assisted"]))
    read = Read.objects.filter(case=case, arm__code="unassisted").get()
    submit_read(read, findings="Uniquely worded reader finding text.")
    return {**t, "case": case, "image": image}


def test_page_shows_status_flags_images_and_no_report_text(client, t):
    assert client.login(username=t["coordinator"].username, password=PASSWORD)
    case = t["case"]
    r = client.get(reverse("enrolment:case", args=["CP", case.pk]))
    html = r.content.decode()
    assert r.status_code == 200
    assert reverse("imaging:image-display", args=[t["image"].public_id]) in html
    assert "burned_in_annotation_checked" in html
    assert 'data-read-status="done"' in html and 'data-read-status="todo"' in html
    assert "retrieval baseline" in html and "ready" in html  # the draft's model and status
    assert "Uniquely worded" not in html and DRAFT_FINDINGS not in html  # status, never content


def test_api_overview_and_exclusion_with_reason(t):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    case = t["case"]
    got = api.get(reverse("case-overview", args=["CP", case.pk])).json()
    assert got["code"] == case.code and got["status"] == "enrolled" and got["can_exclude"]
    assert sorted(r["status"] for r in got["reads"]) == ["done", "todo"]
    assert {r["arm"] for r in got["reads"]} == {"unassisted", "ai_assisted"}
    assert got["images"][0]["flags"] == ["burned_in_annotation_checked"]
    # the page's rows: no rating task until both reads are in; the submitted read's amendment link
    assert got["rating_tasks"] == [] and got["ratings"] == {"total": 0, "done": 0}
    done = Read.objects.get(case=case, status="done")
    assert {r["amend_url"] for r in got["reads"]} == {None, reverse("reading:amend", args=["CP", done.public_id])}
    assert got["drafts"] == [{"model_version": "retrieval baseline", "status": "ready",
                              "queued_at": got["drafts"][0]["queued_at"],
                              "finished_at": got["drafts"][0]["finished_at"]}]

    url = reverse("case-exclude", args=["CP", case.pk])
    r = api.post(url, {}, format="json")
    assert r.status_code == 400
    r = api.post(url, {"reason": "Wrong body part (abdomen)"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "excluded" and not r.json()["can_exclude"]
    entry = AuditEntry.objects.get(trial=t["trial"], action="exclude")
    assert entry.reason == "Wrong body part (abdomen)" and entry.object_id == str(case.pk)


def test_readers_and_other_trials_get_nothing(client, t):
    case = t["case"]
    for user in (t["readers"][0].user, t["experts"][0].user, t["statistician"].user):
        api = APIClient()
        api.force_authenticate(user)
        assert api.get(reverse("case-overview", args=["CP", case.pk])).status_code == 403
        assert api.post(reverse("case-exclude", args=["CP", case.pk]), {"reason": "x"}).status_code == 403
    other = make_trial(code="CQ", status=Trial.Status.READING)
    api = APIClient()
    api.force_authenticate(other["coordinator"])
    assert api.get(reverse("case-overview", args=["CP", case.pk])).status_code == 403
    assert api.get(reverse("case-overview", args=["CQ", case.pk])).status_code == 404  # case of another trial
    assert Case.objects.get(pk=case.pk).status == "enrolled"


def test_page_exclusion_needs_a_reason(client, t):
    assert client.login(username=t["coordinator"].username, password=PASSWORD)
    case = t["case"]
    url = reverse("enrolment:case_exclude", args=["CP", case.pk])
    client.post(url, {"reason": ""})
    assert Case.objects.get(pk=case.pk).status == "enrolled"
    r = client.post(url, {"reason": "Duplicate study"}, follow=True)
    assert Case.objects.get(pk=case.pk).exclusion_reason == "Duplicate study"
    assert "Excluded: Duplicate study" in r.content.decode()


def test_api_lists_the_rating_tasks_the_page_shows(t):
    case = t["case"]
    complete_case(case)
    tasks = list(Rating.objects.filter(case=case).select_related("expert__user").order_by("pk"))
    assert tasks
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    got = api.get(reverse("case-overview", args=["CP", case.pk])).json()
    assert got["rating_tasks"] == [{"expert": r.expert.user.username, "status": "todo", "submitted_at": None,
                                    "amend_url": None} for r in tasks]
    assert got["ratings"] == {"total": len(tasks), "done": 0}
