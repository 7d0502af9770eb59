"""PostgreSQL runs the app's repeated statements prepared (core.db.postgresql; docs/performance.md, "Prepared
statements"), and a write that pghistory prefixes with its context still goes through (bound on the client)."""
from __future__ import annotations

import pghistory
import pytest
from django.db import connection

from tests.factories.trial import make_trial
from trial.models import Trial

pytestmark = pytest.mark.django_db


def test_repeated_selects_are_prepared_and_tracked_writes_still_work():
    assert connection.vendor == "postgresql", "prepared statements are PostgreSQL's (the suite runs on it)"
    assert connection.settings_dict["ENGINE"] == "core.db.postgresql"
    assert connection.features.uses_server_side_binding
    t = make_trial(code="PRP", centers=1)
    for _ in range(4):
        assert Trial.objects.filter(code="PRP").values_list("pk", flat=True).first() == t["trial"].pk
    with connection.cursor() as cur:
        cur.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ['%"trial_trial"%'])
        assert cur.fetchall(), "the repeated select was not prepared"
    # A pghistory-tracked write under a history context (two statements in one call): saved and recorded
    with pghistory.context(reason="test"):
        Trial.objects.filter(pk=t["trial"].pk).update(title="Prepared statements")
    assert Trial.objects.get(pk=t["trial"].pk).title == "Prepared statements"
