"""The export: arms masked as X/Y before lock and named after; the manifest's data hash follows the data."""
from __future__ import annotations

import json
import math
import zipfile

import pytest

from analysis.export import build_export
from analysis.services import run_analysis
from analysis.stats.mrmc_ustat import ustat_mrmc
from rating.models import Rating
from reading.models import Read
from tests.analysis.test_mrmc_ustat import read_imrmc
from trial import services
from trial.models import Trial

pytestmark = pytest.mark.django_db


def _arms_in(export) -> set[str]:
    arms = {r["arm"] for r in export.tables["reads"]} | {r["arm"] for r in export.tables["allocations"]}
    for r in export.tables["ratings"]:
        arms |= {r["arm_a"], r["arm_b"]} - {""}
    return arms


@pytest.mark.requirement("CAI-1", "BLD-1")
def test_export_masks_arms_before_lock_and_names_them_after(tmp_path, make_small_trial):
    out = make_small_trial(code="MASK", lock=False)
    trial = out["trial"]
    before = build_export(trial)
    assert _arms_in(before) == {"X", "Y"}
    assert before.manifest["arms_masked"] is True and before.manifest["assisted_arm"] is None
    assert {r["model_version"] for r in before.tables["drafts"]} == {"model"}
    text = "".join(before.csv_text(n) for n in before.tables)
    assert "ai_assisted" not in text and "unassisted" not in text

    # The masked analysis compares X with Y and says so; an excluded case leaves the analysis set, with its reason.
    coord = trial.memberships.get(role="coordinator").user
    services.exclude_case(coord, trial.cases.order_by("code").first(), reason="Wrong patient")
    res = run_analysis(trial, tmp_path / "masked")
    assert res["labels"] == {"assisted": "X", "control": "Y", "masked": True}
    assert res["consort"]["cases_excluded"] == 1 and res["consort"]["exclusion_reasons"] == {"Wrong patient": 1}
    assert res["consort"]["cases_enrolled"] == 7 and res["quality"]["n_pairs"] == 7
    assert any("masked" in w for w in res["warnings"])
    html = (tmp_path / "masked" / "report" / "report.html").read_text()
    assert "Arms are masked" in html and "ai_assisted" not in html

    trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")
    after = build_export(trial)
    assert _arms_in(after) == {"ai_assisted", "unassisted"}
    assert after.manifest["arms_masked"] is False and after.manifest["assisted_arm"] == "ai_assisted"
    # the mask is a relabelling: the same rows, one label each way
    mapping = {}
    for b, a in zip(before.tables["reads"], after.tables["reads"], strict=True):
        assert b["read_id"] == a["read_id"]
        mapping.setdefault(b["arm"], set()).add(a["arm"])
    assert all(len(v) == 1 for v in mapping.values()) and len(mapping) == 2


def test_manifest_hash_changes_when_data_changes(tmp_path, make_small_trial):
    trial = make_small_trial(code="HASH", lock=False)["trial"]
    e1, e2 = build_export(trial), build_export(trial)
    assert e1.manifest["data_sha256"] == e2.manifest["data_sha256"]  # stable when nothing changed
    assert e1.manifest["generated_at"] != "" and e1.manifest["code_version"]

    rating = Rating.objects.filter(case__trial=trial).order_by("pk").first()
    Rating.objects.filter(pk=rating.pk).update(quality_a=1 if rating.quality_a != 1 else 2)
    e3 = build_export(trial)
    assert e3.manifest["data_sha256"] != e1.manifest["data_sha256"]
    assert e3.manifest["tables"]["ratings"]["sha256"] != e1.manifest["tables"]["ratings"]["sha256"]
    assert e3.manifest["tables"]["reads"]["sha256"] == e1.manifest["tables"]["reads"]["sha256"]

    e3.write(tmp_path)
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["data_sha256"] == e3.manifest["data_sha256"]
    assert (tmp_path / "data_dictionary.csv").read_text().startswith("table,column,description")


TEXT_COLUMNS = {"reads": {"findings_text", "impression_text", "draft_findings_text", "draft_impression_text"},
                "ratings": {"comment"}}


