"""classic/ and proc/ reference numbers (reference-stats/README.md)."""
import pytest

from analysis.stats import (
    auc_delong,
    binomial_test,
    clopper_pearson,
    delong_paired_test,
    icc_all,
    paired_t_test,
    welch_t_test,
    wilcoxon_signed_rank,
)


def test_student_sleep_paired_t(read_ref):
    d = read_ref("classic/sleep_student.csv")
    r = paired_t_test(d.group1, d.group2)
    assert round(r.statistic, 4) == -4.0621
    assert r.df == 9
    assert round(r.p, 6) == 0.002833
    assert round(r.ci[0], 7) == -2.4598858 and round(r.ci[1], 7) == -0.7001142
    assert round(r.estimate, 2) == -1.58


def test_student_sleep_welch(read_ref):
    d = read_ref("classic/sleep_student.csv")
    r = welch_t_test(d.group1, d.group2)
    assert round(r.statistic, 4) == -1.8608
    assert round(r.df, 3) == 17.776
    assert round(r.p, 5) == 0.07939


def test_hollander_wolfe_wilcoxon_exact(read_ref):
    d = read_ref("classic/hollander_wolfe_depression.csv")
    r = wilcoxon_signed_rank(d.x_first, d.y_second, alternative="greater")
    assert r.statistic == 40
    assert r.p_method == "exact"
    assert r.p == pytest.approx(10 / 512, abs=1e-12)
    assert round(r.p, 5) == 0.01953


def test_shrout_fleiss_icc(read_ref):
    d = read_ref("classic/shrout_fleiss_1979.csv").set_index("target")
    got = {k: round(v.estimate, 2) for k, v in icc_all(d).items()}
    assert got == {"ICC(1,1)": 0.17, "ICC(2,1)": 0.29, "ICC(3,1)": 0.71, "ICC(1,k)": 0.44, "ICC(2,k)": 0.62,
                   "ICC(3,k)": 0.91}


def test_binomial_and_clopper_pearson():
    r = binomial_test(682, 925, p0=0.75)
    assert round(r.p, 4) == 0.3825
    lo, hi = clopper_pearson(7, 50)
    assert lo == pytest.approx(0.05819170033997342, rel=1e-12)
    assert hi == pytest.approx(0.26739600249700846, rel=1e-12)


@pytest.fixture(scope="module")
def asah(read_ref):
    return read_ref("proc/aSAH.csv")


def test_proc_s100b(asah):
    r = auc_delong(asah.outcome, asah.s100b, positive="Poor", direction="auto")
    assert round(r.estimate, 4) == 0.7314
    assert r.variance == pytest.approx(0.00266868245717244, rel=1e-10)
    assert round(r.ci[0], 4) == 0.6301 and round(r.ci[1], 4) == 0.8326


def test_proc_ndka_and_wfns(asah):
    r = auc_delong(asah.outcome, asah.ndka, positive="Poor", direction="auto")
    assert r.estimate == pytest.approx(0.611957994579946, rel=1e-12)
    assert r.ci[0] == pytest.approx(0.501244999271703, rel=1e-10)
    assert r.ci[1] == pytest.approx(0.722670989888189, rel=1e-10)
    assert r.variance == pytest.approx(0.0031908105493913, rel=1e-10)
    w = auc_delong(asah.outcome, asah.wfns, positive="Poor", direction="auto")
    assert w.variance == pytest.approx(0.00146991470882363, rel=1e-10)


@pytest.mark.parametrize(
    "a,b,z,p",
    [
        ("wfns", "s100b", 2.20898359144091, 0.0271757822291882),
        ("wfns", "ndka", 2.79777591868904, 0.00514557970691098),
        ("ndka", "s100b", -1.39077002573558, 0.164295175223054),
    ],
)
def test_proc_paired_delong(asah, a, b, z, p):
    r = delong_paired_test(asah.outcome, asah[a], asah[b], positive="Poor", direction="auto")
    assert r.statistic == pytest.approx(z, rel=1e-9)
    assert r.p == pytest.approx(p, rel=1e-9)


def test_direction_option_is_fixed_not_auto(asah):
    # The trial uses a fixed orientation: with '>' the s100b AUC is the complement of the '<' one.
    lt = auc_delong(asah.outcome, asah.s100b, positive="Poor", direction="<")
    gt = auc_delong(asah.outcome, asah.s100b, positive="Poor", direction=">")
    assert lt.direction == "<" and gt.direction == ">"
    assert gt.estimate == pytest.approx(1 - lt.estimate)


def test_icc_when_judges_agree_exactly_says_so_without_dividing_by_zero():
    import warnings

    import pandas as pd

    same = pd.DataFrame({"j1": [3, 4, 5, 2], "j2": [3, 4, 5, 2], "j3": [3, 4, 5, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a divide-by-zero RuntimeWarning fails the test
        results = icc_all(same)
    for form, r in results.items():
        assert r.estimate == 1.0, form
        assert r.ci is None and r.p is None
        assert "agree exactly" in r.note
