"""lme4/, irr/ and rjafroc/ reference numbers (reference-stats/README.md)."""
import pytest

from analysis.stats import cohen_kappa, dbm, fit_mixed_model, fleiss_kappa, mrmc_analysis, obuchowski_rockette


@pytest.fixture(scope="module")
def sleepstudy(read_ref):
    return read_ref("lme4/sleepstudy.csv")


def test_sleepstudy_reml(sleepstudy):
    r = fit_mixed_model(sleepstudy, "Reaction ~ Days", groups="Subject", re_formula="~Days", reml=True, term="Days")
    fe = r.fixed_effects
    assert fe["Intercept"]["estimate"] == pytest.approx(251.405104848485, rel=1e-10)
    assert fe["Days"]["estimate"] == pytest.approx(10.467285959595, rel=1e-10)
    assert round(fe["Intercept"]["se"], 3) == 6.825
    assert round(fe["Days"]["se"], 3) == 1.546
    sd = r.random_effects["sd"]
    assert round(sd["Group"], 3) == 24.741
    assert round(sd["Days"], 3) == 5.922
    assert round(r.random_effects["corr"]["Group:Days"], 3) == 0.066
    assert round(r.residual_sd, 3) == 25.592
    assert round(r.reml_criterion, 3) == 1743.628


def test_sleepstudy_ml(sleepstudy):
    r = fit_mixed_model(sleepstudy, "Reaction ~ Days", groups="Subject", re_formula="~Days", reml=False)
    assert round(r.deviance, 3) == 1751.939
    assert round(r.aic, 2) == 1763.94
    assert round(r.bic, 1) == 1783.1


@pytest.fixture(scope="module")
def anxiety(read_ref):
    return read_ref("irr/anxiety.csv")


# The README labels these "rater1 and rater2"; irr's kappa2 prints these exact numbers for the rater2/rater3
# columns of the CSV (rater1/rater2 give 0.1195 / 0.1892 / 0.2968, the last being irr's documented
# kappa2(anxiety[, 1:2], "squared") = 0.297). See the final report.
@pytest.mark.parametrize(
    "weights,kappa,z,p",
    [
        ("unweighted", -0.006289308, -0.0604067, 0.9518317),
        ("linear", 0.1459075, 1.282472, 0.1996772),
        ("quadratic", 0.2520325, 1.437451, 0.1505898),
    ],
)
def test_irr_kappa2(anxiety, weights, kappa, z, p):
    r = cohen_kappa(anxiety.rater2, anxiety.rater3, weights)
    assert r.estimate == pytest.approx(kappa, abs=5e-7 * max(1, abs(kappa) * 10))
    assert round(r.estimate, 7 if abs(kappa) > 0.1 else 9) == kappa
    assert round(r.statistic, 7 if abs(z) < 1 else 6) == z
    assert round(r.p, 7) == p


def test_irr_kappa2_documented_example(anxiety):
    r = cohen_kappa(anxiety.rater1, anxiety.rater2, "quadratic")
    assert round(r.estimate, 3) == 0.297


def test_fleiss_diagnoses(read_ref):
    r = fleiss_kappa(read_ref("irr/diagnoses.csv"))
    assert r.n == 30 and r.n_raters == 6
    assert round(r.estimate, 3) == 0.430


@pytest.fixture(scope="module")
def vandyke(read_ref):
    return read_ref("rjafroc/dataset02_VanDyke.csv")


@pytest.fixture(scope="module")
def orr(vandyke):
    return obuchowski_rockette(vandyke)


def r8(x):
    return round(x, 8)


def test_or_aucs(orr):
    assert [r8(v) for v in orr["auc_by_modality"].values()] == [0.89703704, 0.94083736]
    assert r8(orr.estimate) == -0.04380032
    assert [r8(v) for v in orr["auc_by_reader"]["0"].values()] == [0.91964573, 0.85877617, 0.90386473, 0.97310789,
                                                                    0.82979066]
    assert [r8(v) for v in orr["auc_by_reader"]["1"].values()] == [0.94782609, 0.90531401, 0.92173913, 0.99935588,
                                                                    0.92995169]