def test_report_texts_comments_and_times_are_withheld_or_masked_until_lock(tmp_path, make_small_trial):
    """Issue 17: report texts, the draft's text, expert comments and opened/submitted times. Times are arm-neutral
    and exported before lock; free text that can name the arm (a report keeps its draft's wording, a comment can say
    which report looked AI-written) only after lock, listed in the manifest meanwhile."""
    trial = make_small_trial(code="TEXTS", lock=False)["trial"]
    rating = Rating.objects.filter(case__trial=trial, submitted_at__isnull=False).order_by("pk").first()
    Rating.objects.filter(pk=rating.pk).update(comment="=B reads like the AI draft")
    before = build_export(trial)
    for table, cols in TEXT_COLUMNS.items():
        assert not cols & set(before.tables[table][0]), table
        assert cols <= set(before.manifest["withheld_until_lock"][table]), table
        assert {"opened_at", "submitted_at"} <= set(before.tables[table][0])
    assert "reads like the AI draft" not in "".join(before.csv_text(n) for n in before.tables)
    reads = {r["read_id"]: r for r in before.tables["reads"]}
    db_reads = {r.public_id: r for r in Read.objects.filter(case__trial=trial)}
    assert set(reads) == set(db_reads)
    for rid, row in reads.items():
        assert row["opened_at"] == db_reads[rid].opened_at.isoformat()
        assert row["submitted_at"] == db_reads[rid].submitted_at.isoformat()
    drafts = before.tables["drafts"]
    assert {"findings_text", "impression_text"} <= set(drafts[0]) and all(d["findings_text"] for d in drafts)
    described = {(d["table"], d["column"]) for d in before.dictionary}
    assert ("reads", "opened_at") in described and ("reads", "findings_text") not in described
    assert before.files == {} and before.manifest["files"] == {}
    assert not [p for p in before.write(tmp_path / "before") if p.name.startswith("imrmc_")]

    coord = trial.memberships.get(role="coordinator").user
    trial = services.advance_status(coord, Trial.objects.get(pk=trial.pk), Trial.Status.LOCKED, reason="test")
    after = build_export(trial)
    for table, cols in TEXT_COLUMNS.items():
        assert cols <= set(after.tables[table][0]), table
    rows = after.tables["reads"]
    for row in rows:
        read = db_reads[row["read_id"]]
        assert (row["findings_text"], row["impression_text"]) == (read.findings_text, read.impression_text)
        assert row["findings_text"]
    assert {r["arm"] for r in rows if r["draft_findings_text"]} == {"ai_assisted"}
    shown = next(r for r in rows if r["draft_findings_text"])
    assert shown["draft_findings_text"] == Read.objects.get(public_id=shown["read_id"]).draft.findings_text
    comments = [r["comment"] for r in after.tables["ratings"] if r["comment"]]
    assert comments == ["=B reads like the AI draft"]
    assert "'=B reads like the AI draft" in after.csv_text("ratings")  # escaped against formula injection
    assert ("ratings", "comment") in {(d["table"], d["column"]) for d in after.dictionary}


def test_imrmc_files_after_lock_give_the_analysis_u_statistic(tmp_path, make_small_trial):
    """The iMRMC input (one file per finding, after lock) parses with the iMRMC reader of the statistics tests and
    gives the U-statistic MRMC result of the trial's own analysis, to floating-point precision."""
    # Four readers per center: with two, a block of the allocation can put both in one arm, leaving that center's
    # other-arm reads unread (seen once as a failure in a random-order run).
    trial = make_small_trial(code="IMRMC", lock=True, cases=24, readers=8)["trial"]
    results = run_analysis(trial, tmp_path)
    export_dir = tmp_path / "export"
    export = build_export(trial)
    assert {n for n in export.files if n.startswith("imrmc_")} == {f"imrmc_{f}.csv" for f in trial.finding_codes}
    assert set(export.manifest["files"]) == set(export.files)
    compared = 0
    for f in trial.finding_codes:
        path = export_dir / f"imrmc_{f}.csv"
        assert path.read_text().startswith("BEGIN DATA:,,,\n")
        reads = read_imrmc(path)
        assert set(reads["modality"]) == {"ai_assisted", "unassisted"}
        assert reads["truth"].notna().all() and set(reads["truth"]) <= {0, 1}
        n_submitted = sum(1 for r in export.tables["reads"] if r[f"finding_{f}"] != "")
        assert len(reads) == n_submitted  # every case of the small trial has a reference standard
        expected = results["reader_accuracy"]["findings"][f].get("mrmc_ustat")
        got = ustat_mrmc(reads, ["ai_assisted", "unassisted"])
        if expected is None or "estimate" not in expected:
            assert got is None
            continue
        assert got.estimate == pytest.approx(expected["estimate"], rel=1e-12, abs=1e-12)
        assert got.var == pytest.approx(expected["var"], rel=1e-9)
        if expected["df"] is None:  # results.json writes a non-finite df (a degenerate variance split) as null
            assert got.df is None or not math.isfinite(got.df)
        else:
            assert got.df == pytest.approx(expected["df"], rel=1e-9)
        compared += 1
    assert compared >= 3
    with zipfile.ZipFile(tmp_path / "export.zip") as z:
        assert sum(n.split("/")[-1].startswith("imrmc_") for n in z.namelist()) == len(trial.finding_codes)


