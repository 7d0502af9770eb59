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


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields
            if f.attname not in obj.get_deferred_fields()}


def test_model_kinds_build_the_instances_the_orm_builds():
    """kind "object"/"objects": the same SQL as the ORM, instances with the same field values (JSON, datetimes
    and choices through Django's converters), select_related objects in place without another query, deferred
    fields deferred, annotations set; the hot selects of reading and rating that use it answer as the ORM."""
    from django.db import transaction
    from django.db.models import Count

    from rating.selectors import _OWN_TASK
    from reading.services import _OWN_READ
    from trial.permissions import _MEMBERSHIP
    from trial.selectors import _TRIAL_BY_CODE, trial_or_404

    t = make_trial(code="CQM", centers=1)
    trial = t["trial"]
    add_cases(t, 3)
    reads = list(Read.objects.filter(case__trial=trial))
    assert len(reads) >= 2
    Read.objects.filter(pk=reads[0].pk).update(opened_at=timezone.now(), finding_marks={"effusion": "present"})
    related = ("case", "case__trial", "arm", "arm__model_assignment__model_version", "reader")
    each = CompiledQuery(lambda *, trial_id: Read.objects.filter(case__trial_id=trial_id).select_related(*related)
                         .annotate(n_images=Count("case__images")).order_by("pk"),
                         kind="objects", params={"trial_id": int})
    orm = list(Read.objects.filter(case__trial_id=trial.pk).select_related(*related)
               .annotate(n_images=Count("case__images")).order_by("pk"))
    with CaptureQueriesContext(connection) as q:
        got = each(trial_id=trial.pk)
        for r in got:  # related objects were built from the same row: no query
            assert r.case.trial.code == "CQM" and r.reader is not None and r.arm.code
    assert len(q.captured_queries) == 1
    assert [_fields(r) for r in got] == [_fields(r) for r in orm]
    assert [(r.n_images, _fields(r.case), _fields(r.case.trial), _fields(r.arm), _fields(r.reader))
            for r in got] == [(r.n_images, _fields(r.case), _fields(r.case.trial), _fields(r.arm), _fields(r.reader))
                              for r in orm]
    first = next(r for r in got if r.pk == reads[0].pk)
    assert first.finding_marks == {"effusion": "present"} and first.opened_at.tzinfo is not None
    assert each(trial_id=10**9) == []

    assert _fields(trial_or_404("CQM")) == _fields(trial) and trial_or_404("CQM").findings == trial.findings
    assert _TRIAL_BY_CODE(code="nope") is None
    member = Membership.objects.filter(trial=trial, role="reader").select_related("center", "arm").first()
    m = _MEMBERSHIP(user_id=member.user_id, trial_id=trial.pk, role="reader")
    assert _fields(m) == _fields(member) and _fields(m.center) == _fields(member.center)
    assert _MEMBERSHIP(user_id=member.user_id, trial_id=trial.pk, role="expert") is None
    read = reads[0]
    with transaction.atomic():
        for light in (False, True):
            owner = read.reader.user_id
            by_id = _OWN_READ[light, "public_id"](public_id=read.public_id, user_id=owner)
            by_pk = _OWN_READ[light, "pk"](pk=read.pk, user_id=owner)
            # Someone else's read: no row (ownership is in the WHERE: tests/security/test_probe_parity.py)
            assert _OWN_READ[light, "public_id"](public_id=read.public_id, user_id=owner + 10_000) is None
            assert by_id.pk == by_pk.pk == read.pk and by_id.case.trial.pk == trial.pk
            assert by_id.get_deferred_fields() == by_pk.get_deferred_fields()
            assert bool(by_id.get_deferred_fields()) is False  # the read's own columns, in full
            assert by_id.reader.user_id == read.reader.user_id
        assert _OWN_READ[False, "public_id"](public_id="no-such-read", user_id=read.reader.user_id) is None
    assert _OWN_TASK(public_id="x", trial_id=trial.pk, expert_id=1) is None


def test_model_kinds_refuse_what_they_would_get_wrong():
    values = CompiledQuery(lambda *, pk: Membership.objects.filter(pk=pk).values("role"), kind="object",
                           params={"pk": int})
    with pytest.raises(ImproperlyConfigured, match="plain model queryset"):
        values(pk=1)
    prefetch = CompiledQuery(lambda *, pk: Membership.objects.filter(pk=pk).prefetch_related("user"),
                             kind="objects", params={"pk": int})
    with pytest.raises(ImproperlyConfigured, match="plain model queryset"):
        prefetch(pk=1)


@pytest.mark.django_db(transaction=True)
def test_a_locking_model_query_outside_a_transaction_is_refused_as_the_orm_refuses():
    from django.db import transaction
    from django.db.transaction import TransactionManagementError

    locking = CompiledQuery(lambda *, pk: Membership.objects.select_for_update().filter(pk=pk), kind="objects",
                            params={"pk": int})
    with transaction.atomic():
        assert locking(pk=10**9) == []  # compiled inside a transaction
    with pytest.raises(TransactionManagementError):
        locking(pk=10**9)
