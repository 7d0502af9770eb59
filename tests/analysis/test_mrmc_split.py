"""Split-plot / nested-reader OR (analysis/stats/mrmc_split.py): reduction to the Iowa OR results on the fully crossed
Van Dyke data, an algebraic identity with OR's reader variance when the same data are relabelled as nested, a
brute-force check of the case jackknife with missing reads, null coverage on simulated paired-by-case trials, and the
trial wiring (no case dropped)."""
from io import StringIO

import numpy as np
import pandas as pd
import pytest

from analysis.stats.mrmc import obuchowski_rockette
from analysis.stats.mrmc_split import _shifted_df, simulate_split_plot_reads, split_plot_mrmc
from analysis.stats.synthetic import make_trial_tables
from analysis.stats.trial import analyse_trial_tables


@pytest.fixture(scope="module")
def vandyke(read_ref):
    return read_ref("rjafroc/dataset02_VanDyke.csv")


def read_imrmc(path) -> pd.DataFrame:
    """iMRMC input format: after 'BEGIN DATA:', rows reader,case,modality,score; reader -1 gives the truth."""
    text = path.read_text().split("BEGIN DATA:", 1)[1]
    d = pd.read_csv(StringIO(text), header=None, names=["reader", "case", "modality", "rating"], dtype=str)
    truth = d[d["reader"] == "-1"].set_index("case")["rating"].astype(float).astype(int)
    reads = d[d["reader"] != "-1"].copy()
    reads["truth"] = reads["case"].map(truth)
    reads["rating"] = reads["rating"].astype(float)
    return reads


def test_crossed_vandyke_equals_iowa_or(vandyke, ref):
    orr = obuchowski_rockette(vandyke)
    o = orr.to_dict()
    for data in (vandyke, read_imrmc(ref / "rjafroc" / "dataset02_VanDyke.imrmc")):
        res = split_plot_mrmc(data, ["0", "1"])
        assert res.design == "crossed" and res.n == 114 and res.n_readers_excluded == 0
        # Iowa OR-DBM MRMC 2.51 printed values (tests/analysis/results/README.md)
        assert [round(a.auc, 8) for a in res.arms] == [0.89703704, 0.94083736]
        assert round(res.estimate, 8) == -0.04380032
        assert round(res.df, 2) == 15.26 and round(res.p, 4) == 0.0517
        assert [round(x, 5) for x in res.ci] == [-0.08796, 0.00036]
        assert [round(x, 8) for x in res.arms[0].ci] == [0.82522360, 0.96885048]
        assert [round(x, 8) for x in res.arms[1].ci] == [0.89413783, 0.98753689]
        # and our OR to rounding error
        assert res.se == pytest.approx(o["rrrc"]["se"], rel=1e-12)
        assert res.df == pytest.approx(orr.df, rel=1e-12)
        assert res.estimate == pytest.approx(orr.estimate, abs=1e-15)


def test_nested_relabelling_adds_twice_reader_variance_over_r(vandyke):
    """Relabel modality 1's readers as new people: the same AUCs, but the reader effect no longer cancels in the
    difference. Algebraically Var_nested - Var_OR = 2 Var(R) / R, with Var(R) = (MS(R) - MS(T*R))/2 - Cov1 + Cov3
    OR's reader variance component (Iowa prints 0.00153500), because the nested formula's cross-arm mean covariance
    includes the same-reader pairs (Cov1) and s_A^2 + s_B^2 = s_d^2 + 2 cov(A_r, B_r)."""
    crossed = split_plot_mrmc(vandyke, ["0", "1"])
    nested_df = vandyke.copy()
    nested_df["reader"] = nested_df["reader"].astype(str) + np.where(nested_df["modality"] == 1, "b", "a")
    nested = split_plot_mrmc(nested_df, ["0", "1"])
    assert nested.design == "nested" and nested.estimate == pytest.approx(crossed.estimate, abs=1e-15)
    excess = nested.se**2 - crossed.se**2
    assert excess == pytest.approx(2 * 0.00153500 / 5, rel=1e-5)