def test_or_anova_and_variance_components(orr):
    a, v = orr["anova"], orr["variance_components"]
    assert (r8(a["ms_t"]), r8(a["ms_r"]), r8(a["ms_tr"])) == (0.00479617, 0.00383620, 0.00055103)
    # Pitfall: Var(R) must take Cov1 - Cov3 out (0.00153500), not stop at (MS(R) - MS(T*R)) / t = 0.00164.
    assert r8(v["var_r"]) == 0.00153500
    assert r8(v["var_tr"]) == 0.00020040
    assert (r8(v["cov1"]), r8(v["cov2"]), r8(v["cov3"])) == (0.00034661, 0.00034407, 0.00023903)
    assert r8(v["var_error"]) == 0.00080229
    assert (r8(v["corr1"]), r8(v["corr2"]), r8(v["corr3"])) == (0.43203138, 0.42886683, 0.29793328)


def test_or_random_readers_random_cases(orr):
    b = orr["rrrc"]
    assert round(b["f"], 2) == 4.46 and round(b["ddf"], 2) == 15.26 and round(b["p"], 4) == 0.0517
    assert r8(b["error_term"]) == 0.00107626
    assert (round(b["ci"][0], 5), round(b["ci"][1], 5)) == (-0.08796, 0.00036)
    assert round(b["se"], 5) == 0.02075
    s1, s2 = b["single"]
    assert (r8(s1["ci"][0]), r8(s1["ci"][1])) == (0.82522360, 0.96885048)
    assert (r8(s2["ci"][0]), r8(s2["ci"][1])) == (0.89413783, 0.98753689)
    assert (r8(s1["se"]), round(s1["df"], 2), r8(s1["cov2"])) == (0.03317360, 12.74, 0.00048396)
    assert (r8(s2["se"]), round(s2["df"], 2), r8(s2["cov2"])) == (0.02156637, 12.71, 0.00020419)
    assert (r8(s1["ms_r"]), r8(s2["ms_r"])) == (0.00308263, 0.00130460)
    assert (orr.statistic, orr.df, orr.p) == (b["f"], b["ddf"], b["p"])


def test_or_fixed_readers(orr):
    b = orr["frrc"]
    assert round(b["chisq"], 5) == 5.47595 and round(b["p"], 4) == 0.0193
    assert (round(b["ci"][0], 5), round(b["ci"][1], 5)) == (-0.08049, -0.00711)
    assert round(b["se"], 5) == 0.01872
    s1, s2 = b["single"]
    assert (r8(s1["se"]), r8(s1["ci"][0]), r8(s1["ci"][1])) == (0.02428971, 0.84943008, 0.94464399)
    assert (r8(s2["se"]), r8(s2["ci"][0]), r8(s2["ci"][1])) == (0.01677632, 0.90795637, 0.97371835)
    assert (r8(s1["var_error"]), r8(s2["var_error"])) == (0.00101410, 0.00059047)
    expected = [  # reader: difference, se, p, ci, var_error, cov1 (Iowa output, Analysis 2 (d))
        (-0.02818, 0.02551, 0.2693, (-0.07818, 0.02182), 0.00069890, 0.00037347),
        (-0.04654, 0.02630, 0.0768, (-0.09809, 0.00501), 0.00110605, 0.00076016),
        (-0.01787, 0.03121, 0.5668, (-0.07904, 0.04330), 0.00084234, 0.00035532),
        (-0.02625, 0.01729, 0.1290, (-0.06014, 0.00764), 0.00015058, 0.00000108),
        (-0.10016, 0.04406, 0.0230, (-0.18651, -0.01381), 0.00121357, 0.00024304),
    ]
    for row, (d, se, p, ci, ve, c1) in zip(b["per_reader"], expected, strict=True):
        assert (round(row["difference"], 5), round(row["se"], 5), round(row["p"], 4)) == (d, se, p)
        assert (round(row["ci"][0], 5), round(row["ci"][1], 5)) == ci
        assert (r8(row["var_error"]), r8(row["cov1"])) == (ve, c1)


