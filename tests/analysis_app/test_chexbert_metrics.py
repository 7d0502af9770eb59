"""CheXbert-F1 end to end on a simulated trial (real PostgreSQL) with the tiny CheXbert stand-in in the published
checkpoint format (tests/factories/chexbert.py): the export's label columns, results['ai_evaluation'] recomputed
independently from the report texts, the report's rows; without weights the report says so and nothing loads."""
from __future__ import annotations

import io

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from analysis.export import build_export
from analysis.services import run_analysis
from analysis.stats.chexbert_f1 import CONDITIONS, chexbert_f1, slug
from inference.backends.chexbert import load_chexbert
from tests.analysis_app.report_support import assert_typed_sections_render_as_their_dicts
from tests.factories.chexbert import build_tiny_chexbert
from trial import services
from trial.models import Case, Trial

pytestmark = pytest.mark.django_db
COLS = [f"chexbert_{slug(c)}" for c in CONDITIONS]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_chexbert(tmp_path_factory.mktemp("chexbert"))


def _locked(make_small_trial, code):
    trial = make_small_trial(code=code, lock=False)["trial"]
    coord = trial.memberships.get(role="coordinator").user
    return services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")


def _row(labels):
    return [None if v == "" else int(v) for v in labels]


def test_export_labels_and_analysis(tmp_path, make_small_trial, tiny_dir):
    trial = make_small_trial(code="CXB", lock=False)["trial"]
    labeler = load_chexbert(tiny_dir)
    before = build_export(trial, chexbert=labeler)
    reads = pd.DataFrame(before.tables["reads"])
    # Before lock the reads carry no labels (a report's wording can name its arm); references and drafts do.
    assert not [c for c in reads.columns if "chexbert" in c] and "findings_text" not in reads
    assert (pd.DataFrame(before.tables["cases"])["chexbert_labelled"] == 1).all()
    assert (pd.DataFrame(before.tables["drafts"])["chexbert_labelled"] == 1).any()
    assert before.manifest["text_models"]["chexbert"]["checkpoint_sha256"] == labeler.checkpoint_sha256
    assert not {r["column"] for r in before.dictionary if r["table"] == "reads"} & {"chexbert_<condition>",
                                                                                      "draft_chexbert_<condition>"}

    coord = trial.memberships.get(role="coordinator").user
    trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")
    export = build_export(trial, chexbert=labeler)
    cases, reads = pd.DataFrame(export.tables["cases"]), pd.DataFrame(export.tables["reads"])
    refs = {c.code: c.reference_report for c in Case.objects.filter(trial=trial, library=False)}
    # Independent: each reference report labelled on its own equals the export's columns.
    for _, c in cases.iterrows():
        assert c["chexbert_labelled"] == 1
        assert tuple(_row(c[COLS])) == labeler.label([refs[c["case_code"]].strip()])[0]
    done = reads[reads["status"] == "done"]
    assert (done["chexbert_labelled"] == 1).all() and (reads.loc[reads["status"] != "done", "chexbert_labelled"]
                                                      == "").all()
    assert {v for col in COLS for v in done[col]} <= {1, 0, -1, ""}
    shown = done[(done["draft_chexbert_labelled"] == 1) & (done["draft_shown"] == 1)]
    assert len(shown) and set(shown["arm"]) == {"ai_assisted"}
    dictionary = {(r["table"], r["column"]) for r in export.dictionary}
    assert {("cases", "chexbert_<condition>"), ("reads", "draft_chexbert_<condition>")} <= dictionary

    res = run_analysis(trial, tmp_path / "run", chexbert=labeler)
    cx = res["ai_evaluation"]["text_metrics"]["chexbert"]
    assert cx["computed"] and set(cx["final_by_arm"]) == {"ai_assisted", "unassisted"}
    # Recomputed from the report texts: label each final report and its reference, score with chexbert_f1.
    for arm, g in done.groupby("arm"):
        texts = [f"{f.strip()}\n{i.strip()}".strip() for f, i in zip(g["findings_text"], g["impression_text"],
                                                                      strict=True)]
        expected = chexbert_f1(labeler.label([refs[c].strip() for c in g["case_code"]]), labeler.label(texts))
        got = cx["final_by_arm"][arm]
        assert got["n"] == len(g)
        assert got["all14"]["micro_f1"] == pytest.approx(expected.all14.micro_f1)
        assert got["top5"]["macro_f1"] == pytest.approx(expected.top5.macro_f1)
    comps = {(c["metric"], c["label_a"], c["label_b"]): c for c in cx["comparisons"]}
    arms = comps[("chexbert_micro_f1_14", "final ai_assisted", "final unassisted")]
    assert arms["n"] == done["case_code"].nunique() and 0 < arms["p"] <= 1
    assert arms["mean_a"] == pytest.approx(cx["final_by_arm"]["ai_assisted"]["all14"]["micro_f1"])
    assert comps[("chexbert_macro_f1_5", "final report", "draft shown")]["n"] == len(shown)
    assert cx["drafts"]["n"] == (pd.DataFrame(export.tables["drafts"])["chexbert_labelled"] == 1).sum()
    html = (tmp_path / "run" / "report" / "report.html").read_text()
    assert "CheXbert-F1 against the reference report" in html and "micro-F1 (14)" in html
    assert labeler.checkpoint_sha256[:16] in html
    assert f"{cx['final_by_arm']['ai_assisted']['all14']['micro_f1']:.3f}" in html
    assert "micro-F1 (14)" in assert_typed_sections_render_as_their_dicts(tmp_path / "run")


