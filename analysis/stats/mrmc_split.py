"""Reader AUC per arm and the arm difference when readers do not read every case in both arms.

Obuchowski-Rockette (OR) generalised to split-plot and nested designs (Obuchowski 1995 for readers nested in
modality; Hillis 2014, Stat Med 33:330, for the split-plot error terms): each reader's empirical AUC is computed on
the cases that reader read (missing reads are simply not in it; no case-wise deletion), and the case-sampling
covariance of every pair of reader AUCs comes from the leave-one-case-out jackknife over all cases of the study. A
case a reader did not read leaves that reader's AUC unchanged, so the jackknife needs no complete design; two
readers' AUCs covary only through the cases both read. On a fully crossed, complete design this is exactly the
jackknife of :mod:`analysis.stats.mrmc` and the result equals OR with Hillis df (docs/design.md section 7).

Variance of the arm difference ``D = mean_A(AUC_r) - mean_B(AUC_r)`` (unweighted reader means, as OR):

- readers crossed (the same readers in both arms): ``s_d^2 / R + 2 max(Cov2 - Cov3, 0)`` with ``s_d^2`` the
  variance of the readers' differences, Cov2 the mean same-arm and Cov3 the mean cross-arm covariance of different
  readers; ddf = Hillis. This is OR's random-readers random-cases analysis.
- readers nested in arms (disjoint reader sets; partly overlapping sets are analysed as nested, which ignores the
  shared readers' positive correlation and so is conservative): ``s_A^2/R_A + s_B^2/R_B + Cov2_A + Cov2_B - 2 Cov3``
  with Cov3 averaged over all cross-arm reader pairs. It is unbiased because ``E[s_t^2] = var_reader + mean case
  variance - Cov2_t``. Cov3 is where pairing by case pays off (both arms read the same cases). The reader mean
  squares get Welch's Satterthwaite df; the case term shifts them, and the t df is the one whose quantile gives
  the nominal coverage for that shifted chi-square (``_shifted_df``; Hillis' moment-matched ddf over-covered).
  If the estimate is not positive the case term is dropped and that is noted.

Input: a long table (``reader``, ``modality``, ``case``, ``truth``, ``rating``; columns may be renamed as in
:func:`analysis.stats.mrmc.obuchowski_rockette`). Readers with fewer than two positive or two negative cases in an arm
cannot have a jackknife AUC and are left out (counted).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ._result import jsonable
from .roc import _placements

_GRID = 2000  # chi-square quantile points for the effective df of the nested analysis
METHOD = ("Obuchowski-Rockette for split-plot / nested readers (empirical AUC, case jackknife; crossed: Hillis ddf, "
          "nested: shifted-Satterthwaite df)")


@dataclass(frozen=True)
class ArmAUC:
    """One arm: reader-averaged AUC with its random-readers random-cases SE, ddf and CI.

    ``reader_auc`` maps reader to AUC; ``ms_reader`` is the variance of the reader AUCs, ``cov2`` the mean jackknife
    covariance of two different readers' AUCs in this arm (0 when they read no case in common).
    """

    arm: str
    auc: float
    se: float
    df: float
    ci: tuple[float, float]
    n_readers: int
    n_reads: int
    ms_reader: float
    cov2: float
    reader_auc: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitPlotMRMCResult:
    """AUC difference ``arms[0] - arms[1]`` with random-readers random-cases inference.

    ``design`` is what the data showed: ``crossed`` (same readers in both arms), ``nested`` (disjoint readers) or
    ``partial`` (overlapping; analysed as nested). ``cov3`` is the mean cross-arm covariance used, ``case_term`` the
    case-covariance part added to the reader mean squares; ``note`` says what was left out or truncated.
    """

    method: str
    design: str
    estimate: float
    se: float
    df: float
    ci: tuple[float, float]
    statistic: float
    p: float
    conf_level: float
    n: int
    n_positive: int
    n_negative: int
    cov3: float
    case_term: float
    arms: tuple[ArmAUC, ...]
    n_readers_excluded: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _long_frame(df: pd.DataFrame, columns: dict[str, str], positive: Any) -> pd.DataFrame:
    names = {k: columns.get(k, k) for k in ("reader", "modality", "case", "truth", "rating")}
    d = df[list(names.values())].copy()
    d.columns = list(names.keys())
    d["rating"] = pd.to_numeric(d["rating"], errors="coerce")
    d = d.dropna(subset=["rating", "truth"])
    t = d["truth"] == positive
    if not t.any():
        t = d["truth"].astype(str) == str(positive)
    d["truth"] = t
    for c in ("reader", "modality", "case"):
        d[c] = d[c].astype(str)
    return d.groupby(["modality", "reader", "case"], as_index=False).agg(rating=("rating", "mean"),
                                                                        truth=("truth", "first"))


def _reader_terms(case_pos: np.ndarray, truth: np.ndarray, rating: np.ndarray,
                  k: int) -> tuple[float, np.ndarray] | None:
    """Reader AUC and its leave-one-case-out deviations over all ``k`` cases (0 for cases this reader did not
    read); None with fewer than 2 positive or 2 negative cases read."""
    m, n = int(truth.sum()), int((~truth).sum())
    if m < 2 or n < 2:
        return None
    v10, v01 = _placements(rating[truth], rating[~truth])
    auc = float(v10.mean())
    delta = np.zeros(k)
    delta[case_pos[truth]] = -(v10 - auc) / (m - 1)
    delta[case_pos[~truth]] = -(v01 - auc) / (n - 1)
    return auc, delta


def _mean_offdiag(block: np.ndarray, exclude_diagonal: bool) -> float:
    if exclude_diagonal:
        mask = ~np.eye(block.shape[0], dtype=bool)
        return float(block[mask].mean()) if mask.any() else float("nan")
    return float(block.mean()) if block.size else float("nan")


def _arm_result(arm: str, readers: list[str], auc: np.ndarray, cov: np.ndarray, n_reads: int,
                conf: float) -> ArmAUC:
    r = len(readers)
    mean = float(auc.mean()) if r else float("nan")
    ms = float(auc.var(ddof=1)) if r > 1 else float("nan")
    cov2 = _mean_offdiag(cov, True) if r > 1 else float("nan")
    var = ms / r + max(cov2, 0.0) if r > 1 else float("nan")
    df = var**2 / ((ms / r) ** 2 / (r - 1)) if r > 1 and ms > 0 else float("inf")
    se = float(np.sqrt(var)) if var == var and var >= 0 else float("nan")
    q = stats.t.ppf(0.5 + conf / 2, df) if se == se else float("nan")
    return ArmAUC(arm=arm, auc=mean, se=se, df=float(df), ci=(mean - q * se, mean + q * se), n_readers=r,
                  n_reads=n_reads, ms_reader=ms, cov2=cov2, reader_auc=dict(zip(readers, auc.tolist(), strict=True)))


def _difference_variance(design: str, auc_a: np.ndarray, auc_b: np.ndarray, arm_a: ArmAUC, arm_b: ArmAUC,
                         cross: np.ndarray, conf: float) -> tuple[float, float, float, float, str | None]:
    """(variance, ddf, cov3, case term, note) of the arm difference; see the module docstring for the formulas."""
    ra, rb = auc_a.size, auc_b.size
    if design == "crossed":
        cov3 = _mean_offdiag(cross, True)
        ms_d = float((auc_a - auc_b).var(ddof=1))
        case_term = 2 * max((arm_a.cov2 + arm_b.cov2) / 2 - cov3, 0.0)
        var = ms_d / ra + case_term
        ddf = var**2 / ((ms_d / ra) ** 2 / (ra - 1)) if ms_d > 0 else float("inf")
        return var, ddf, cov3, case_term, None
    cov3 = _mean_offdiag(cross, False)
    cov2a = arm_a.cov2 if ra > 1 else 0.0
    cov2b = arm_b.cov2 if rb > 1 else 0.0
    reader_a, reader_b = arm_a.ms_reader / ra, arm_b.ms_reader / rb
    case_term = cov2a + cov2b - 2 * cov3
    var, note = reader_a + reader_b + case_term, None
    if var <= 0:
        case_term, var = 0.0, reader_a + reader_b
        note = "variance estimate not positive: case-covariance term dropped"
    den = reader_a**2 / (ra - 1) + reader_b**2 / (rb - 1)
    welch = (reader_a + reader_b) ** 2 / den if den > 0 else float("inf")
    return var, _shifted_df(reader_a + reader_b, welch, case_term, conf), cov3, case_term, note


def _shifted_df(reader_part: float, welch_df: float, case_term: float, conf: float) -> float:
    """Effective t df for ``V = X + c``: X, the reader mean squares, a scaled chi-square with Welch's df, and c, the
    case-covariance term, a constant. Moment matching V itself (Hillis' formula) gives far too few df when c < 0
    (the shift changes the shape, not only the spread: the CI over-covered, 98-99% at 95%); here the quantile q with
    E[2 Phi(q sqrt(V / E V)) - 1] = conf is found over the chi-square and returned as the t df with that quantile."""
    if not np.isfinite(welch_df) or reader_part <= 0 or case_term == 0:
        return welch_df
    w = stats.chi2.ppf((np.arange(_GRID) + 0.5) / _GRID, welch_df) / welch_df
    x = reader_part * w
    v = np.where(x + case_term > 0, x + case_term, x) / (reader_part + case_term)  # as the estimate falls back
    root_v = np.sqrt(v)

    def gap(q: float) -> float:
        return float(np.mean(2 * stats.norm.cdf(q * root_v) - 1) - conf)

    z = stats.norm.ppf(0.5 + conf / 2)
    if gap(z) >= 0:
        return float("inf")
    hi = z * 2
    while gap(hi) < 0 and hi < 1e4:
        hi *= 2
    if gap(hi) < 0:
        return 0.01
    q = optimize.brentq(gap, z, hi)
    return float(optimize.brentq(lambda d: stats.t.ppf(0.5 + conf / 2, d) - q, 0.01, 1e9))


def _design(readers_a: list[str], readers_b: list[str]) -> str:
    a, b = set(readers_a), set(readers_b)
    if a == b:
        return "crossed"
    return "nested" if not a & b else "partial"


def split_plot_mrmc(
    df: pd.DataFrame,
    modalities: list[Any],
    conf_level: float = 0.95,
    positive: Any = 1,
    **columns: str,
) -> SplitPlotMRMCResult | None:
    """OR analysis of ``modalities[0] - modalities[1]`` for any reading design; ``None`` when an arm has < 2
    readers with >= 2 positive and >= 2 negative cases read (no reader variance can be estimated)."""
    d = _long_frame(df, columns, positive)
    arms = [str(m) for m in modalities[:2]]
    d = d[d["modality"].isin(arms)].reset_index(drop=True)
    case_index = pd.Index(sorted(d["case"].unique()))
    truth_by_case = d.groupby("case")["truth"].first().reindex(case_index)
    k = len(case_index)
    per_arm: list[tuple[list[str], np.ndarray, np.ndarray, int]] = []
    excluded = 0
    case_pos = case_index.get_indexer(d["case"])
    truth, rating = d["truth"].to_numpy(bool), d["rating"].to_numpy(float)
    groups = d.groupby(["modality", "reader"]).indices
    for arm in arms:
        readers, aucs, deltas, n_reads = [], [], [], 0
        for (_, reader), idx in sorted((key, v) for key, v in groups.items() if key[0] == arm):
            terms = _reader_terms(case_pos[idx], truth[idx], rating[idx], k)
            if terms is None:
                excluded += 1
                continue
            readers.append(str(reader))
            aucs.append(terms[0])
            deltas.append(terms[1])
            n_reads += len(idx)
        if len(readers) < 2:
            return None
        per_arm.append((readers, np.array(aucs), np.vstack(deltas), n_reads))
    (ra_ids, auc_a, dl_a, na), (rb_ids, auc_b, dl_b, nb) = per_arm
    design = _design(ra_ids, rb_ids)
    if design == "crossed":  # align the readers of arm B with those of arm A
        order = [rb_ids.index(r) for r in ra_ids]
        rb_ids, auc_b, dl_b = ra_ids, auc_b[order], dl_b[order]
    scale = (k - 1) / k  # jackknife: (K-1)/K times the sum of cross-products of deviations
    arm_a = _arm_result(arms[0], ra_ids, auc_a, scale * dl_a @ dl_a.T, na, conf_level)
    arm_b = _arm_result(arms[1], rb_ids, auc_b, scale * dl_b @ dl_b.T, nb, conf_level)
    var, ddf, cov3, case_term, note = _difference_variance(design, auc_a, auc_b, arm_a, arm_b,
                                                           scale * dl_a @ dl_b.T, conf_level)
    est = arm_a.auc - arm_b.auc
    se = float(np.sqrt(var))
    q = stats.t.ppf(0.5 + conf_level / 2, ddf)
    t = est / se if se > 0 else float("nan")
    if excluded:
        note = "; ".join(filter(None, [note, f"{excluded} reader-arm(s) with < 2 positive or negative cases left out"]))
    n_pos = int(truth_by_case.sum())
    return SplitPlotMRMCResult(
        method=f"{METHOD}; readers {design}", design=design, estimate=est, se=se, df=float(ddf),
        ci=(est - q * se, est + q * se), statistic=t, p=float(2 * stats.t.sf(abs(t), ddf)), conf_level=conf_level,
        n=k, n_positive=n_pos, n_negative=k - n_pos, cov3=cov3, case_term=case_term, arms=(arm_a, arm_b),
        n_readers_excluded=excluded, note=note)


__all__ = ["ArmAUC", "SplitPlotMRMCResult", "split_plot_mrmc"]


def simulate_split_plot_reads(
    rng: np.random.Generator,
    *,
    n_centers: int = 2,
    cases_per_center: int = 60,
    readers_per_arm_per_center: int = 3,
    prevalence: float = 0.4,
    separation: float = 1.5,
    arm_effect: float = 0.0,
    sd_reader: float = 0.4,
    sd_case: float = 0.8,
    sd_arm_case: float = 0.3,
    missing: float = 0.0,
    arms: tuple[str, str] = ("A", "B"),
) -> pd.DataFrame:
    """Reads of a paired-by-case trial (Roe-Metz-like ratings): readers nested in arms and centers, each case read
    once per arm by one reader of its center, ``missing`` the share of reads then dropped at random.

    Rating = truth * (separation + reader skill [+ arm_effect in arm 0]) + case effect (shared by the arms) +
    arm-by-case effect + noise; with ``arm_effect=0`` the two arms have the same expected AUC (the null).
    """
    rows = []
    n_r = readers_per_arm_per_center
    for c in range(n_centers):
        truth = (rng.random(cases_per_center) < prevalence).astype(int)
        truth[:2], truth[2:4] = 1, 0  # every center has positives and negatives
        case_eff = rng.normal(0, sd_case, cases_per_center)
        for a, arm in enumerate(arms):
            skill = rng.normal(0, sd_reader, n_r)
            reader = rng.permutation(np.arange(cases_per_center) % n_r)
            shift = separation + skill[reader] + (arm_effect if a == 0 else 0.0)
            y = (truth * shift + case_eff + rng.normal(0, sd_arm_case, cases_per_center)
                 + rng.normal(0, 1, cases_per_center))
            rows.append(pd.DataFrame({"reader": [f"c{c}-{arm}-r{j}" for j in reader], "modality": arm,
                                      "case": [f"c{c}-k{i}" for i in range(cases_per_center)], "truth": truth,
                                      "rating": y}))
    out = pd.concat(rows, ignore_index=True)
    if missing > 0:
        out = out[rng.random(len(out)) >= missing]
    return out.reset_index(drop=True)


__all__ += ["simulate_split_plot_reads"]
