"""One API style (docs/architecture.md, issue 15): class-based DRF views only, each with an input serializer for
what it takes and an output serializer for what it answers, so the OpenAPI schema is built from the code that runs;
and a refused input is the 400 body of the service contract, {code: "invalid", detail}, with nothing written."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework.views import APIView

from rating.models import Rating
from reading.models import Read
from tests.factories.rating import complete_case, rating_trial, tasks_of
from tests.factories.reading import reader_in, reads_of, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "trial", "imaging", "inference", "reading", "rating", "enrolment", "analysis", "demo", "config")
WRITES = ("post", "put", "patch")


def test_schema_generates_and_validates_without_warnings(tmp_path):
    # --fail-on-warn: a view whose serializers drf-spectacular cannot read (or two components with one name) fails.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").stat().st_size > 10_000


def _ref(schema: dict | None) -> bool:
    """A named serializer component (or a list of them), not a free-form object."""
    if not schema:
        return False
    if "$ref" in schema:
        return True
    return schema.get("type") == "array" and _ref(schema.get("items"))


def test_every_operation_declares_its_input_and_output_serializers():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    missing = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            name = f"{method.upper()} {path}"
            ok = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            schemas = [next(iter(r.get("content", {}).values()), {}).get("schema") for r in ok.values()]
            if not ok or not all(_ref(s) for s in schemas):
                missing.append(f"{name}: success response is not a serializer")
            body = op.get("requestBody")
            if body is not None and not all(_ref(c.get("schema")) for c in body["content"].values()):
                missing.append(f"{name}: request body is not a serializer")
    assert not missing, "\n".join(missing)


def _views(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _views(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


def test_json_views_are_drf_views_with_serializers_for_page_side_endpoints_too():
    # The two page-side JSON endpoints are left out of the API schema (session login); they are DRF views that
    # declare their output serializer all the same (extend_schema), and answer through it.
    for name, args in (("analysis:run_status", ["T", 1]), ("imaging:image-meta", ["x"])):
        view = get_resolver().resolve(reverse(name, args=args)).func.view_class
        assert issubclass(view, APIView), name
        assert "schema" in getattr(view.get, "kwargs", {}), f"{name}: no extend_schema on get()"
    api_views = [(route, cb) for route, cb in _views(get_resolver().url_patterns)
                 if getattr(cb, "cls", None) is not None and route.startswith("api/")]
    assert len(api_views) >= 25


def _function_level_views(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                if getattr(target, "id", getattr(target, "attr", "")) == "api_view":
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} @api_view {node.name}")
        if isinstance(node, ast.Name) and node.id == "JsonResponse":
            out.append(f"{path.relative_to(ROOT)}:{node.lineno} JsonResponse")
    return out


def test_no_function_views_or_hand_built_json():
    found = [o for app in APPS for p in sorted((ROOT / app).rglob("*.py")) if "migrations" not in p.parts
             for o in _function_level_views(p)]
    assert not found, "\n".join(found)


# -- a refused input: the service contract's 400 body, nothing written ----------------------------------------
def _client(user) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


@pytest.fixture
def read_setup(db, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = make_trial(code="API1")
    cases = add_cases(t, 2)
    with_images_and_drafts(t, cases)
    m = reader_in(t, "unassisted")
    return m, reads_of(m).first()


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "body", "detail"), [
    ("autosave", {"findings_text": 5}, "findings_text must be text."),
    ("autosave", {"finding_marks": {"pleural_effusion": {"present": "yes"}}},
     "pleural_effusion: present must be true or false."),
    ("autosave", {"finding_marks": {"pleural_effusion": {"confidence": 9}}},
     "pleural_effusion: confidence must be a whole number from 1 to 5."),
    ("autosave", {"finding_marks": {"unicorn": {"present": True}}}, "Unknown findings: unicorn."),
    ("submit", {"findings_text": "Clear."}, "Mark pleural effusion present or absent, with a confidence of 1-5."),
    ("autosave", {"finding_marks": [1]}, "finding_marks must be an object {code: {present, confidence}}."),
    ("submit", {"impression_text": "x" * 20_001}, "impression_text is longer than 20000 characters."),
    ("heartbeat", {"seconds": -1}, "seconds must be a non-negative number."),
    ("heartbeat", {"seconds": True}, "seconds must be a number."),
    ("autosave", {"seconds": "soon"}, "seconds must be a number."),
])
def test_reader_api_refuses_malformed_input_with_the_service_body(read_setup, action, body, detail):
    m, read = read_setup
    c = _client(m.user)
    c.post(reverse("reading-api:open", args=[read.public_id]), {}, format="json")
    before = Read.objects.values().get(pk=read.pk)
    r = c.post(reverse(f"reading-api:{action}", args=[read.public_id]), body, format="json")
    assert r.status_code == 400
    assert r.json() == {"code": "invalid", "detail": detail}
    assert Read.objects.values().get(pk=read.pk) == before


@pytest.mark.django_db
def test_reader_api_refuses_a_body_that_is_not_an_object(read_setup):
    m, read = read_setup
    r = _client(m.user).post(reverse("reading-api:autosave", args=[read.public_id]), [1, 2], format="json")
    assert r.status_code == 400 and r.json() == {"code": "parse_error", "detail": "Send a JSON object."}


@pytest.fixture
def rating_setup(db, monkeypatch):
    monkeypatch.setattr("inference.services.send_draft_task", lambda draft_id: False)
    t = rating_trial(code="API2", cases=1, panel=1, experts=1)
    complete_case(t["cases"][0])
    return t, tasks_of(t)[0]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "detail"), [
    ({"quality_a": "x"}, "The quality score for report A must be a whole number from 1 to 5, not 'x'."),
    ({"quality_a": 9}, "The quality score for report A must be a whole number from 1 to 5, not 9."),
    ({"preference": "C"}, "Preference must be A, B or none (no preference)."),
    ({"stars": 5}, "Unknown fields: stars."),
    ({"comment": "x" * 5001}, "The comment is too long (at most 5000 characters)."),
])
def test_rating_api_refuses_malformed_answers_with_the_service_body(rating_setup, body, detail):
    t, task = rating_setup
    assert task.read_b_id is not None  # the factory's panel rates pairs, so every body here applies (no skip)
    before = Rating.objects.values().get(pk=task.pk)
    r = _client(task.expert.user).post(reverse("rating-autosave", args=[t["trial"].code, task.public_id]), body,
                                       format="json")
    assert r.status_code == 400
    assert r.json() == {"code": "invalid", "detail": detail}
    assert Rating.objects.values().get(pk=task.pk) == before


@pytest.mark.django_db
def test_rating_api_passes_the_cleaned_answer_to_the_service(rating_setup):
    # "a" and "4" are what the rating page's form sends; the serializer cleans them with the service's rules.
    t, task = rating_setup
    body = {"quality_a": "4", "comment": "  Clear.  "} | ({} if task.read_b_id is None else {"preference": "a"})
    r = _client(task.expert.user).post(reverse("rating-autosave", args=[t["trial"].code, task.public_id]), body,
                                       format="json")
    assert r.status_code == 200 and r.json() == {"saved": True, "status": "in_progress"}
    task.refresh_from_db()
    assert task.quality_a == 4 and task.comment == "Clear."
    assert task.preference == ("" if task.read_b_id is None else "A")
