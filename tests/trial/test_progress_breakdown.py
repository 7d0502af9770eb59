"""Progress by reader, center and expert with overdue work (issue 17), through trial.signals.progress_requested."""
from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.errors import InvalidInput
from rating.models import Rating
from reading.models import Read
from tests.factories.rating import complete_case, rating_trial
from tests.factories.trial import PASSWORD, make_trial
from trial import selectors, services
from trial.models import Trial

pytestmark = pytest.mark.django_db


@pytest.fixture
def t():
    t = rating_trial(code="PB", experts=3, panel=2, cases=2, overdue_after_days=7)
    complete_case(t["cases"][0])  # 2 reads done, 2 rating tasks made
    old = timezone.now() - dt.timedelta(days=8)
    Read.objects.filter(case=t["cases"][1]).update(created_at=old)  # the other case's reads: overdue
    return t


def _by(rows, key):
    return {r[key]: {k: r[k] for k in ("done", "in_progress", "todo", "overdue")} for r in rows}


def test_reads_by_reader_and_center_and_ratings_by_expert(t):
    p = selectors.trial_progress(t["trial"])
    readers = _by(p["reads_by_reader"], "reader")
    assert sum(r["done"] for r in readers.values()) == 2 and sum(r["todo"] for r in readers.values()) == 2
    assert sum(r["overdue"] for r in readers.values()) == 2
    for read in Read.objects.filter(case=t["cases"][1]).select_related("reader__user"):
        assert readers[read.reader.user.username]["overdue"] >= 1
    centers = _by(p["reads_by_center"], "center")
    c0, c1 = (c.center.code for c in t["cases"])
    assert centers[c0]["done"] == 2 and centers[c1] == {"done": 0, "in_progress": 0, "todo": 2, "overdue": 2}
    experts = _by(p["ratings_by_expert"], "expert")
    assert sum(e["todo"] for e in experts.values()) == 2 and sum(e["overdue"] for e in experts.values()) == 0
    Rating.objects.filter(case=t["cases"][0]).update(created_at=timezone.now() - dt.timedelta(days=7, hours=1))
    experts = _by(selectors.trial_progress(t["trial"])["ratings_by_expert"], "expert")
    assert sum(e["overdue"] for e in experts.values()) == 2


def test_api_and_page_show_the_breakdown(client, t):
    api = APIClient()
    api.force_authenticate(t["coordinator"])
    got = api.get(reverse("trial-progress", args=["PB"])).json()
    assert {"reads_by_reader", "reads_by_center", "ratings_by_expert"} <= set(got)
    assert api.get(reverse("trial-detail", args=["PB"])).json()["overdue_after_days"] == 7
    assert client.login(username=t["coordinator"].username, password=PASSWORD)
    html = client.get(reverse("trial:detail", args=["PB"])).content.decode()
    assert 'id="progress-readers"' in html and 'id="progress-centers"' in html and 'id="progress-experts"' in html
    assert "not done 7 day(s)" in html


def test_overdue_setting_default_and_validation(db):
    t = make_trial(code="PD", status=Trial.Status.SETUP)
    assert t["trial"].overdue_after_days == 14
    with pytest.raises(InvalidInput):
        services.update_trial_settings(t["coordinator"], t["trial"], overdue_after_days=0)
