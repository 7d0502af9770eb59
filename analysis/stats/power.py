"""Power of the primary tests by simulation (pure numpy/pandas; no Django).

Each simulated trial comes from :func:`analysis.stats.synthetic.make_trial_tables` (the one trial model: readers
nested or crossed as the design says, reader/case/report/expert effects, preferences driven by perceived quality
with ties) and is analysed by the declared primary analysis, :func:`analysis.stats.primary.primary_analysis`
(quality LMM, reading-time LMM, preference by permutation of readers' arms within center). The power of a test is
the share of trials with p < alpha, given with its Monte-Carlo SE and Clopper-Pearson interval.

The case-level paired t-tests (quality, log time) are also run on every trial, labelled as not accounting for
readers: in paired-by-case trials they reject far too often under the null (``benchmarks/calibration.py``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._result import jsonable
from .primary import PreferenceDetails, RandomisationTest, primary_analysis
from .proportions import clopper_pearson
from .synthetic import TrialScenario, make_trial_tables

ASSISTED, CONTROL = "ai_assisted", "unassisted"
PRIMARY_TESTS = ("quality", "reading_time", "preference", "preference_decisive")
SENSITIVITY_TESTS = ("preference_randomisation",)
CASE_LEVEL_TESTS = ("quality_case_paired_t", "time_case_paired_t")
OUTCOME_COLUMNS = ["sim", "test", "estimate", "ci_low", "ci_high", "p", "converged", "fallback", "error"]

PowerScenario = TrialScenario  # the former name


@dataclass
class RejectionRate:
    """Rejection rate of one test over the simulated trials.

    ``power``: share of trials with p < alpha (trials whose analysis failed or gave no p count as not rejecting;
    ``n_failed`` says how many; ``n_not_converged`` fits not converged, ``n_fallback``
    fits where the declared fallback dropped a variance component). ``mc_se``: its Monte-Carlo standard error;
    ``ci``: Clopper-Pearson 95% interval.
    ``mean_estimate`` and ``truth`` (the scenario's true value) show bias; ``coverage`` is the share of 95% CIs that
    hold the truth (None without a truth or without CIs).
    """

    test: str
    power: float
    mc_se: float
    ci: tuple[float | None, float | None]
    n_sims: int
    n_failed: int
    n_not_converged: int
    n_fallback: int
    mean_estimate: float | None
    truth: float | None
    coverage: float | None
    coverage_ci: tuple[float | None, float | None] | None


@dataclass
class PowerResult:
    """Power of every test for one scenario (``tests`` keyed by test name; see :class:`RejectionRate`)."""

    scenario: dict[str, Any]
    sims: int
    alpha: float
    seed: int
    n_permutations: int
    tests: dict[str, RejectionRate]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"method": "Power by simulation of the primary analysis", "scenario": self.scenario,
                         "sims": self.sims, "alpha": self.alpha, "seed": self.seed,
                         "n_permutations": self.n_permutations, "seconds": self.seconds, "notes": self.notes,
                         "tests": {k: v.__dict__ for k, v in self.tests.items()}})


# -- one simulated trial ----------------------------------------------------------------------------------------
def case_level_paired_t(tables: dict[str, pd.DataFrame]) -> dict[str, tuple[float, float, float, float]]:
    """The old case-level paired t-tests (estimate, ci_low, ci_high, p) on case means of quality and log time.

    Descriptive only: they ignore readers (a case's arm difference is also a difference between two readers).
    """
    out: dict[str, tuple[float, float, float, float]] = {}
    r = tables["ratings"]
    if len(r) and "arm_b" in r and (r["arm_b"].notna() & (r["arm_b"].astype(str) != "")).any():
        ai = np.where(r["arm_a"] == ASSISTED, r["quality_a"], r["quality_b"]).astype(float)
        ctl = np.where(r["arm_a"] == ASSISTED, r["quality_b"], r["quality_a"]).astype(float)
        per = pd.DataFrame({"case": r["case_code"], "d": ai - ctl}).groupby("case")["d"].mean()
        out["quality_case_paired_t"] = _one_sample_t(per.to_numpy())
    reads = tables["reads"]
    lt = reads.assign(lt=np.log(reads["active_seconds"].astype(float))).pivot_table(
        index="case_code", columns="arm", values="lt", aggfunc="mean").dropna()
    if len(lt) > 1 and {ASSISTED, CONTROL} <= set(lt.columns):
        est, lo, hi, p = _one_sample_t((lt[ASSISTED] - lt[CONTROL]).to_numpy())
        out["time_case_paired_t"] = (math.exp(est), math.exp(lo), math.exp(hi), p)
    return out


def _one_sample_t(d: np.ndarray) -> tuple[float, float, float, float]:
    res = stats.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(0.95)
    return float(d.mean()), float(ci.low), float(ci.high), float(res.pvalue)


def _primary_rows(block: Any) -> dict[str, dict[str, Any]]:
    """estimate, ci_low, ci_high, p, converged, fallback of each primary test in a ``PrimaryBlock``.

    The decisive-pair rate and the reader randomisation test (a sensitivity analysis) come from the preference
    result's details.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in ("quality", "reading_time", "preference"):
        res = getattr(block, name, None)
        if res is None:
            continue
        ci = res.ci or (None, None)
        out[name] = {"estimate": res.estimate, "ci_low": ci[0], "ci_high": ci[1], "p": res.p,
                     "converged": bool(res.converged), "fallback": res.fallback is not None}
    pref = getattr(block, "preference", None)
    det = getattr(pref, "details", None)
    if not isinstance(det, PreferenceDetails):
        return out
    ci = det.decisive_rate_ci or (None, None)
    out["preference_decisive"] = {"estimate": det.decisive_rate, "ci_low": ci[0], "ci_high": ci[1],
                                  "p": det.decisive_rate_p, "converged": bool(pref.converged),
                                  "fallback": pref.fallback is not None}
    rt = det.randomisation_test
    if isinstance(rt, RandomisationTest) and rt.p is not None:
        out["preference_randomisation"] = {"estimate": None, "ci_low": None, "ci_high": None, "p": rt.p,
                                           "converged": True, "fallback": False}
    return out


def run_one(scenario: TrialScenario, sim: int, seed: int, n_permutations: int,
            primary: bool = True) -> list[dict[str, Any]]:
    """Simulate and analyse trial number ``sim`` (its own stream ``default_rng([seed, sim])``); long rows."""
    rng = np.random.default_rng([seed, sim])
    rows: list[dict[str, Any]] = []
    tables = make_trial_tables(scenario=scenario, rng=rng)
    if scenario.design != "case_randomised":
        for name, (est, lo, hi, p) in case_level_paired_t(tables).items():
            rows.append({"sim": sim, "test": name, "estimate": est, "ci_low": lo, "ci_high": hi, "p": p,
                         "converged": True, "fallback": False, "error": ""})
    if not primary:
        return rows

    try:
        block = primary_analysis(tables, design=scenario.design, majority_k=scenario.k, assisted=ASSISTED,
                                 control=CONTROL, n_permutations=n_permutations, rng=rng,
                                 subgroups=False)
    except Exception as exc:  # noqa: BLE001 - a failed analysis is a result of the simulation, counted and shown
        return rows + [{"sim": sim, "test": t, "estimate": None, "ci_low": None, "ci_high": None, "p": None,
                        "converged": False, "fallback": False,
                        "error": f"{type(exc).__name__}: {exc}"} for t in PRIMARY_TESTS]
    for name, row in _primary_rows(block).items():
        rows.append({"sim": sim, "test": name, **row, "error": ""})
    return rows


def _run_chunk(args: tuple[TrialScenario, list[int], int, int, bool]) -> list[dict[str, Any]]:
    scenario, sims, seed, n_permutations, primary = args
    return [row for s in sims for row in run_one(scenario, s, seed, n_permutations, primary)]


def simulate_outcomes(scenario: TrialScenario, sims: int, *, seed: int = 20250101, n_permutations: int = 0,
                      jobs: int = 1, primary: bool = True, start: int = 0) -> pd.DataFrame:
    """Simulate and analyse ``sims`` trials (numbered from ``start``); one row per (trial, test).

    Trial i uses its own random stream, so results do not depend on ``jobs`` (worker processes).
    """
    scenario.validate()
    ids = list(range(start, start + sims))
    if jobs <= 1:
        rows = _run_chunk((scenario, ids, seed, n_permutations, primary))
    else:
        chunks = [(scenario, ids[i::jobs], seed, n_permutations, primary) for i in range(jobs)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            rows = [r for part in pool.map(_run_chunk, chunks) for r in part]
    return pd.DataFrame(rows, columns=OUTCOME_COLUMNS).sort_values(["test", "sim"], kind="stable")


# -- summaries --------------------------------------------------------------------------------------------------
def truths_for(scenario: TrialScenario) -> dict[str, float | None]:
    """True values of every test's estimand (case-level tests estimate the same quantities as the primary ones)."""
    t = scenario.truths()
    return {**t, "quality_case_paired_t": t["quality"], "time_case_paired_t": t["reading_time"]}


def summarise(outcomes: pd.DataFrame, sims: int, truths: dict[str, float | None], alpha: float = 0.05,
              tests: Iterable[str] | None = None) -> dict[str, RejectionRate]:
    """Rejection rate (p < alpha) and CI coverage of each test over ``sims`` trials."""
    out: dict[str, RejectionRate] = {}
    for name in tests or sorted(outcomes["test"].unique()):
        g = outcomes[outcomes["test"] == name]
        p = pd.to_numeric(g["p"], errors="coerce")
        hits = int((p < alpha).sum())
        est = pd.to_numeric(g["estimate"], errors="coerce")
        truth = truths.get(name)
        cov, cov_ci = None, None
        lo, hi = pd.to_numeric(g["ci_low"], errors="coerce"), pd.to_numeric(g["ci_high"], errors="coerce")
        if truth is not None and lo.notna().any():
            inside = int(((lo <= truth) & (truth <= hi)).sum())
            cov, cov_ci = inside / sims, clopper_pearson(inside, sims)
        rate = hits / sims
        out[name] = RejectionRate(test=name, power=rate, mc_se=math.sqrt(rate * (1 - rate) / sims),
                              ci=clopper_pearson(hits, sims), n_sims=sims, n_failed=int(p.isna().sum()),
                              n_not_converged=int((~g["converged"].astype(bool)).sum()),
                              n_fallback=int(g["fallback"].astype(bool).sum()),
                              mean_estimate=float(est.mean()) if est.notna().any() else None, truth=truth,
                              coverage=cov, coverage_ci=cov_ci)
    return out


def simulate_power(
    scenario: TrialScenario | None = None,
    sims: int = 200,
    alpha: float = 0.05,
    seed: int = 20250101,
    n_permutations: int = 0,
    jobs: int = 1,
    **overrides: Any,
) -> PowerResult:
    """Power of each primary test (and, for comparison, the case-level paired t) by simulation of ``scenario``.

    ``overrides`` replace scenario fields (e.g. ``n_cases=150``). Counts that do not fit the design raise
    ValueError (see :meth:`TrialScenario.validate`).
    """
    sc = replace(scenario or TrialScenario(), **overrides).validate()
    t0 = time.perf_counter()
    outcomes = simulate_outcomes(sc, sims, seed=seed, n_permutations=n_permutations, jobs=jobs)
    tests = summarise(outcomes, sims, truths_for(sc), alpha)
    notes = ["quality_case_paired_t and time_case_paired_t ignore readers: descriptive, not valid tests"]
    if n_permutations:
        notes.append(f"preference_randomisation: reader randomisation test (sensitivity), {n_permutations} "
                     f"permutations, p resolved to 1/{n_permutations + 1}")
    return PowerResult(scenario=sc.to_dict(), sims=sims, alpha=alpha, seed=seed, n_permutations=n_permutations,
                       tests=tests, seconds=round(time.perf_counter() - t0, 2), notes=notes)
