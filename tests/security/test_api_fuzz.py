"""API fuzzing (issue 8): schemathesis generates requests for every operation of /api/schema/ against a live server
with a seeded trial, authenticated with a token of the role the operation is for. No 5xx, and responses conform to
the schema (status codes aside: 401/403/404/409 are the API's documented-by-convention refusals, see below)."""
from __future__ import annotations

import os
import time

import pytest
import schemathesis
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from tests.factories.trial import add_cases, make_trial

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))  # per operation: ~15 s in all; FUZZ_EXAMPLES=80 to dig


@pytest.fixture
def seeded(monkeypatch, live_server):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    monkeypatch.setattr("analysis.services.send_analysis_task", lambda run_id: False)
    from rating.models import Rating
    from reading.models import Read
    from tests.factories.rating import complete_case
    from tests.factories.reading import reader_in, with_images_and_drafts

    t = make_trial(code="FZ", experts=2, expert_panel_size=2, preference_majority=2)
    cases = add_cases(t, 3)
    with_images_and_drafts(t, cases)
    complete_case(cases[0])
    ai_reader = reader_in(t, "ai_assisted")
    rating = Rating.objects.order_by("pk").first()
    read = Read.objects.filter(reader=ai_reader, submitted_at__isnull=True).order_by("pk").first()
    tokens = {
        "coordinator": Token.objects.create(user=t["coordinator"]).key,
        "reader": Token.objects.create(user=ai_reader.user).key,
        "expert": Token.objects.create(user=rating.expert.user).key,
    }
    real = {"trial_code": "FZ", "code": "FZ", "id": str(cases[1].pk), "case_id": str(cases[1].pk)}
    # Prefixes of the schema's templated paths (/api/reading/reads/{public_id}/): no reverse() names them
    by_prefix = {"/api/reading/": ("reader", {**real, "public_id": read.public_id}),
                 "/api/rating/": ("expert", {**real, "public_id": rating.public_id})}
    return {"trial": t, "tokens": tokens, "real": real, "by_prefix": by_prefix, "url": live_server.url}


def _who(path: str, seeded: dict) -> tuple[str, dict]:
    for prefix, (role, values) in seeded["by_prefix"].items():
        if path.startswith(prefix):
            return role, values
    return "coordinator", seeded["real"]


def _fuzz(op, url: str, headers: dict, values: dict, label: str, failures: list[str]) -> int:
    """Run up to MAX_EXAMPLES generated requests for one operation; returns how many were sent."""
    checks = schemathesis.checks
    calls = 0

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(), use_real=st.booleans())
    def run(case, use_real):
        nonlocal calls
        if use_real and case.path_parameters:  # most of the interesting code runs only for real objects
            case.path_parameters = {k: values.get(k, v) for k, v in case.path_parameters.items()}
        calls += 1
        try:
            case.call_and_validate(
                base_url=url, headers=headers, timeout=30,
                checks=[checks.not_a_server_error, checks.response_schema_conformance,
                        checks.content_type_conformance],
            )
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup
            failures.append(f"{label}: {str(exc)[:1500]}")
            raise

    try:
        run()
    except (Exception, BaseExceptionGroup):  # hypothesis re-raises the (shrunk) failure; it is in `failures`
        pass
    return calls


def test_api_fuzz_no_server_errors_and_conforming_responses(seeded):
    url = seeded["url"]
    schema = schemathesis.openapi.from_url(
        url + reverse("schema"), headers={"Authorization": f"Token {seeded['tokens']['coordinator']}"})
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 25, [f"{op.method} {op.path}" for op in operations]
    failures: list[str] = []
    calls = 0
    started = time.monotonic()
    for op in operations:
        role, values = _who(op.path, seeded)
        headers = {"Authorization": f"Token {seeded['tokens'][role]}"}
        calls += _fuzz(op, url, headers, values, f"{op.method.upper()} {op.path} as {role}", failures)
    elapsed = time.monotonic() - started
    assert calls > 5 * len(operations), calls
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert elapsed < 120, elapsed