def test_or_fixed_cases(orr):
    b = orr["rrfc"]
    assert round(b["f"], 2) == 8.70 and b["ddf"] == 4 and round(b["p"], 4) == 0.0420
    assert (round(b["ci"][0], 5), round(b["ci"][1], 5)) == (-0.08502, -0.00258)
    assert round(b["se"], 5) == 0.01485
    s1, s2 = b["single"]
    assert (r8(s1["se"]), r8(s1["ci"][0]), r8(s1["ci"][1])) == (0.02482994, 0.82809808, 0.96597599)
    assert (r8(s2["se"]), r8(s2["ci"][0]), r8(s2["ci"][1])) == (0.01615303, 0.89598936, 0.98568536)


@pytest.fixture(scope="module")
def dbm_res(vandyke):
    return dbm(vandyke)


def test_dbm_matches_or(dbm_res, orr):
    assert dbm_res.statistic == pytest.approx(orr.statistic, rel=1e-9)
    assert dbm_res.df == pytest.approx(orr.df, rel=1e-9)
    assert dbm_res.p == pytest.approx(orr.p, rel=1e-9)
    b = dbm_res["rrrc"]
    assert round(b["f"], 2) == 4.46 and round(b["ddf"], 2) == 15.26 and round(b["p"], 4) == 0.0517
    assert (round(b["ci"][0], 5), round(b["ci"][1], 5)) == (-0.08796, 0.00036)


def test_dbm_variance_components_iowa(dbm_res):
    v = dbm_res["variance_components"]  # Iowa OR-DBM MRMC 2.51, "Corresponding DBM variance component" table
    assert r8(v["var_r"]) == 0.00153500
    assert r8(v["var_c"]) == 0.02724923
    assert r8(v["var_tr"]) == 0.00020040
    assert r8(v["var_tc"]) == 0.01197530
    assert r8(v["var_rc"]) == 0.01226473
    assert r8(v["var_trc_error"]) == 0.03997160


# JAFROC 4.2.1 computes in single precision (its AUCs differ from Iowa's in the 8th digit), so its pseudovalue
# mean squares are compared to 1e-5 relative.
JAFROC_MS = {"ms_t": 0.54676316, "ms_r": 0.43732679, "ms_c": 0.39686891, "ms_tr": 0.06281753, "ms_tc": 0.09984813,
             "ms_rc": 0.06450099, "ms_trc": 0.03997167}


def test_dbm_pseudovalue_anova_jafroc(dbm_res):
    a = dbm_res["anova"]
    for k, v in JAFROC_MS.items():
        assert a[k] == pytest.approx(v, rel=1e-5), k
    assert round(a["ss_t"] + a["ss_r"] + a["ss_c"] + a["ss_tr"] + a["ss_tc"] + a["ss_rc"] + a["ss_trc"], 3) == 105.898
    single = dbm_res["single_modality_anova"]
    assert single["0"]["ms_r"] == pytest.approx(0.35141971, rel=1e-5)
    assert single["1"]["ms_c"] == pytest.approx(0.16042320, rel=1e-5)
    assert single["1"]["ms_rc"] == pytest.approx(0.04403661, rel=1e-5)


def test_dbm_fixed_readers_and_cases_jafroc(dbm_res):
    f = dbm_res["frrc"]
    assert round(f["f"], 2) == 5.48 and f["ddf"] == 113 and round(f["p"], 4) == 0.0210
    assert (round(f["ci"][0], 5), round(f["ci"][1], 5)) == (-0.08088, -0.00672)
    r = dbm_res["rrfc"]
    assert round(r["f"], 2) == 8.70 and round(r["p"], 4) == 0.0420
    s = dbm_res["rrrc"]["single"]
    assert (round(s[0]["ci"][0], 6), round(s[0]["ci"][1], 6)) == (0.825224, 0.968850)


def test_mrmc_analysis_dict(vandyke):
    out = mrmc_analysis(vandyke)
    assert {"auc_by_modality", "rrrc", "frrc", "rrfc", "variance_components", "dbm"} <= set(out)
    assert round(out["rrrc"]["f"], 2) == 4.46