def test_without_weights_the_report_says_not_computed(tmp_path, make_small_trial, tiny_dir, settings):
    trial = _locked(make_small_trial, "CXN")
    settings.CHEXBERT_WEIGHTS_DIR = ""
    res = run_analysis(trial, tmp_path / "none")
    cx = res["ai_evaluation"]["text_metrics"]["chexbert"]
    assert not cx["computed"] and cx["reason"].startswith("not computed: no local weights")
    assert not [c for c in pd.read_csv(tmp_path / "none" / "export" / "reads.csv").columns if "chexbert" in c]
    assert "CheXbert-F1: not computed: no local weights" in (tmp_path / "none" / "report" / "report.html").read_text()

    # A configured folder that does not load: the analysis runs, the report says why.
    settings.CHEXBERT_WEIGHTS_DIR = str(tmp_path / "missing")
    res = run_analysis(trial, tmp_path / "bad")
    cx = res["ai_evaluation"]["text_metrics"]["chexbert"]
    assert not cx["computed"] and "did not load" in cx["reason"] and "does not exist" in cx["reason"]
    assert "did not load" in (tmp_path / "bad" / "report" / "report.html").read_text()

    # The setting is what the task uses: the tiny folder gives the metric.
    settings.CHEXBERT_WEIGHTS_DIR = str(tiny_dir)
    assert run_analysis(trial, tmp_path / "set")["ai_evaluation"]["text_metrics"]["chexbert"]["computed"]


def test_analyze_command_option(tmp_path, make_small_trial, tiny_dir, settings):
    trial = _locked(make_small_trial, "CXC")
    settings.CHEXBERT_WEIGHTS_DIR = ""
    with pytest.raises(CommandError, match="CheXbert weights: .* has no chexbert.pth"):
        call_command("analyze", trial=trial.code, out=str(tmp_path / "x"), chexbert_weights=str(tmp_path))
    out = io.StringIO()
    call_command("analyze", trial=trial.code, out=str(tmp_path / "ok"), chexbert_weights=str(tiny_dir), stdout=out)
    assert "Labelling the reports with CheXbert" in out.getvalue()
    assert "CheXbert-F1 against the reference report" in (tmp_path / "ok" / "report" / "report.html").read_text()
