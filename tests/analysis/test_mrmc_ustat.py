"""Gallas U-statistic MRMC (analysis/stats/mrmc_ustat.py): iMRMC 4.0.0's published output on its own example data,
exact identities checked by enumeration (unbiasedness, the MLE as the ideal bootstrap, brute-force moments), the
Van Dyke data against the Iowa OR results, null coverage in a nested design and the trial wiring."""
import itertools
from io import StringIO
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from django.template import Context
from scipy import stats

from analysis.report import _engine, _reader_rows
from analysis.stats.mrmc_split import simulate_split_plot_reads
from analysis.stats.mrmc_ustat import ustat_mrmc
from analysis.stats.synthetic import make_trial_tables
from analysis.stats.trial import analyse_trial, analyse_trial_tables


def read_imrmc(path) -> pd.DataFrame:
    """iMRMC input: after 'BEGIN DATA:' rows reader,case,modality,score; reader 'truth' (or -1) gives the truth."""
    text = path.read_text().split("BEGIN DATA:", 1)[1].split("\n", 1)[1]
    d = pd.read_csv(StringIO(text), header=None, names=["reader", "case", "modality", "rating"], dtype=str)
    is_truth = d["reader"].isin(["truth", "-1"])
    truth = d[is_truth].set_index("case")["rating"].astype(float).astype(int)
    reads = d[~is_truth].copy()
    reads["truth"] = reads["case"].map(truth)
    reads["rating"] = reads["rating"].astype(float)
    return reads


@pytest.fixture(scope="module")
def fakepilot(ref):
    return ustat_mrmc(read_imrmc(ref / "imrmc" / "fakepilot2.csv"), ["modalityA", "modalityB"])


def test_fakepilot_matches_imrmc_stat_analysis(fakepilot, read_ref):
    """statAnalysis.csv of iMRMC 4.0.0 (tests/analysis/results/README.md): AUCs, variances, normal-approximation
    p and CI, and Hillis df of modality A, modality B and A - B, to the printed 9 significant digits."""
    res = fakepilot
    out = read_ref("imrmc/statAnalysis_fakepilot2.csv")
    a, b = res.arms
    rows = {(r.modalityA, r.modalityB): r for r in out.itertuples()}
    for arm, row in ((a, rows[("modalityA", "NO_MOD")]), (b, rows[("modalityB", "NO_MOD")])):
        assert arm.auc == pytest.approx(row.AUCA, rel=1e-8)
        assert arm.var == pytest.approx(row.varAUCA, rel=1e-8)
        assert arm.df == pytest.approx(row.dfHillis, rel=1e-8)
    diff = rows[("modalityA", "modalityB")]
    assert res.design == "crossed" and res.variance_kind == "U-statistic"
    assert res.estimate == pytest.approx(diff.AUCAminusAUCB, rel=1e-8)
    assert res.var == pytest.approx(diff.varAUCAminusAUCB, rel=1e-8)
    assert res.df == pytest.approx(diff.dfHillis, rel=1e-8)
    assert res.ci_normal == pytest.approx((diff.botCInormal, diff.topCInormal), rel=1e-8)
    # iMRMC takes its t quantile at the df rounded down to an integer; we use the df itself
    q = stats.t.ppf(0.975, int(res.df))
    assert (res.estimate - q * res.se, res.estimate + q * res.se) == pytest.approx(
        (diff.botCIHillis, diff.topCIHillis), rel=1e-8)
    assert 2 * stats.t.sf(res.estimate / res.se, int(res.df)) == pytest.approx(diff.pValueHillis, rel=1e-6)
    assert res.ci[0] > diff.botCIHillis  # with df 2.4 instead of 2 the CI is narrower


