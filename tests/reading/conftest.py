"""Fixtures for reading tests: a paired trial with images and ready drafts; helpers to find readers' reads."""
from __future__ import annotations

import pytest

from tests.factories.reading import reader_in, with_images_and_drafts
from tests.factories.trial import add_cases, make_trial


@pytest.fixture
def paired(db):
    t = make_trial(code="RD1")
    cases = add_cases(t, 4)
    with_images_and_drafts(t, cases)
    t["cases"] = cases
    t["ai_reader"] = reader_in(t, "ai_assisted")
    t["un_reader"] = reader_in(t, "unassisted")
    return t
