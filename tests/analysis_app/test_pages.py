"""The statistician's page, downloads and API: who may see what, and a run from request to files."""
from __future__ import annotations

import pytest
from django.urls import reverse

from analysis import services
from analysis.models import AnalysisRun
from core.errors import NotAllowed
from trial.models import Membership

pytestmark = pytest.mark.django_db


def _user(trial, role):
    return Membership.objects.filter(trial=trial, role=role).select_related("user").first().user


@pytest.fixture
def done_run(small_trial, django_capture_on_commit_callbacks):
    trial = small_trial["trial"]
    with django_capture_on_commit_callbacks(execute=True):
        run = services.request_analysis(_user(trial, "statistician"), trial)
    run.refresh_from_db()
    assert run.status == AnalysisRun.Status.DONE, run.error
    return run


def test_statistician_runs_analysis_from_the_page(client, small_trial, django_capture_on_commit_callbacks):
    trial = small_trial["trial"]
    client.force_login(_user(trial, "statistician"))
    url = reverse("analysis:page", args=[trial.code])
    page = client.get(url)
    assert page.status_code == 200 and b"No analysis has been run" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(url)
    assert resp.status_code == 302
    run = AnalysisRun.objects.get(trial=trial)
    assert run.status == "done" and run.progress == 100 and run.arms_masked is True
    assert len(run.data_sha256) == 64 and run.summary["assisted"] == "X"
    status = client.get(reverse("analysis:run_status", args=[trial.code, run.pk])).json()
    assert status["status"] == "done" and {f["name"] for f in status["files"]} >= {
        "export.zip", "report/report.html", "report/results.json", "report/figures/roc.png"}
    page = client.get(url).content.decode()
    assert "Latest results" in page and "masked (X/Y)" in page
    for f in status["files"]:
        r = client.get(f["url"])
        assert r.status_code == 200, f
        body = b"".join(r.streaming_content)
        assert body, f
    z = client.get(reverse("analysis:file", args=[trial.code, run.pk, "export.zip"]))
    assert z["Content-Disposition"].startswith("attachment")
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(b"".join(z.streaming_content))).namelist()
    assert {n.split("/")[-1] for n in names} >= {"reads.csv", "ratings.csv", "cases.csv", "drafts.csv",
                                                 "allocations.csv", "data_dictionary.csv", "manifest.json"}


def test_run_progress_and_failure_are_recorded(small_trial, monkeypatch, django_capture_on_commit_callbacks):
    trial = small_trial["trial"]
    seen = []
    real = services.run_analysis

    def spy(trial, out_dir, progress=None):
        def p(pct, msg):
            seen.append(pct)
            progress(pct, msg)
        return real(trial, out_dir, progress=p)

    monkeypatch.setattr(services, "run_analysis", spy)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.request_analysis(_user(trial, "coordinator"), trial)
    run.refresh_from_db()
    assert seen == [20, 60, 90] and run.progress == 100 and run.status == "done"

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "run_analysis", boom)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.request_analysis(_user(trial, "statistician"), trial)
    run.refresh_from_db()
    assert run.status == "failed" and "disk full" in run.message and "RuntimeError" in run.error


def test_readers_and_experts_get_403(client, done_run):
    for role in ("reader", "expert"):
        _assert_403(client, done_run, role)


def _assert_403(client, done_run, role):
    trial = done_run.trial
    client.force_login(_user(trial, role))
    urls = [reverse("analysis:page", args=[trial.code]),
            reverse("analysis:run_status", args=[trial.code, done_run.pk]),
            reverse("analysis:file", args=[trial.code, done_run.pk, "report/report.html"]),
            reverse("analysis:file", args=[trial.code, done_run.pk, "export.zip"]),
            reverse("analysis:file", args=[trial.code, done_run.pk, "report/figures/roc.png"]),
            reverse("analysis-run-list", args=[trial.code]),
            reverse("analysis-run-detail", args=[trial.code, done_run.pk])]
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("analysis:page", args=[trial.code])).status_code == 403
    assert client.post(reverse("analysis-run-list", args=[trial.code])).status_code == 403
    with pytest.raises(NotAllowed):
        services.request_analysis(_user(trial, role), trial)
    assert AnalysisRun.objects.count() == 1


def test_files_outside_the_run_are_not_served(client, done_run):
    trial = done_run.trial
    client.force_login(_user(trial, "statistician"))
    for name in ("../../../etc/passwd", "report/../../run-1/export.zip", "export/reads.csv", "nope.txt",
                 "report/figures/../../../x"):
        assert client.get(reverse("analysis:file", args=[trial.code, done_run.pk, name])).status_code == 404, name
    other = AnalysisRun.objects.create(trial=trial, status="queued")
    assert client.get(reverse("analysis:file", args=[trial.code, other.pk, "export.zip"])).status_code == 404


def test_api_list_create_retrieve(client, small_trial, django_capture_on_commit_callbacks):
    trial = small_trial["trial"]
    client.force_login(_user(trial, "statistician"))
    base = reverse("analysis-run-list", args=[trial.code])
    assert client.get(base).json()["results"] == []
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(base)
    assert created.status_code == 201
    run_id = created.json()["id"]
    got = client.get(reverse("analysis-run-detail", args=[trial.code, run_id])).json()
    assert got["status"] == "done" and got["progress"] == 100 and got["arms_masked"] is True
    assert any(f["name"] == "report/report.html" for f in got["files"])
    assert client.get(got["files"][0]["url"]).status_code == 200
    assert [r["id"] for r in client.get(base).json()["results"]] == [run_id]


def test_task_is_not_routed_to_the_gpu_queue(settings):
    from fnmatch import fnmatch

    from analysis.tasks import run_analysis_task

    assert run_analysis_task.name == "analysis.tasks.run_analysis_task"
    assert not [p for p in settings.CELERY_TASK_ROUTES if fnmatch(run_analysis_task.name, p)]
