"""``python -m analysis`` subcommands, run as a user would (subprocess), checking the JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.stats.synthetic import make_trial_tables, write_tables

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "analysis", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cli_mrmc(ref):
    out = run_cli("mrmc", str(ref / "rjafroc" / "dataset02_VanDyke.csv"))
    assert {"auc_by_modality", "rrrc", "frrc", "rrfc", "variance_components", "dbm"} <= set(out)
    assert [round(v, 8) for v in out["auc_by_modality"].values()] == [0.89703704, 0.94083736]
    r = out["rrrc"]
    assert {"f", "ddf", "p", "ci"} <= set(r)
    assert (round(r["f"], 2), round(r["ddf"], 2), round(r["p"], 4)) == (4.46, 15.26, 0.0517)
    assert round(out["variance_components"]["var_r"], 8) == 0.00153500
    assert round(out["frrc"]["chisq"], 5) == 5.47595
    assert round(out["rrfc"]["f"], 2) == 8.70
    assert round(out["dbm"]["rrrc"]["f"], 2) == 4.46


def test_cli_auc_paired(ref):
    out = run_cli("auc", str(ref / "proc" / "aSAH.csv"), "--truth", "outcome", "--score", "wfns", "--score",
                  "s100b", "--positive", "Poor", "--direction", "auto")
    assert round(out["auc"]["s100b"]["estimate"], 4) == 0.7314
    assert out["auc"]["s100b"]["variance"] == pytest.approx(0.00266868245717244, rel=1e-10)
    assert out["paired_test"]["statistic"] == pytest.approx(2.20898359144091, rel=1e-9)
    assert out["paired_test"]["p"] == pytest.approx(0.0271757822291882, rel=1e-9)


def test_cli_power():
    out = run_cli("power", "--n-cases", "60", "--n-readers", "6", "--effect", "0.3", "--sims", "4", "--seed", "4")
    assert out["sims"] == 4 and out["scenario"]["n_cases"] == 60 and out["scenario"]["quality_effect"] == 0.3
    assert out["scenario"]["n_readers"] == 6 and out["scenario"]["majority_k"] == 3
    primary = {"quality", "reading_time", "preference", "preference_decisive"}
    assert primary | {"quality_case_paired_t", "time_case_paired_t"} <= set(out["tests"])
    for name in primary:
        t = out["tests"][name]
        assert 0 <= t["power"] <= 1 and t["n_sims"] == 4 and t["mc_se"] >= 0 and t["ci"][0] <= t["power"]


def test_cli_trial(tmp_path):
    write_tables(make_trial_tables("paired_by_case", n_cases=40, seed=2, assisted_arm="X", control_arm="Y"),
                 str(tmp_path))
    out = run_cli("trial", str(tmp_path), "--assisted", "X")
    assert out["arms"]["assisted"] == "X" and out["design"] == "paired_by_case"
    assert {"quality", "reading_time", "preference", "ai_standalone", "reader_accuracy", "agreement", "subgroups",
            "flow"} <= set(out)
    assert out["flow"]["cases_enrolled"] == 40
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_cli("trial", str(empty))
    assert out["quality"]["paired_t"]["estimate"] is None