def _mw_auc(truth: np.ndarray, rating: np.ndarray) -> float:
    pos, neg = rating[truth == 1], rating[truth == 0]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def test_missing_reads_brute_force_jackknife():
    """Each reader reads a different subset; our reader AUCs and SEs equal a brute-force leave-one-case-out
    recomputation (Mann-Whitney on the reads left), and no case is dropped."""
    rng = np.random.default_rng(7)
    d = simulate_split_plot_reads(rng, n_centers=1, cases_per_center=40, readers_per_arm_per_center=3)
    # crossed-by-case and many missing reads: duplicate reads to every reader of the arm, then drop 30%
    full = []
    for _arm, g in d.groupby("modality"):
        for reader in g["reader"].unique():
            gg = g.copy()
            gg["reader"] = reader
            gg["rating"] = gg["rating"] + rng.normal(0, 1, len(gg))
            full.append(gg)
    d = pd.concat(full, ignore_index=True)
    d = d[rng.random(len(d)) > 0.3].reset_index(drop=True)
    res = split_plot_mrmc(d, ["A", "B"])
    assert res.n == d["case"].nunique() == 40
    cases = sorted(d["case"].unique())
    for arm_res in res.arms:
        g = d[d["modality"] == arm_res.arm]
        readers = sorted(g["reader"].unique())
        auc = np.array([_mw_auc(*g[g.reader == r][["truth", "rating"]].to_numpy().T) for r in readers])
        assert list(arm_res.reader_auc.values()) == pytest.approx(auc.tolist(), abs=1e-12)
        jk = np.array([[_mw_auc(*g[(g.reader == r) & (g.case != k)][["truth", "rating"]].to_numpy().T)
                        for k in cases] for r in readers])
        dev = jk - jk.mean(axis=1, keepdims=True)
        cov = (len(cases) - 1) / len(cases) * dev @ dev.T
        cov2 = cov[~np.eye(len(readers), dtype=bool)].mean()
        se = np.sqrt(auc.var(ddof=1) / len(readers) + max(cov2, 0.0))
        assert arm_res.se == pytest.approx(se, rel=1e-10)


def test_null_coverage_nested_design():
    """Paired-by-case nulls (4 readers per arm, 120 cases, 10% of reads missing): the 95% CI of the AUC
    difference covers the truth (0); 250 trials, Monte-Carlo SE about 1.4 points (benchmarks/mrmc_nested.py)."""
    rng = np.random.default_rng(2026)
    n, cover = 250, 0
    for _ in range(n):
        r = split_plot_mrmc(simulate_split_plot_reads(rng, readers_per_arm_per_center=2, missing=0.1), ["A", "B"])
        cover += r.ci[0] <= 0.0 <= r.ci[1]
    assert 0.92 <= cover / n <= 0.98  # Hillis' moment-matched ddf gave 0.98-0.99 here (over-coverage)


def test_shifted_df_reduces_to_welch_and_shrinks_with_a_negative_case_term():
    assert _shifted_df(0.004, 7.5, 0.0, 0.95) == 7.5  # no case term: Welch's df
    assert _shifted_df(0.004, 7.5, -0.002, 0.95) < 7.5 < _shifted_df(0.004, 7.5, 0.002, 0.95)


def test_trial_section_uses_split_plot_in_nested_designs():
    tables = make_trial_tables("paired_by_case", n_cases=120, n_readers=8, seed=5)
    out = analyse_trial_tables(tables, "paired_by_case")
    block = out["reader_accuracy"]["findings"]["pneumothorax"]["mrmc"]
    assert block["method"].startswith("Obuchowski-Rockette for split-plot") and block["design"] == "nested"
    assert block["n"] == 120  # every case in, none dropped
    assert [a["n_readers"] for a in block["arms"]] == [4, 4]
    assert block["ci"][0] < block["estimate"] < block["ci"][1]
