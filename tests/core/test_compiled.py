"""core.compiled.CompiledQuery: the SQL the ORM would send, compiled once, bound with each call's values; the same
answers as the ORM on the database the tests run on (PostgreSQL in CI), and a clear refusal where it cannot."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.compiled import CompiledQuery
from reading import selectors
from reading.models import Read
from tests.factories.reading import with_images_and_drafts
from tests.factories.trial import add_cases, make_trial
from trial.models import Membership
from trial.permissions import roles_of

pytestmark = pytest.mark.django_db

ROLES = CompiledQuery(lambda *, user_id, trial_id: Membership.objects.filter(user_id=user_id, trial_id=trial_id)
                      .order_by("role").values_list("role"), kind="column", params={"user_id": int, "trial_id": int})


def test_the_same_sql_and_answers_as_the_orm():
    t = make_trial(code="CQA", centers=1)
    trial = t["trial"]
    members = list(Membership.objects.filter(trial=trial))
    assert members
    for m in members:
        orm = Membership.objects.filter(user_id=m.user_id, trial_id=trial.pk).order_by("role").values_list("role")
        with CaptureQueriesContext(connection) as q:
            got = ROLES(user_id=m.user_id, trial_id=trial.pk)
        assert got == [r[0] for r in orm]
        assert len(q.captured_queries) == 1
        with CaptureQueriesContext(connection) as q_orm:
            list(orm.all())  # a fresh evaluation (the first filled the cache)
        assert q.captured_queries[0]["sql"] == q_orm.captured_queries[0]["sql"]  # the same SQL and values
    assert ROLES(user_id=10**9, trial_id=trial.pk) == []


def test_the_read_pages_selects_agree_with_the_orm():
    t = make_trial(code="CQB", centers=1)
    trial = t["trial"]
    cases = add_cases(t, 4)
    with_images_and_drafts(t, cases, size=64)
    now = timezone.now()
    reads = list(Read.objects.filter(case__trial=trial).select_related("case__trial"))
    assert reads
    for read in reads:
        orm_available = selectors.available_reads(Read.objects.filter(pk=read.pk), trial, now).exists()
        assert selectors.is_available(read, now) is orm_available
        upcoming = selectors.available_reads(
            Read.objects.filter(reader_id=read.reader_id, case__trial=trial,
                                status__in=[Read.Status.TODO, Read.Status.IN_PROGRESS]).exclude(pk=read.pk),
            trial, now).order_by("order_key", "pk").first()
        url = selectors.next_display_url(read, now)
        if upcoming is None:
            assert url is None
        else:
            first_image = upcoming.case.images.order_by("created_at", "pk").first()
            assert url is not None and str(first_image.public_id) in url
        images = selectors.image_entries(read.case)
        assert [e["id"] for e in images] == list(
            read.case.images.order_by("created_at", "pk").values_list("public_id", flat=True))
    walked = 0
    for m in Membership.objects.filter(trial=trial).select_related("user"):
        for case in {r.case for r in reads}:
            assert selectors.reader_sees_case_images(m.user, case) is Read.objects.filter(
                case=case, reader__user=m.user, reader__role="reader").exists()
        if m.role != "reader":
            with pytest.raises(PermissionDenied):
                selectors.next_read_id_for(m.user, trial, now)
            continue
        walked += 1
        for _ in range(3):  # in progress first, then the next to do, then none
            nxt = selectors.next_read_for(m.user, trial, now)
            assert selectors.next_read_id_for(m.user, trial, now) == (nxt.public_id if nxt else None)
            if nxt is None:
                break
            if nxt.status == Read.Status.TODO:
                Read.objects.filter(pk=nxt.pk).update(status=Read.Status.IN_PROGRESS, opened_at=now)
            else:
                Read.objects.filter(pk=nxt.pk).update(status=Read.Status.DONE, submitted_at=now)
    assert walked >= 2  # readers of both arms
    # roles_of through the compiled query: the membership table's roles
    m = Membership.objects.filter(trial=trial).select_related("user").first()
    assert roles_of(m.user, trial) == set(Membership.objects.filter(user=m.user, trial=trial)
                                          .values_list("role", flat=True))


def test_refusals_are_clear():
    with pytest.raises(ValueError, match="none of them None"):
        ROLES(user_id=None, trial_id=1)
    with pytest.raises(ValueError):
        ROLES(user_id=1)
    derived = CompiledQuery(lambda *, when: Membership.objects.filter(user__date_joined__lte=when + timedelta(days=1))
                            .values_list("role"), kind="column", params={"when": datetime})
    with pytest.raises(ImproperlyConfigured, match="derived"):
        derived(when=datetime(2020, 1, 1, tzinfo=UTC))
    unused = CompiledQuery(lambda *, user_id, trial_id: Membership.objects.filter(user_id=user_id)
                           .values_list("role"), kind="column", params={"user_id": int, "trial_id": int})
    with pytest.raises(ImproperlyConfigured, match="unused"):
        unused(user_id=1, trial_id=1)
    with pytest.raises(ImproperlyConfigured, match="kind"):
        CompiledQuery(lambda: Membership.objects.all(), kind="all", params={})
