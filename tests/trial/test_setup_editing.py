"""Editing setup (issue 17): centers, arms, people and settings change or go while the trial is in setup, each with
a reason that the audit log keeps; after setup the services refuse with a message that says why; the new-trial form,
the settings editor and the API offer every trial setting."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import Conflict, ErrorCode, InvalidInput
from inference.models import ArmModelVersion
from tests.browser import assert_accessible, login, screenshot
from tests.factories.trial import PASSWORD, UserFactory, make_trial
from trial import services
from trial.forms import SETTING_FIELDS, TrialForm
from trial.models import Arm, AuditEntry, Center, Membership, Trial

pytestmark = pytest.mark.django_db


def _setup_trial(code="SETUP", experts=2):
    coord = UserFactory(username=f"{code.lower()}-coord", is_staff=True)
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    trial = services.create_trial(coord, code=code, title=f"Trial {code}", allow_retrieval_baseline=True,
                                  expert_panel_size=min(experts, 2) or 1, preference_majority=1)
    centers = [services.add_center(coord, trial, code=f"c{i}", name=f"Center {i}") for i in (1, 2)]
    arms = [services.add_arm(coord, trial, code="unassisted", name="Standard"),
            services.add_arm(coord, trial, code="ai_assisted", name="AI", is_ai=True)]
    reader = services.add_member(coord, trial, user=UserFactory(username=f"{code.lower()}-r"), role="reader",
                                 center=centers[0], experience="junior")
    expert_ms = [services.add_member(coord, trial, user=UserFactory(username=f"{code.lower()}-e{i}"), role="expert",
                                     center=centers[0]) for i in range(experts)]
    return {"trial": trial, "coordinator": coord, "centers": centers, "arms": arms, "reader": reader,
            "experts": expert_ms}


def _last_entry(trial, action):
    return AuditEntry.objects.filter(trial=trial, action=action).order_by("-at", "-pk").first()


def test_center_changes_and_goes_with_a_reason_in_the_audit_log():
    s = _setup_trial()
    coord, c2 = s["coordinator"], s["centers"][1]
    with pytest.raises(InvalidInput, match="reason"):
        services.update_center(coord, c2, name="New", reason=" ")
    services.update_center(coord, c2, name="Second site", code="c2b", reason="site renamed")
    c2.refresh_from_db()
    assert (c2.code, c2.name) == ("c2b", "Second site")
    e = _last_entry(s["trial"], "update")
    assert (e.object_type, e.reason, e.before["name"], e.after["code"]) == ("trial.Center", "site renamed",
                                                                         "Center 2", "c2b")
    # A center with people keeps its code (case codes start with it) and cannot go.
    with pytest.raises(Conflict, match="code stays"):
        services.update_center(coord, s["centers"][0], name="x", code="zz", reason="r")
    with pytest.raises(Conflict, match="still has cases or people"):
        services.remove_center(coord, s["centers"][0], reason="r")
    services.remove_center(coord, c2, reason="site withdrew")
    assert not Center.objects.filter(pk=c2.pk).exists()
    e = _last_entry(s["trial"], "delete")
    assert (e.object_type, e.object_id, e.reason, e.before["code"]) == ("trial.Center", str(c2.pk), "site withdrew",
                                                                        "c2b")


def test_arm_changes_and_an_ai_arm_goes_with_its_model_version_record():
    s = _setup_trial("SETARM")
    coord, un, ai = s["coordinator"], *s["arms"]
    services.update_arm(coord, un, name="Usual care", ratio=2, reason="protocol v2")
    un.refresh_from_db()
    assert (un.name, un.ratio) == ("Usual care", 2)
    with pytest.raises(InvalidInput, match="ratio"):
        services.update_arm(coord, un, name="x", ratio=0, reason="r")
    assert ArmModelVersion.objects.filter(arm=ai).exists()
    services.remove_arm(coord, ai, reason="AI arm dropped")
    assert not Arm.objects.filter(pk=ai.pk).exists()
    assert not ArmModelVersion.objects.filter(arm_id=ai.pk).exists()
    types = set(AuditEntry.objects.filter(trial=s["trial"], action="delete", reason="AI arm dropped")
                .values_list("object_type", flat=True))
    assert types == {"trial.Arm", "inference.ArmModelVersion"}


def test_a_person_moves_center_or_changes_experience_and_can_be_removed():
    s = _setup_trial("SETPPL")
    coord, reader, c2 = s["coordinator"], s["reader"], s["centers"][1]
    with pytest.raises(InvalidInput, match="needs a center"):
        services.update_member(coord, reader, center=None, experience="senior", reason="r")
    services.update_member(coord, reader, center=c2, experience="senior", reason="moved")
    reader.refresh_from_db()
    assert (reader.center_id, reader.experience) == (c2.pk, "senior")
    expert = s["experts"][0]
    services.update_member(coord, expert, center=None, experience="senior", reason="no home center")
    expert.refresh_from_db()
    assert (expert.center_id, expert.experience) == (None, "")  # experience is a reader's only
    services.remove_member(coord, expert, reason="left")
    assert not Membership.objects.filter(pk=expert.pk).exists()


def test_the_sealed_list_fixes_arms_ratios_and_center_codes():
    s = _setup_trial("SETSEAL")
    coord = s["coordinator"]
    services.generate_allocation_list(coord, s["trial"], seed="s", block_sizes=[2, 4])
    with pytest.raises(Conflict, match="sealed"):
        services.remove_arm(coord, s["arms"][0], reason="r")
    with pytest.raises(Conflict, match="sealed"):
        services.update_arm(coord, s["arms"][0], name="n", ratio=3, reason="r")
    with pytest.raises(Conflict, match="sealed"):
        services.update_center(coord, s["centers"][1], name="n", code="c9", reason="r")
    services.update_center(coord, s["centers"][1], name="Renamed", reason="typo")  # a name is not a stratum
    services.update_arm(coord, s["arms"][0], name="Renamed arm", ratio=1, reason="typo")


def test_after_setup_every_edit_is_refused_with_a_clear_message():
    t = make_trial(code="SETDONE", status="enrolling")
    coord, center, arm = t["coordinator"], t["centers"][0], t["arms"]["unassisted"]
    calls = [
        lambda: services.update_center(coord, center, name="x", reason="r"),
        lambda: services.remove_center(coord, center, reason="r"),
        lambda: services.update_arm(coord, arm, name="x", ratio=1, reason="r"),
        lambda: services.remove_arm(coord, arm, reason="r"),
        lambda: services.update_member(coord, t["experts"][0], center=None, reason="r"),
    ]
    for call in calls:
        with pytest.raises(Conflict) as exc:
            call()
        assert exc.value.code == ErrorCode.NOT_IN_SETUP
        assert "only be changed while the trial is in setup" in exc.value.message
        assert "enrolling" in exc.value.message
    assert Center.objects.get(pk=center.pk).name == center.name


def test_pages_edit_and_remove_with_a_reason(client):
    s = _setup_trial("SETPAGE")
    code, c2 = s["trial"].code, s["centers"][1]
    assert client.login(username=s["coordinator"].username, password=PASSWORD)
    page = client.get(reverse("trial:detail", args=[code])).content.decode()
    assert reverse("trial:center_edit", args=[code, c2.pk]) in page
    assert reverse("trial:arm_remove", args=[code, s["arms"][1].pk]) in page
    assert reverse("trial:member_remove", args=[code, s["reader"].pk]) in page
    r = client.post(reverse("trial:center_edit", args=[code, c2.pk]), {"code": "c2", "name": "Renamed"}, follow=True)
    assert "Reason: This field is required." in r.content.decode()
    assert Center.objects.get(pk=c2.pk).name == "Center 2"
    r = client.post(reverse("trial:center_edit", args=[code, c2.pk]),
                    {"code": "c2", "name": "Renamed", "reason": "typo"}, follow=True)
    assert "Center changed." in r.content.decode()
    r = client.post(reverse("trial:member_remove", args=[code, s["reader"].pk]), {"reason": "left"}, follow=True)
    assert "Person removed." in r.content.decode()
    # After setup the page offers no editing, and a POST is refused with the service's message.
    Trial.objects.filter(pk=s["trial"].pk).update(status="enrolling")
    page = client.get(reverse("trial:detail", args=[code])).content.decode()
    assert reverse("trial:center_edit", args=[code, c2.pk]) not in page
    r = client.post(reverse("trial:arm_edit", args=[code, s["arms"][0].pk]),
                    {"name": "x", "ratio": 1, "reason": "r"}, follow=True)
    assert "can only be changed while the trial is in setup" in r.content.decode()


def test_settings_editor_offers_every_setting_and_keeps_the_panel_within_the_experts(client):
    s = _setup_trial("SETSET", experts=2)
    code = s["trial"].code
    assert client.login(username=s["coordinator"].username, password=PASSWORD)
    html = client.get(reverse("trial:settings", args=[code])).content.decode()
    for field in (*SETTING_FIELDS, "title", "reason"):
        assert f'name="{field}"' in html, field
    assert "This trial has 2 expert(s)." in html
    for words in ("pre-fills each finding", "electronic signature", "out of distribution"):
        assert words in html  # the model's help text
    post = {"title": "T", "expert_panel_size": 3, "preference_majority": 2, "washout_days": 28,
            "overdue_after_days": 14, "ood_action": "mark", "ood_threshold": 1.0, "date_policy": "shift",
            "allowed_modalities": "", "prefill_draft_findings": "on", "reason": "protocol v2"}
    r = client.post(reverse("trial:settings", args=[code]), post)
    assert r.status_code == 400 and "larger than the trial&#x27;s 2 expert(s)" in r.content.decode()
    post.update(expert_panel_size=2, require_signatures="on", prefill_draft_findings="", overdue_after_days=7,
                allowed_modalities="dr")
    r = client.post(reverse("trial:settings", args=[code]), post, follow=True)
    assert "Settings saved" in r.content.decode()
    t = Trial.objects.get(pk=s["trial"].pk)
    assert (t.expert_panel_size, t.require_signatures, t.prefill_draft_findings, t.overdue_after_days,
            t.allowed_modalities) == (2, True, False, 7, ["DR"])
    assert _last_entry(t, "update").reason == "protocol v2"


def test_new_trial_form_offers_every_setting_with_help_and_defaults(client):
    form = TrialForm()
    for name in SETTING_FIELDS:
        assert form.fields[name].help_text, name
    assert form.fields["expert_panel_size"].initial <= 3 and form.fields["preference_majority"].initial == 2
    assert form.fields["prefill_draft_findings"].initial is True
    assert form.fields["overdue_after_days"].initial == 14
    coord = UserFactory(username="newform-coord", is_staff=True)
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    assert client.login(username=coord.username, password=PASSWORD)
    r = client.post(reverse("trial:create"), {
        "code": "NEWFORM", "title": "New", "design": "paired_by_case", "expert_panel_size": 3,
        "preference_majority": 2, "washout_days": 28, "overdue_after_days": 10, "ood_action": "withhold",
        "ood_threshold": 1.5, "date_policy": "remove", "require_signatures": "on", "ask_blinding_guess": "on"})
    assert r.status_code == 302
    t = Trial.objects.get(code="NEWFORM")
    assert (t.ood_action, t.ood_threshold, t.date_policy, t.require_signatures, t.ask_blinding_guess,
            t.prefill_draft_findings, t.overdue_after_days) == ("withhold", 1.5, "remove", True, True, False, 10)


def test_api_creates_and_shows_every_setting():
    coord = UserFactory(username="apiset-coord", is_staff=True)
    coord.user_permissions.add(*Permission.objects.filter(codename="add_trial"))
    api = APIClient()
    api.force_authenticate(coord)
    r = api.post(reverse("trial-list"), {"code": "APISET", "title": "A", "require_signatures": True,
                                         "prefill_draft_findings": False, "ask_blinding_guess": True,
                                         "allowed_modalities": ["DR"]}, format="json")
    assert r.status_code == 201, r.content
    for key in ("require_signatures", "prefill_draft_findings", "ask_blinding_guess", "allow_retrieval_baseline",
                "allowed_modalities", "ood_action", "ood_threshold"):
        assert key in r.json()
    t = Trial.objects.get(code="APISET")
    assert (t.require_signatures, t.prefill_draft_findings, t.ask_blinding_guess) == (True, False, True)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [{"width": 1280, "height": 720}, {"width": 1440, "height": 900}],
                         ids=["1280x720", "1440x900"])
def test_coordinator_edits_setup_in_the_browser(live_server, page, size):
    s = _setup_trial(f"SETBR{size['width']}")
    code = s["trial"].code
    page.set_viewport_size(size)
    login(page, live_server, s["coordinator"].username, PASSWORD)
    page.goto(live_server.url + reverse("trial:detail", args=[code]))
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    page.click("#center-c2 details summary")
    page.fill("#center-c2 input[name=name]", "Second site")
    page.fill("#center-c2 input[name=reason]", "renamed by the site")
    page.click("#center-c2 details form >> nth=0 >> button")
    page.wait_for_load_state("networkidle")
    assert "Center changed." in page.inner_text("body")
    assert "Second site" in page.inner_text("#center-c2")
    page.click("#center-c2 details summary")
    assert_accessible(page, "trial page in setup, editing open")
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(page, f"coordinator-setup-edit-{size['width']}x{size['height']}")
    page.goto(live_server.url + reverse("trial:settings", args=[code]))
    assert_accessible(page, "settings editor")
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(page, f"coordinator-settings-{size['width']}x{size['height']}")


def test_api_changes_settings_with_a_reason_and_keeps_the_panel_within_the_experts():
    s = _setup_trial("APICHG", experts=2)
    api = APIClient()
    api.force_authenticate(s["coordinator"])
    url = reverse("trial-settings", args=[s["trial"].code])
    r = api.post(url, {"expert_panel_size": 3}, format="json")
    assert r.status_code == 400 and "2 expert(s)" in r.json()["detail"]
    r = api.post(url, {"prefill_draft_findings": False, "require_signatures": True, "reason": "SOP"}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["prefill_draft_findings"], r.json()["require_signatures"]) == (False, True)
    assert _last_entry(s["trial"], "update").reason == "SOP"
    Trial.objects.filter(pk=s["trial"].pk).update(status="enrolling")
    r = api.post(url, {"overdue_after_days": 7}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["detail"]
    other = UserFactory(username="apichg-other")
    api.force_authenticate(other)
    assert api.post(url, {"overdue_after_days": 7, "reason": "x"}, format="json").status_code == 404


def test_api_edits_and_removes_centers_arms_and_people_in_setup_only():
    s = _setup_trial("APIEDIT")
    code, coord = s["trial"].code, s["coordinator"]
    api = APIClient()
    api.force_authenticate(coord)
    c2, un, ai = s["centers"][1], *s["arms"]
    r = api.post(reverse("center-edit", args=[code, c2.pk]), {"name": "Site two", "reason": "renamed"},
                 format="json")
    assert r.status_code == 200 and r.json()["name"] == "Site two"
    r = api.post(reverse("arm-edit", args=[code, un.pk]), {"name": "Usual", "ratio": 2}, format="json")
    assert r.status_code == 400  # no reason
    r = api.post(reverse("arm-edit", args=[code, un.pk]), {"name": "Usual", "ratio": 2, "reason": "v2"},
                 format="json")
    assert r.status_code == 200 and r.json()["ratio"] == 2
    r = api.post(reverse("member-edit", args=[code, s["reader"].pk]),
                 {"center": "c2", "experience": "senior", "reason": "moved"}, format="json")
    assert r.status_code == 200 and (r.json()["center"], r.json()["experience"]) == ("c2", "senior")
    assert api.post(reverse("arm-remove", args=[code, ai.pk]), {"reason": "dropped"},
                    format="json").json() == {"removed": True}
    assert api.post(reverse("member-remove", args=[code, s["experts"][1].pk]), {"reason": "left"},
                    format="json").status_code == 200
    r = api.post(reverse("center-remove", args=[code, c2.pk]), {"reason": "closing"}, format="json")
    assert r.status_code == 409  # the reader moved there
    Trial.objects.filter(pk=s["trial"].pk).update(status="enrolling")
    r = api.post(reverse("center-edit", args=[code, c2.pk]), {"name": "x", "reason": "r"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "not_in_setup"
