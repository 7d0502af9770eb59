import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories.trial import PASSWORD, User, UserFactory, make_trial
from trial.models import AuditEntry, Case, Center, Membership, Trial


@pytest.fixture
def t(db):
    return make_trial(code="PG", status=Trial.Status.ENROLLING)


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_anonymous_is_sent_to_login(client, t):
    r = client.get(reverse("trial:detail", args=[t["trial"].code]))
    assert r.status_code == 302 and reverse("login") in r["Location"]
    assert APIClient().get(reverse("trial-list")).status_code == 401


def test_reader_cannot_reach_coordinator_pages_or_api(client, t):
    reader = t["readers"][0].user
    login(client, reader)
    code = t["trial"].code
    for url in [reverse(name, args=[code]) for name in ("trial:detail", "trial:allocations", "trial:audit")]:
        assert client.get(url).status_code == 403
    assert client.post(reverse("trial:center_add", args=[code]),
                       {"code": "zz", "name": "Z"}).status_code == 403
    api = APIClient()
    api.force_authenticate(reader)
    assert api.get(reverse("allocation-list", args=[code])).status_code == 403
    assert api.get(reverse("member-list", args=[code])).status_code == 403
    assert not Center.objects.filter(code="zz").exists()


def test_coordinator_workflow_through_pages(client, t):
    login(client, t["coordinator"])
    code = t["trial"].code
    r = client.post(reverse("trial:case_add", args=[code]),
                    {"code": "WEB1", "center": t["centers"][0].pk}, follow=True)
    assert b"Case added" in r.content
    case = Case.objects.get(code="WEB1")
    r = client.post(reverse("trial:enrol_case", args=[code, case.pk]), follow=True)
    assert b"enrolled" in r.content
    case.refresh_from_db()
    assert case.enrolled_at is not None
    r = client.get(reverse("trial:detail", args=[code]))
    assert r.status_code == 200 and b"WEB1" in r.content


@pytest.mark.parametrize(
    "url,data,message",
    [
        ("trial:center_add", {"code": "c1", "name": "Dup"}, b"already exists"),
        ("trial:center_add", {"code": "bad code!", "name": "X"}, b"Code"),
        ("trial:member_add", {"username": "newbie", "role": "reader"}, b"A reader needs a center"),
        ("trial:case_add", {"code": "", "center": ""}, b"required"),
    ],
)
def test_bad_form_input_gets_a_message_and_writes_nothing(client, t, url, data, message):
    login(client, t["coordinator"])
    def counts():
        return (AuditEntry.objects.count(), Center.objects.count(), Membership.objects.count(), Case.objects.count(),
                User.objects.count())

    before = counts()
    r = client.post(reverse(url, args=[t["trial"].code]), data, follow=True)
    assert r.status_code == 200 and message in r.content
    after = counts()
    assert before == after


def test_create_trial_form_errors(client, db):
    staff = UserFactory(username="staffer", is_superuser=True)
    login(client, staff)
    r = client.post(reverse("trial:create"), {"code": "N1", "title": "T", "design": "paired_by_case",
                                     "findings": "Bad Code: x", "expert_panel_size": 3, "preference_majority": 5})
    assert r.status_code == 200
    assert b"majority cannot exceed" in r.content
    assert not Trial.objects.filter(code="N1").exists()
    r = client.post(reverse("trial:create"), {"code": "N1", "title": "T", "design": "paired_by_case",
                                     "findings": "Bad Code: x", "expert_panel_size": 3, "preference_majority": 2})
    assert b"lower-case" in r.content and not Trial.objects.filter(code="N1").exists()
    r = client.post(reverse("trial:create"),
                    {"code": "N1", "title": "T", "design": "crossover", "findings": "",
                                     "expert_panel_size": 3, "preference_majority": 2})
    assert r.status_code == 302 and Trial.objects.get(code="N1").findings[0]["code"] == "pleural_effusion"


def test_api_with_token_auth_and_reader_expert_exclusivity(t):
    token = Token.objects.create(user=t["coordinator"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    code = t["trial"].code
    r = api.get(reverse("member-list", args=[code]))
    assert r.status_code == 200 and r.json()["count"] >= 5
    reader_name = t["readers"][0].user.username
    r = api.post(reverse("member-list", args=[code]),
                 {"username": reader_name, "role": "expert"}, format="json")
    assert r.status_code == 409 and "reader and an expert" in r.json()["detail"]
    r = api.post(reverse("case-list", args=[code]), {"code": "API1", "center": "c1"}, format="json")
    assert r.status_code == 201 and r.json()["arm"] is None
    r = api.post(reverse("case-list", args=[code]), {"code": "API2", "center": "nowhere"}, format="json")
    assert r.status_code == 400 and "center" in r.json()
    assert api.get(reverse("schema")).status_code == 200


def test_api_allocations_list_only_revealed(t):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    r = api.get(reverse("allocation-list", args=[t["trial"].code]))
    assert r.status_code == 200
    assert r.json()["count"] == len(t["readers"])  # readers enrolled; nothing else revealed


def test_enrol_all_imported_cases(client, t):
    for i in range(3):
        Case.objects.create(trial=t["trial"], center=t["centers"][i % 2], code=f"ALL{i}")
    login(client, t["coordinator"])
    r = client.post(reverse("trial:enrol_all", args=[t["trial"].code]), follow=True)
    assert b"3 case(s) enrolled" in r.content
    assert not Case.objects.filter(trial=t["trial"], enrolled_at__isnull=True).exists()
    assert b"Reads done" in client.get(reverse("trial:detail", args=[t["trial"].code])).content
