"""Fixtures for the security suite (issue 8).

`world` is one fully populated trial (PM: images, ready drafts, reads, a rating task, a finished analysis run) plus
a second trial (PX) whose coordinator plays "a member of another trial", and a superuser. It is built once per
module, outside the per-test transaction, so the permission matrix (dozens of tests) does not rebuild it; each test
still runs in its own rolled-back transaction (the `db` fixture), so the POSTs a test makes are undone. The module
flushes the database when it is done, as a transactional test does.
"""
from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command

from tests.factories.trial import PASSWORD, UserFactory, add_cases, make_trial

ROLES = ("anonymous", "coordinator", "reader", "expert", "statistician", "outsider")
ADMIN_ROLES = (*ROLES, "superuser")


@pytest.fixture(scope="module")
def world_media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("security-media")


@pytest.fixture(scope="module")
def world(request, django_db_setup, django_db_blocker, world_media):
    """The populated trial; see the module docstring. Keys: the make_trial() dict plus users/objects below."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django.conf import settings as dj_settings
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from analysis.models import AnalysisRun
    from inference.models import Draft, ExpertCalibration
    from inference.services import register_model_version, set_arena_model_versions
    from rating.models import ArenaTask, Rating
    from rating.services import create_arena_tasks
    from reading.models import Read
    from tests.factories.rating import complete_case
    from tests.factories.reading import reader_in, ready_draft, with_images_and_drafts
    from trial.models import AllocationList, AuditEntry

    saved = {"MEDIA_ROOT": dj_settings.MEDIA_ROOT}
    with django_db_blocker.unblock(), mock.patch("inference.services.send_draft_task", lambda draft_id: False):
        dj_settings.MEDIA_ROOT = world_media
        try:
            t = make_trial(code="PM", experts=2, expert_panel_size=2, preference_majority=2,
                           seed="pm-secret-seed-7f3a9c")
            cases = add_cases(t, 4)
            with_images_and_drafts(t, cases)
            t["cases"] = cases
            complete_case(cases[0])  # both reads of case 0 submitted: its rating tasks exist
            t["un_reader"] = reader_in(t, "unassisted")
            t["ai_reader"] = reader_in(t, "ai_assisted")
            t["read"] = Read.objects.filter(reader=t["un_reader"], submitted_at__isnull=True).order_by("pk").first()
            t["ai_read"] = Read.objects.filter(reader=t["ai_reader"], submitted_at__isnull=True).order_by("pk").first()
            t["rating"] = Rating.objects.order_by("pk").first()
            t["expert"] = t["rating"].expert
            # The standalone arena (issue 20 item 1): a second model version with ready drafts of cases 0, 2 and 3
            # (case 1's image stays the coordinator's alone); case 0's arena tasks wait for the experts' ratings.
            base = Draft.objects.filter(case=cases[0]).first().model_version
            second = register_model_version(name="pm-arena-secretmodel-2", backend="retrieval")
            set_arena_model_versions(actor=t["coordinator"], trial=t["trial"], model_versions=[base, second])
            for i in (0, 2, 3):
                ready_draft(cases[i], second, findings_text="Lungs are clear. Arena second opinion.",
                            impression_text="No acute finding.")
            create_arena_tasks(actor=t["coordinator"], trial=t["trial"])
            t["arena_versions"] = [base, second]
            t["arena_task"] = ArenaTask.objects.filter(expert=t["expert"], case=cases[2]).get()
            t["image"] = cases[1].images.first()
            t["draft"] = Draft.objects.filter(case__trial=t["trial"]).order_by("pk").first()
            # A stored expert-model calibration (analysis/expert_calibration.py writes these): its admin pages too.
            t["calibration"] = ExpertCalibration.objects.create(model_version=t["draft"].model_version,
                                                                trial=t["trial"], n_cases=20, findings={})
            run = AnalysisRun.objects.create(trial=t["trial"], requested_by=t["coordinator"],
                                             status=AnalysisRun.Status.DONE, progress=100, output_dir="analysis/pm-1",
                                             arms_masked=True)
            report = Path(world_media) / "analysis/pm-1/report"
            report.mkdir(parents=True)
            (report / "report.html").write_text("<html><body><h1>Report</h1><p>Arm X vs arm Y</p></body></html>")
            (report / "results.json").write_text(json.dumps({"arms": ["X", "Y"]}))
            t["run"] = run
            t["allocation_list"] = AllocationList.objects.get(trial=t["trial"])
            other = make_trial(code="PX", experts=1, centers=1, seed="px-seed")
            t["other"] = other
            root = UserFactory(username="pm-root", is_superuser=True, is_staff=True)
            t["users"] = {
                "anonymous": None,
                "coordinator": t["coordinator"],
                "reader": t["un_reader"].user,
                "expert": t["expert"].user,
                "statistician": t["statistician"].user,
                "outsider": other["coordinator"],
                "superuser": root,
            }
            t["token"] = Token.objects.create(user=t["coordinator"])
            t["group"] = Group.objects.create(name="pm-group")
            t["attempt"] = AccessAttempt.objects.create(username="x", ip_address="10.0.0.1", user_agent="ua",
                                                        get_data="", post_data="", http_accept="", path_info="/",
                                                        failures_since_start=1)
            t["access_log"] = AccessLog.objects.create(username="x", ip_address="10.0.0.1", user_agent="ua",
                                                       http_accept="", path_info="/")
            t["failure_log"] = AccessFailureLog.objects.create(username="x", ip_address="10.0.0.1", user_agent="ua",
                                                               http_accept="", path_info="/", locked_out=False)
            t["audit_entry"] = AuditEntry.objects.filter(trial=t["trial"]).order_by("pk").first()
            t["password"] = PASSWORD
        finally:
            for k, v in saved.items():
                setattr(dj_settings, k, v)
        yield t
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(autouse=True)
def _media_root(settings, world_media):
    """Overrides tests/conftest.py's: the module-scoped world writes its images and analysis files here."""
    settings.MEDIA_ROOT = world_media