def test_fakepilot_matches_imrmc_reader_aucs_and_moments(fakepilot, read_ref):
    """AUCperReader.csv (single-reader U-statistic variances) and BDGtable.csv (moments M1..M8, U-statistic and
    MLE, and coefficients; 6 significant digits printed)."""
    res = fakepilot
    per = read_ref("imrmc/AUCperReader_fakepilot2.csv")
    single = per[per["modalityB"] == "NO_MOD"]
    for arm in res.arms:
        rows = single[single["modalityA"] == arm.arm].set_index("readerID")
        for reader, auc in arm.reader_auc.items():
            assert auc == pytest.approx(rows.loc[reader, "AUCA"], rel=1e-8)
            assert arm.reader_var[reader] == pytest.approx(rows.loc[reader, "varAUCA"], rel=5e-5)  # 5 digits
    bdg = read_ref("imrmc/BDGtable_fakepilot2.csv")
    cols = [f"M{k}" for k in range(1, 9)]

    def row(mod_a, mod_b, kind, what):
        sel = bdg[(bdg.modalityA == mod_a) & (bdg.modalityB == mod_b) & (bdg.UstatOrMLE == kind)
                  & (bdg.compOrCoeff == what)]
        return sel[cols].to_numpy(float).ravel()

    aa, bb, ab = res.moments
    assert aa.moments == pytest.approx(row("modalityA", "NO_MOD", "Ustat", "comp_A"), rel=2e-5)
    assert aa.moments_mle == pytest.approx(row("modalityA", "NO_MOD", "MLE", "comp_A"), rel=2e-5)
    assert aa.coefficients == pytest.approx(row("modalityA", "NO_MOD", "Ustat", "coeff_A"), rel=2e-5)
    assert bb.moments == pytest.approx(row("modalityB", "NO_MOD", "Ustat", "comp_A"), rel=2e-5)
    assert bb.moments_mle == pytest.approx(row("modalityB", "NO_MOD", "MLE", "comp_A"), rel=2e-5)
    assert ab.moments == pytest.approx(row("modalityA", "modalityB", "Ustat", "comp_product"), rel=2e-5)
    assert ab.moments_mle == pytest.approx(row("modalityA", "modalityB", "MLE", "comp_product"), rel=2e-5)
    # iMRMC prints the product coefficients doubled (they enter var_A + var_B - 2 cov)
    assert 2 * np.array(ab.coefficients) == pytest.approx(row("modalityA", "modalityB", "Ustat", "coeff_product"),
                                                          rel=2e-5)


def _mw_auc(truth: np.ndarray, rating: np.ndarray) -> float:
    pos, neg = rating[truth == 1], rating[truth == 0]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def test_reader_average_is_mean_of_mann_whitney_aucs_when_crossed_and_pair_weighted_otherwise():
    rng = np.random.default_rng(3)
    cases = pd.DataFrame({"case": [f"k{i}" for i in range(30)], "truth": (np.arange(30) % 3 == 0).astype(int)})
    rows = [cases.assign(reader=f"r{r}", modality=m, rating=rng.integers(0, 5, 30) + cases["truth"] * (r + 1))
            for r in range(4) for m in ("A", "B")]
    d = pd.concat(rows, ignore_index=True)
    res = ustat_mrmc(d, ["A", "B"])
    for arm in res.arms:
        g = d[d.modality == arm.arm]
        mw = [_mw_auc(*g[g.reader == r][["truth", "rating"]].to_numpy().T) for r in sorted(g.reader.unique())]
        assert list(arm.reader_auc.values()) == pytest.approx(mw, abs=1e-14)
        assert arm.auc == pytest.approx(np.mean(mw), abs=1e-14)
    dm = d[rng.random(len(d)) > 0.3]
    res = ustat_mrmc(dm, ["A", "B"])
    for arm in res.arms:
        g = dm[dm.modality == arm.arm]
        pairs = g.groupby("reader").apply(lambda x: x.truth.sum() * (1 - x.truth).sum(), include_groups=False)
        assert arm.auc == pytest.approx(np.average(list(arm.reader_auc.values()), weights=pairs.sort_index()),
                                        abs=1e-14)
    assert res.n == 30  # no case dropped


def _brute_moments(d: pd.DataFrame, arm_x: str, arm_y: str) -> tuple[np.ndarray, np.ndarray]:
    """M1..M8 and coefficients by listing every pair of observed kernels (iMRMC numbering)."""
    def kernels(arm):
        g = d[d.modality == arm]
        out = []
        for r, gr in g.groupby("reader"):
            neg, pos = gr[gr.truth == 0], gr[gr.truth == 1]
            for i, x in zip(neg.case, neg.rating, strict=True):
                for j, y in zip(pos.case, pos.rating, strict=True):
                    out.append((r, i, j, float(y > x) + 0.5 * float(y == x)))
        return out

    kx, ky = kernels(arm_x), kernels(arm_y)
    num, den = np.zeros(8), np.zeros(8)
    order = {(1, 1, 1): 0, (1, 0, 1): 1, (1, 1, 0): 2, (1, 0, 0): 3, (0, 1, 1): 4, (0, 0, 1): 5, (0, 1, 0): 6,
             (0, 0, 0): 7}  # (same reader, same negative, same positive) -> M index
    for (r, i, j, s), (r2, i2, j2, s2) in itertools.product(kx, ky):
        k = order[(int(r == r2), int(i == i2), int(j == j2))]
        num[k] += s * s2
        den[k] += 1
    m = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    c = den / (len(kx) * len(ky))
    c[7] -= 1
    return m, c


