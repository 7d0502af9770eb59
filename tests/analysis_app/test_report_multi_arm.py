"""The several-AI-arms table reads the typed :class:`~analysis.stats.multiarm.MultiArmPrimary` (through
:class:`analysis.report.MultiArmSection`); before, its template read ``MultiArmPrimary.to_dict()`` by key. The table
drawn from the typed result is the table the old template drew from the dict, character for character: on a real
three-arm analysis and on the edge cases where the two forms differ (a non-finite CI end, which the dict holds as
None; no Holm p listed; a missing estimate). No database."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from django.template import Context

from analysis.pipeline import analyse_results
from analysis.report import _engine, build_page, render_html
from analysis.stats.multiarm import MultiArmPrimary, multi_arm_primary
from analysis.stats.synthetic import make_trial_tables
from tests.analysis.primary_sim import simulate
from tests.analysis.test_multiarm import _with_copied_arm

# analysis/templates/analysis/report/multi_arm.html as it was at bb036ac, reading the dict form
OLD_TEMPLATE = (Path(__file__).parent / "golden" / "multi_arm_dict_template.html").read_text()

MANIFEST = {"trial": "MA", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
            "data_sha256": "ab" * 32, "code_version": "test", "preference_majority": 2}


@pytest.fixture(scope="module")
def multi() -> MultiArmPrimary:
    two = simulate("paired_by_case", n_cases=40, n_readers=8, n_centers=2, quality_effect=0.5,
                   log_time_ratio=math.log(0.8), reader_sd=0.15, seed=5)
    return multi_arm_primary(_with_copied_arm(two), design="paired_by_case", ai_arms=["ai_assisted", "ai_copy"],
                             control="unassisted", majority_k=2)


@pytest.fixture(scope="module")
def results():
    return analyse_results(make_trial_tables(n_cases=40, n_readers=6, n_experts=3, n_centers=2, seed=5), MANIFEST)


def _old(multi: MultiArmPrimary) -> str:
    return _engine().from_string(OLD_TEMPLATE).render(Context({"multi": multi.to_dict()}, use_l10n=False))


def _new(results, multi: MultiArmPrimary) -> tuple[str, object]:
    page = build_page(dataclasses.replace(results, multi_arm=multi), MANIFEST, {})
    html = _engine().get_template("analysis/report/multi_arm.html").render(
        Context({"multi": page.multi_arm}, use_l10n=False))
    return html, page


def _edge_cases(multi: MultiArmPrimary) -> MultiArmPrimary:
    """The first contrast's quality CI with a NaN end and a missing estimate and p; its reading time's Holm p not
    listed; the second's preference CI wholly infinite, its estimate a numpy float."""
    first, second = multi.contrasts
    q = dataclasses.replace(first.primary.quality, ci=(float("nan"), 0.7), estimate=None, p=float("nan"))
    pref = second.primary.preference
    pref = dataclasses.replace(pref, ci=(-math.inf, math.inf), estimate=np.float64(pref.estimate))
    first = dataclasses.replace(first, primary=dataclasses.replace(first.primary, quality=q),
                                holm_p={k: v for k, v in first.holm_p.items() if k != "reading_time"})
    second = dataclasses.replace(second, primary=dataclasses.replace(second.primary, preference=pref))
    return dataclasses.replace(multi, contrasts=[first, second], notes=["a note", "another"])


def test_the_typed_table_is_the_old_dict_table(results, multi):
    html, page = _new(results, multi)
    assert page.multi_arm.contrasts[1].rows[0].result is multi.contrasts[1].primary.quality  # typed, not a copy
    assert html == _old(multi)
    assert html.count("<tr>") == 1 + 2 * 3 and "ai_copy vs unassisted" in html  # header, two arms x 3 endpoints


def test_the_edge_cases_render_as_the_dict_did(results, multi):
    edge = _edge_cases(multi)
    html, _ = _new(results, edge)
    assert html == _old(edge)
    assert "– (–)" in html and "a note; another" in html  # the dash the dict's None gave, and the notes


def test_the_whole_page_with_several_arms(results, multi):
    page = build_page(dataclasses.replace(results, multi_arm=multi), MANIFEST, {})
    full = render_html(page)
    assert "<h3>Several AI arms: each against unassisted</h3>" in full and _old(multi) in full
    assert "Several AI arms" not in render_html(build_page(results, MANIFEST, {}))  # one AI arm: no section
