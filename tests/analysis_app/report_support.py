"""The report reads the AI evaluation and the error analysis as typed results (docs/architecture.md, "Analysis
results and the report"); before, its templates read their results.json dicts. A check for the end-to-end tests:
the page drawn from the typed results is the page drawn from those dicts, character for character."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from analysis.pipeline import analyse_results, read_export_tables
from analysis.report import build_page, render_html


def assert_typed_sections_render_as_their_dicts(run_dir: Path) -> str:
    """Analyse the run's export again and draw the page both ways; returns the page."""
    export = Path(run_dir) / "export"
    manifest = json.loads((export / "manifest.json").read_text())
    results = analyse_results(read_export_tables(export), manifest)
    page = build_page(results, manifest, {})
    assert page.ai_evaluation is results.ai_evaluation and page.error_analysis is results.error_analysis
    as_dicts = dataclasses.replace(
        page, ai_evaluation=results.ai_evaluation.to_dict(),
        error_analysis=None if results.error_analysis is None else results.error_analysis.to_dict())
    html = render_html(page)
    assert html == render_html(as_dicts)
    return html