def test_moments_equal_brute_force_with_missing_reads_and_partly_shared_readers():
    rng = np.random.default_rng(11)
    cases = pd.DataFrame({"case": [f"k{i}" for i in range(9)], "truth": [1, 0, 1, 0, 0, 1, 0, 1, 0]})
    rows = []
    for m, readers in (("A", ["r1", "r2", "r3"]), ("B", ["r2", "r3", "r4"])):
        for r in readers:
            rows.append(cases.assign(reader=r, modality=m, rating=rng.integers(0, 4, 9) + cases.truth))
    d = pd.concat(rows, ignore_index=True)
    d = d[rng.random(len(d)) > 0.25].reset_index(drop=True)
    res = ustat_mrmc(d, ["A", "B"])
    assert res.design == "partial"
    for mom, (x, y) in zip(res.moments, (("A", "A"), ("B", "B"), ("A", "B")), strict=True):
        m, c = _brute_moments(d, x, y)
        assert mom.moments == pytest.approx(m, abs=1e-12)
        assert mom.coefficients == pytest.approx(c, abs=1e-12)
        assert mom.variance == pytest.approx(float(c @ m), abs=1e-12)


def _enumerate(design: dict[str, dict[str, list[str]]], score, n_types: int = 2) -> tuple[float, float, float]:
    """Every study drawn i.i.d. from a finite population (each reader and case one of ``n_types`` equally likely
    types; the rating is a fixed function of reader type, case type and arm): returns the exact Var(AUC_A - AUC_B),
    E[U-statistic variance estimate] and the mean of the MLE estimate. ``design`` maps arm -> reader -> cases."""
    readers = sorted({r for arm in design.values() for r in arm})
    case_ids = sorted({c for arm in design.values() for cs in arm.values() for c in cs})
    est, var_u, var_mle = [], [], []
    for types in itertools.product(range(n_types), repeat=len(readers) + len(case_ids)):
        rt = dict(zip(readers, types[:len(readers)], strict=True))
        ct = dict(zip(case_ids, types[len(readers):], strict=True))
        rows = [(r, arm, c, int(c.startswith("p")), score(rt[r], ct[c], arm, c.startswith("p")))
                for arm, by_reader in design.items() for r, cs in by_reader.items() for c in cs]
        d = pd.DataFrame(rows, columns=["reader", "modality", "case", "truth", "rating"])
        res = ustat_mrmc(d, ["A", "B"])
        est.append(res.estimate)
        aa, bb, ab = res.moments
        var_u.append(aa.variance + bb.variance - 2 * ab.variance)
        var_mle.append(aa.variance_mle + bb.variance_mle - 2 * ab.variance_mle)
    est_arr = np.array(est)
    return float(est_arr.var()), float(np.mean(var_u)), float(np.mean(var_mle))


def _score(reader_type: int, case_type: int, arm: str, positive: bool) -> float:
    table = np.array([[0.0, 1.0, 2.0, 1.0], [1.0, 1.0, 0.0, 2.0]])  # ties on purpose
    return float(table[reader_type, 2 * case_type + int(arm == "A")] + 1.5 * positive * (reader_type + 1))


def test_variance_is_exactly_unbiased_in_a_crossed_design():
    cases = ["n1", "n2", "p1", "p2", "p3"]
    design = {"A": {"r1": cases, "r2": cases}, "B": {"r1": cases, "r2": cases}}
    true_var, mean_u, mean_mle = _enumerate(design, _score)
    assert true_var > 0
    assert mean_u == pytest.approx(true_var, rel=1e-10)
    assert mean_mle < true_var  # the MLE is biased low


def test_variance_is_exactly_unbiased_in_a_nested_split_plot_design_with_missing_reads():
    """Readers nested in arms; each reader reads a different, partly overlapping subset (cases are shared across
    arms, as in paired-by-case)."""
    design = {"A": {"a1": ["n1", "n2", "p1", "p2"], "a2": ["n2", "p1", "p2"]},
              "B": {"b1": ["n1", "p1", "p2"], "b2": ["n1", "n2", "p2"]}}
    true_var, mean_u, _ = _enumerate(design, _score)
    assert true_var > 0
    assert mean_u == pytest.approx(true_var, rel=1e-10)


