"""The report renders from the results and tables alone (no database)."""
from __future__ import annotations

import json
import re

from analysis.pipeline import analyse_results
from analysis.report import FIGURES, render_report
from analysis.stats.synthetic import make_trial_tables

PNG = b"\x89PNG\r\n\x1a\n"


def _render(tmp_path, manifest, **kw):
    tables = make_trial_tables(n_cases=40, n_readers=6, n_experts=3, n_centers=2, seed=5, **kw)
    results = analyse_results(tables, manifest)
    return results, render_report(results, tables, manifest, tmp_path)


def test_report_has_results_table_and_png_figures(tmp_path):
    manifest = {"trial": "REP", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
                "data_sha256": "ab" * 32, "code_version": "test", "preference_majority": 2,
                "tables": {"reads": {"rows": 80, "sha256": "cd" * 32}}}
    results, report = _render(tmp_path, manifest)
    html = report.read_text()
    assert '<table class="results">' in html
    for text in ("Report quality", "mean ± SD", "median (IQR)", "relative reduction", "Clopper-Pearson",
                 "ties", "DeLong", "Paired t-test", "Wilcoxon", "mixed model", "Fleiss", "ai_assisted",
                 "ab" * 32, "Methods", "Data manifest"):
        assert text in html, text
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == len(FIGURES)
    for src in srcs:
        assert src.startswith("figures/")
        f = tmp_path / src
        assert f.is_file() and f.read_bytes()[:8] == PNG
    standalone = (tmp_path / "report-standalone.html").read_text()
    assert standalone.count('src="data:image/png;base64,') == len(FIGURES)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["quality"]["paired_t"]["estimate"] == results.quality.comparison.paired_t.estimate
    # results.json: the typed results plus the CONSORT-AI checklist (analysis/checklist.py)
    checklist = saved.pop("consort_ai")
    assert saved == json.loads(json.dumps(results.to_dict()))
    assert len(checklist["items"]) == 14 and (tmp_path / "consort_ai.csv").exists()


def test_report_is_accessible_and_typed(tmp_path):
    manifest = {"trial": "ACC", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
                "preference_majority": 2}
    results, report = _render(tmp_path, manifest)
    html = report.read_text()
    assert html.count("<main>") == 1 and html.count("</main>") == 1
    headers = re.findall(r"<th\b[^>]*>", html)
    assert headers and all('scope="col"' in th for th in headers)
    assert html.count("<table") == html.count("<caption>")
    assert '<html lang="en">' in html
    # the sections are typed: the secondary table's test is the paired t-test's result class
    assert type(results.quality.comparison.paired_t).__name__ == "PairedTResult"
    assert results.preference.pairs.n_pairs > 0 and results.labels.assisted == "ai_assisted"


def test_masked_report_shows_x_and_y(tmp_path):
    # a masked export: arms relabelled X/Y, no assisted arm in the manifest
    tables = make_trial_tables(n_cases=30, n_readers=4, n_experts=2, n_centers=2, seed=2, assisted_arm="X",
                               control_arm="Y")
    manifest = {"trial": "MSK", "design": "paired_by_case", "arms_masked": True, "assisted_arm": None}
    results = analyse_results(tables, manifest)
    html = render_report(results, tables, manifest, tmp_path).read_text()
    assert results.labels.masked is True
    assert "Arms are masked" in html and "X − Y" in html


def test_report_survives_empty_tables(tmp_path):
    manifest = {"trial": "EMPTY", "design": "paired_by_case", "arms_masked": True}
    results = analyse_results({}, manifest)
    report = render_report(results, {}, manifest, tmp_path)
    assert report.is_file()
    assert all((tmp_path / "figures" / f"{n}.png").is_file() for n in FIGURES)


def test_report_has_calibration_arena_and_ood_sections(tmp_path):
    # main's sections in the typed results and the template report: calibration per model finding, the AI evaluation
    # (arena, interaction, text metrics) and the out-of-distribution drafts in the CONSORT flow
    tables = make_trial_tables(n_cases=40, n_readers=6, n_experts=3, n_centers=2, seed=5)
    drafts = tables["drafts"].copy()
    codes = sorted(drafts["case_code"].astype(str).unique())
    drafts["ood_action"] = ""
    drafts["ood_reasons"] = ""
    drafts.loc[drafts["case_code"] == codes[0], ["ood_action", "ood_reasons"]] = ["withheld", "blank"]
    drafts.loc[drafts["case_code"] == codes[1], ["ood_action", "ood_reasons"]] = ["marked", "noise;lateral_only"]
    tables["drafts"] = drafts
    manifest = {"trial": "CAL", "design": "paired_by_case", "arms_masked": False, "assisted_arm": "ai_assisted",
                "preference_majority": 2}
    results = analyse_results(tables, manifest)
    html = render_report(results, tables, manifest, tmp_path).read_text()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved)[-6:] == ["consort", "ai_evaluation", "manifest", "multi_arm", "error_analysis", "consort_ai"]
    ood = saved["consort"]["drafts_out_of_distribution"]
    assert ood == {"cases_marked": 1, "cases_withheld": 1, "reasons": {"blank": 1, "lateral_only": 1, "noise": 1}}
    model = next(iter(results.ai_standalone.models.values()))
    cal = model["pleural_effusion"].calibration
    assert set(cal.to_dict()) == {"raw", "platt", "isotonic"} and cal.raw.n == 40
    assert f"{cal.raw.ece:.3f}" in html and f"{cal.isotonic.brier:.3f}" in html
    ranking = saved["ai_evaluation"]["arena"]["ranking"]
    assert {i["item"] for i in ranking["items"]} == {"ai_assisted", "unassisted"}
    for heading in ("Model calibration", "Report arena", "Human-AI interaction", "Report-text metrics",
                    "P(beats reference)", ranking["method"]):
        assert heading in html, heading
    assert html.count("<table") == html.count("<caption>")
