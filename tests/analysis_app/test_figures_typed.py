"""The report's preference and CONSORT figures read the typed results (``results.preference.pairs``, a
PreferenceRateResult; ``results.consort``, a Consort); before, they read the results' ``to_dict()`` by key. The PNG
drawn from the typed results is, byte for byte, the PNG the old functions drew from the dicts (kept frozen in
tests/analysis_app/golden/figures_dict_form.py): on a trial, a trial with no ratings, and a flow whose counts take
the dict's defaults (an arm with no counts, many refusal and exclusion reasons). No database."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from analysis.figures import fig_consort, fig_preference
from analysis.pipeline import analyse_results
from analysis.stats._result import empty_result
from analysis.stats.proportions import PreferenceRateResult
from analysis.stats.synthetic import make_trial_tables

MANIFEST = {"trial": "FIG", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
            "preference_majority": 2}


def _old_module():
    spec = importlib.util.spec_from_file_location("figures_dict_form",
                                                  Path(__file__).parent / "golden" / "figures_dict_form.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OLD = _old_module()


@pytest.fixture(scope="module")
def results():
    return analyse_results(make_trial_tables(n_cases=40, n_readers=6, n_experts=3, n_centers=2, seed=5), MANIFEST)


def _same_png(tmp_path, new, old, results) -> bytes:
    a, b = new(results, tmp_path / "new.png").read_bytes(), old(results, tmp_path / "old.png").read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b
    return a


def test_the_preference_figure_is_the_one_the_dict_drew(tmp_path, results):
    assert isinstance(results.preference.pairs, PreferenceRateResult) and results.preference.pairs.n_pairs > 0
    drawn = _same_png(tmp_path, fig_preference, OLD.fig_preference, results)
    # nothing rated: the empty result (no counts set) draws the empty panels, as the dict without keys did
    empty = dataclasses.replace(results, preference=dataclasses.replace(
        results.preference, pairs=empty_result("preference rate", cls=PreferenceRateResult)))
    assert _same_png(tmp_path, fig_preference, OLD.fig_preference, empty) != drawn
    # no estimate (None, as StatResult keeps a non-finite one): no interval drawn
    pairs = dataclasses.replace(results.preference.pairs, estimate=float("nan"), ci=(None, 0.8))
    assert pairs.estimate is None
    no_estimate = dataclasses.replace(results, preference=dataclasses.replace(results.preference, pairs=pairs))
    assert _same_png(tmp_path, fig_preference, OLD.fig_preference, no_estimate) != drawn


def test_the_consort_figure_is_the_one_the_dict_drew(tmp_path, results):
    drawn = _same_png(tmp_path, fig_consort, OLD.fig_consort, results)
    flow = results.consort
    control = results.labels.shown()[1]
    assert control in flow.by_arm
    # The control's counts gone (the dict's defaults: zeros), more refusal and exclusion reasons than the boxes list.
    odd = dataclasses.replace(
        flow, by_arm={k: v for k, v in flow.by_arm.items() if k != control},
        files_refused={f"reason {i}": i + 1 for i in range(6)},
        exclusion_reasons={f"excluded {i}": i + 1 for i in range(7)}, cases_excluded=28)
    changed = dataclasses.replace(results, consort=odd)
    assert _same_png(tmp_path, fig_consort, OLD.fig_consort, changed) != drawn