def test_mle_variance_is_the_ideal_bootstrap_variance_when_fully_crossed():
    """Resampling readers, negatives and positives independently with replacement, every resample enumerated."""
    rng = np.random.default_rng(5)
    n_r, n0, n1 = 2, 3, 3
    x, y = rng.integers(0, 3, (n_r, n0)).astype(float), rng.integers(0, 4, (n_r, n1)).astype(float)
    kern = (y[:, None, :] > x[:, :, None]) + 0.5 * (y[:, None, :] == x[:, :, None])  # reader, negative, positive
    boot = [kern[np.ix_(rs, is_, js)].mean()
            for rs in itertools.product(range(n_r), repeat=n_r)
            for is_ in itertools.product(range(n0), repeat=n0)
            for js in itertools.product(range(n1), repeat=n1)]
    rows = [(f"r{r}", "A", f"n{i}", 0, x[r, i]) for r in range(n_r) for i in range(n0)]
    rows += [(f"r{r}", "A", f"p{j}", 1, y[r, j]) for r in range(n_r) for j in range(n1)]
    d = pd.DataFrame(rows, columns=["reader", "modality", "case", "truth", "rating"])
    d = pd.concat([d, d.assign(modality="B")], ignore_index=True)
    res = ustat_mrmc(d, ["A", "B"])
    assert res.moments[0].variance_mle == pytest.approx(float(np.var(boot)), rel=1e-12)


def test_vandyke_agrees_with_the_iowa_or_analysis(read_ref):
    """Fully crossed, so the reader-averaged AUCs are the Iowa ones exactly; the U-statistic variance and the OR
    jackknife variance estimate the same quantity (they differ at order 1/cases): on these data 4.273e-4 vs
    4.305e-4 (ratio 0.993), ddf 15.03 vs 15.26, p 0.0512 vs 0.0517."""
    vd = read_ref("rjafroc/dataset02_VanDyke.csv")
    res = ustat_mrmc(vd, [0, 1])
    assert [round(a.auc, 8) for a in res.arms] == [0.89703704, 0.94083736]
    assert round(res.estimate, 8) == -0.04380032
    iowa_var = ((0.00036 + 0.08796) / 2 / stats.t.ppf(0.975, 15.26)) ** 2  # from the Iowa CI and ddf
    assert res.var == pytest.approx(iowa_var, rel=0.02)
    assert res.df == pytest.approx(15.26, rel=0.03)
    assert res.p == pytest.approx(0.0517, abs=0.002)


def test_null_coverage_nested_design():
    """Paired-by-case nulls (4 readers per arm, 120 cases, 10% of reads missing); 250 trials, Monte-Carlo SE about
    1.5 points (benchmarks/mrmc_nested.py has the full table)."""
    rng = np.random.default_rng(2027)
    n, cover = 250, 0
    for _ in range(n):
        r = ustat_mrmc(simulate_split_plot_reads(rng, readers_per_arm_per_center=2, missing=0.1), ["A", "B"])
        cover += r.ci[0] <= 0.0 <= r.ci[1]
    assert 0.91 <= cover / n <= 0.98


def test_trial_section_reports_the_ustat_alternative_in_nested_designs():
    tables = make_trial_tables("paired_by_case", n_cases=120, n_readers=8, seed=5)
    out = analyse_trial_tables(tables, "paired_by_case")
    block = out["reader_accuracy"]["findings"]["pneumothorax"]
    alt = block["mrmc_ustat"]
    assert alt["method"].startswith("U-statistic MRMC variance") and alt["design"] == "nested"
    assert alt["n"] == 120 and [a["n_readers"] for a in alt["arms"]] == [4, 4]
    assert alt["ci"][0] < alt["estimate"] < alt["ci"][1]
    assert block["mrmc"]["method"].startswith("Obuchowski-Rockette for split-plot")  # the primary stays OR
    # The report's readers' accuracy table (its template, fed by the typed results) shows it as the alternative.
    typed = analyse_trial(tables, "paired_by_case")
    rows = _reader_rows(typed, "ai_assisted", "unassisted")
    page = SimpleNamespace(assisted="ai_assisted", control="unassisted", reader_rows=rows, reader_ustat=True)
    html = _engine().get_template("analysis/report/reader_accuracy.html").render(Context({"page": page}))
    assert "U-statistic ΔAUC (alternative)" in html and f"{alt['estimate']:.3f}" in html