def _read_rjafroc_mrmc(text: str) -> list[tuple[str, str, int, int, float]]:
    """The checks of RJafroc's ReadOrDbmMrmc (DfReadDataFile(f, format = "MRMC")): a header line, the first five
    columns used, integer case ids, truth 0 or 1, numeric ratings."""
    lines = text.splitlines()
    assert lines[0] == "Reader,Treatment,Case,Truth,Rating,CaseCode"
    rows = []
    for line in lines[1:]:
        reader, arm, case, truth, rating, _code = line.split(",")
        assert case.isdigit() and truth in ("0", "1")
        rows.append((reader, arm, int(case), int(truth), float(rating)))
    return rows


def _auc(pos: list[float], neg: list[float]) -> float:
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


@pytest.mark.parametrize("design", ["crossover", "paired_by_case"])
def test_rjafroc_files_after_lock_hold_the_imrmc_scores_and_are_crossed_in_a_crossover(design, make_small_trial):
    """One RJafroc "MRMC" input per finding after lock (none before): the same reads and scores as the iMRMC file,
    case ids numbered from the codes, and, in a crossover trial, every reader x arm x case once, as RJafroc's
    reader of this layout needs; per-reader AUCs from it equal those from the iMRMC file."""
    trial = make_small_trial(code=f"RJ{design[:4].upper()}", lock=True, cases=16, readers=4, design=design)["trial"]
    export = build_export(trial)
    names = {n for n in export.files if n.startswith("rjafroc_")}
    assert names and names <= {f"rjafroc_{f}.csv" for f in trial.finding_codes}
    assert names <= set(export.manifest["files"])
    for name in sorted(names):
        finding = name[len("rjafroc_"):-len(".csv")]
        rows = _read_rjafroc_mrmc(export.files[name])
        imrmc = export.files[f"imrmc_{finding}.csv"].splitlines()[1:]
        truth = {c: int(s) for r, c, m, s in (line.split(",") for line in imrmc) if r == "truth"}
        scores = {(r, c, m): float(s) for r, c, m, s in (line.split(",") for line in imrmc) if r != "truth"}
        codes = {int(line.split(",")[2]): line.split(",")[5] for line in export.files[name].splitlines()[1:]}
        assert sorted(codes) == list(range(1, len(truth) + 1)) and sorted(codes.values()) == sorted(truth)
        assert {(r, codes[k], m): s for r, m, k, _t, s in rows} == scores
        assert all(t == truth[codes[k]] for _r, _m, k, t, _s in rows)
        keys = [(r, m, k) for r, m, k, _t, _s in rows]
        assert len(keys) == len(set(keys))
        if design == "crossover":
            readers, arms = {r for r, *_ in rows}, {m for _r, m, *_ in rows}
            assert len(rows) == len(readers) * len(arms) * len(codes)
        for reader, arm in {(r, m) for r, m, *_ in rows}:
            pos = [s for r, m, _k, t, s in rows if (r, m) == (reader, arm) and t == 1]
            neg = [s for r, m, _k, t, s in rows if (r, m) == (reader, arm) and t == 0]
            ipos = [s for (r, c, m), s in scores.items() if (r, m) == (reader, arm) and truth[c] == 1]
            ineg = [s for (r, c, m), s in scores.items() if (r, m) == (reader, arm) and truth[c] == 0]
            if pos and neg:
                assert _auc(pos, neg) == _auc(ipos, ineg)


def test_no_rjafroc_file_before_lock(make_small_trial):
    export = build_export(make_small_trial(code="RJOPEN", lock=False)["trial"])
    assert not [n for n in export.files if n.startswith("rjafroc_")]
