"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski-Rockette (OR) with Hillis degrees of freedom, and
Dorfman-Berbaum-Metz (DBM) on jackknife pseudovalues.

Hand-written: no scipy/statsmodels implementation exists. Follows the University of Iowa OR-DBM MRMC program
(Hillis 2007; Hillis, Obuchowski, Schartz & Berbaum 2005): empirical (trapezoidal) AUC, jackknife covariances,
three analyses (random readers & random cases, fixed readers & random cases, random readers & fixed cases).

Input: a long table with one row per (reader, modality, case): columns ``reader``, ``modality``, ``case``,
``truth`` (1 = diseased/positive, 0 = not) and ``rating`` (higher = more confident positive). The design must be
fully crossed; cases not rated by every reader in every modality are dropped (counted in the result).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._result import UNSET, StatResult, empty_result, jsonable
from .roc import _placements


@dataclass
class MRMCResult(StatResult):
    """An MRMC analysis of empirical AUCs. Headline (estimate, ci, statistic = F, df = ddf, p): the
    random-readers random-cases test of the first difference. The design (modalities, readers, cases, positives,
    negatives, cases dropped), AUC per modality, the ANOVA mean squares, variance components and the three
    analyses: ``rrrc`` (random readers and cases), ``frrc`` (fixed readers), ``rrfc`` (fixed cases), each with its
    F test, differences and single-modality results."""

    n_modalities: int = UNSET
    n_readers: int = UNSET
    n_cases: int = UNSET
    n_positive: int = UNSET
    n_negative: int = UNSET
    n_cases_dropped: int = UNSET
    modalities: list[Any] = UNSET
    readers: list[Any] = UNSET
    auc_by_modality: dict[str, float] = UNSET
    anova: dict[str, float] = UNSET
    variance_components: dict[str, float] = UNSET
    rrrc: dict[str, Any] = UNSET
    frrc: dict[str, Any] = UNSET
    rrfc: dict[str, Any] = UNSET


@dataclass
class ORResult(MRMCResult):
    """Obuchowski-Rockette: adds the AUC per modality and reader (``auc_by_reader``); ``anova`` is the modality x
    reader ANOVA of the AUCs and ``variance_components`` the OR error variance and covariances."""

    auc_by_reader: dict[str, dict[str, float]] = UNSET


@dataclass
class DBMResult(MRMCResult):
    """Dorfman-Berbaum-Metz: ``anova`` is the modality x reader x case pseudovalue ANOVA, ``variance_components``
    the DBM components; adds the per-modality ANOVAs (``single_modality_anova``)."""

    single_modality_anova: dict[str, dict[str, float]] = UNSET


class MRMCData:
    """Ratings as an array ``y[t, r, k]`` (modality, reader, case) with a boolean ``truth[k]``."""

    def __init__(
        self,
        df: pd.DataFrame,
        reader: str = "reader",
        modality: str = "modality",
        case: str = "case",
        truth: str = "truth",
        rating: str = "rating",
        modalities: list[Any] | None = None,
        positive: Any = 1,
    ) -> None:
        d = df[[reader, modality, case, truth, rating]].copy()
        d.columns = ["reader", "modality", "case", "truth", "rating"]
        d["rating"] = pd.to_numeric(d["rating"], errors="coerce")
        d = d.dropna(subset=["rating", "truth"])
        d = d.groupby(["modality", "reader", "case"], as_index=False).agg(rating=("rating", "mean"),
                                                                            truth=("truth", "first"))
        self.modalities = list(modalities) if modalities is not None else sorted(d["modality"].unique().tolist())
        d = d[d["modality"].isin(self.modalities)]
        self.readers = sorted(d["reader"].unique().tolist())
        cells = len(self.modalities) * len(self.readers)
        per_case = d.groupby("case")["rating"].size()
        complete = per_case[per_case == cells].index
        self.n_cases_dropped = int(per_case.size - complete.size)
        d = d[d["case"].isin(complete)]
        self.cases = sorted(complete.tolist())
        truth_by_case = d.groupby("case")["truth"].first().reindex(self.cases)
        if positive is None:
            self.truth = pd.to_numeric(truth_by_case, errors="coerce").fillna(0).to_numpy() > 0
        else:
            t = truth_by_case == positive
            if not t.any():
                t = truth_by_case.astype(str) == str(positive)
            self.truth = t.to_numpy()
        wide = d.pivot_table(index=["modality", "reader"], columns="case", values="rating")
        idx = pd.MultiIndex.from_product([self.modalities, self.readers])
        wide = wide.reindex(index=idx, columns=self.cases)
        self.y = wide.to_numpy().reshape(len(self.modalities), len(self.readers), len(self.cases))

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.y.shape  # type: ignore[return-value]


def _auc_and_jackknife(data: MRMCData) -> tuple[np.ndarray, np.ndarray]:
    """AUC[t, r] and leave-one-case-out AUC[t, r, k] from placement values (exact, no refitting)."""
    t_, r_, k_ = data.shape
    pos, neg = data.truth, ~data.truth
    m, n = int(pos.sum()), int(neg.sum())
    auc = np.empty((t_, r_))
    jk = np.empty((t_, r_, k_))
    for i in range(t_):
        for j in range(r_):
            v10, v01 = _placements(data.y[i, j, pos], data.y[i, j, neg])
            total = v10.sum() * n  # sum of psi over all (positive, negative) pairs
            auc[i, j] = total / (m * n)
            jk[i, j, pos] = (total - v10 * n) / ((m - 1) * n)
            jk[i, j, neg] = (total - v01 * m) / (m * (n - 1))
    return auc, jk


def _two_way_ms(theta: np.ndarray) -> dict[str, float]:
    """Mean squares of the modality x reader table of AUCs (no replication)."""
    t_, r_ = theta.shape
    g = theta.mean()
    mt, mr = theta.mean(axis=1), theta.mean(axis=0)
    ss_t = r_ * ((mt - g) ** 2).sum()
    ss_r = t_ * ((mr - g) ** 2).sum()
    ss_tr = ((theta - mt[:, None] - mr[None, :] + g) ** 2).sum()
    df_t, df_r, df_tr = t_ - 1, r_ - 1, (t_ - 1) * (r_ - 1)
    nan = float("nan")
    return {"ss_t": ss_t, "ss_r": ss_r, "ss_tr": ss_tr, "df_t": df_t, "df_r": df_r, "df_tr": df_tr,
            "ms_t": ss_t / df_t if df_t else nan, "ms_r": ss_r / df_r if df_r else nan,
            "ms_tr": ss_tr / df_tr if df_tr else nan}


def _or_covariances(cov: np.ndarray, t_: int, r_: int) -> dict[str, float]:
    """Average the jackknife covariance matrix (indexed t*r_ + r) into Var, Cov1, Cov2, Cov3."""
    ti = np.repeat(np.arange(t_), r_)
    ri = np.tile(np.arange(r_), t_)
    same_t = ti[:, None] == ti[None, :]
    same_r = ri[:, None] == ri[None, :]
    diag = same_t & same_r

    def avg(mask: np.ndarray) -> float:
        return float(cov[mask].mean()) if mask.any() else float("nan")

    return {"var_error": avg(diag), "cov1": avg(~same_t & same_r), "cov2": avg(same_t & ~same_r),
            "cov3": avg(~same_t & ~same_r)}


def _tci(est: float, se: float, df: float, conf: float) -> tuple[float, float]:
    q = stats.t.ppf(0.5 + conf / 2, df)
    return (est - q * se, est + q * se)


def _zci(est: float, se: float, conf: float) -> tuple[float, float]:
    q = stats.norm.ppf(0.5 + conf / 2)
    return (est - q * se, est + q * se)


def _pairs(mods: list[Any]) -> list[tuple[int, int]]:
    return list(combinations(range(len(mods)), 2))


def obuchowski_rockette(
    df: pd.DataFrame,
    modalities: list[Any] | None = None,
    conf_level: float = 0.95,
    positive: Any = 1,
    **columns: str,
) -> ORResult:
    """Obuchowski-Rockette MRMC analysis of empirical AUCs, as the Iowa OR-DBM MRMC 2.51 program.

    ``modalities`` fixes the order; differences are ``modalities[i] - modalities[j]`` for i < j (default sorted
    order). ``columns`` may rename the input columns (reader=, modality=, case=, truth=, rating=).
    Headline (estimate, ci, statistic=F, df=ddf_H, p) is the random-readers random-cases analysis of the first
    difference; the :class:`ORResult` holds ``auc_by_modality``, ``auc_by_reader``, ``anova``,
    ``variance_components``, ``rrrc`` (random readers & cases), ``frrc`` (fixed readers), ``rrfc`` (fixed cases).
    """
    method = "Obuchowski-Rockette MRMC (empirical AUC, jackknife covariance, Hillis ddf)"
    if df is None or len(df) == 0:
        return empty_result(method, "no ratings", ORResult)
    data = MRMCData(df, modalities=modalities, positive=positive, **columns)
    t_, r_, k_ = data.shape
    m = int(data.truth.sum())
    n = k_ - m
    base = {"n_modalities": t_, "n_readers": r_, "n_cases": k_, "n_positive": m, "n_negative": n,
            "n_cases_dropped": data.n_cases_dropped, "modalities": data.modalities, "readers": data.readers}
    if m < 2 or n < 2 or t_ < 1 or r_ < 1:
        return empty_result(method, "need >= 2 positive and >= 2 negative fully-rated cases", ORResult, n=k_, **base)
    auc, jk = _auc_and_jackknife(data)
    flat = jk.reshape(t_ * r_, k_)
    cov = np.cov(flat, ddof=1) * (k_ - 1) ** 2 / k_  # jackknife covariance: (K-1)/K * sum of cross-products
    cov = np.atleast_2d(cov)
    vc = _or_covariances(cov, t_, r_)
    ms = _two_way_ms(auc)
    # Single-modality quantities (part (c) analyses)
    single: list[dict[str, float]] = []
    for i in range(t_):
        sub = cov[i * r_:(i + 1) * r_, i * r_:(i + 1) * r_]
        off = ~np.eye(r_, dtype=bool)
        single.append({
            "ms_r": float(auc[i].var(ddof=1)) if r_ > 1 else float("nan"),
            "var_error": float(np.diag(sub).mean()),
            "cov2": float(sub[off].mean()) if r_ > 1 else float("nan"),
        })
    # OR variance components (Hillis 2005): Var(R) takes out Cov1 - Cov3 (the treatment-by-reader part of MS(R)).
    var_r = (ms["ms_r"] - ms["ms_tr"]) / t_ - vc["cov1"] + vc["cov3"] if t_ > 1 else (
        single[0]["ms_r"] - single[0]["var_error"] + single[0]["cov2"])
    var_tr = ms["ms_tr"] - vc["var_error"] + vc["cov1"] + vc["cov2"] - vc["cov3"] if t_ > 1 else float("nan")
    var_comps = {"var_r": var_r, "var_tr": var_tr, **vc}
    var_err = vc["var_error"]
    for key in ("cov1", "cov2", "cov3"):
        var_comps[f"corr{key[-1]}"] = vc[key] / var_err if var_err > 0 else float("nan")

    mods = data.modalities
    auc_mod = auc.mean(axis=1)
    diffs = [(a, b, float(auc_mod[a] - auc_mod[b])) for a, b in _pairs(mods)]
    c23 = max(vc["cov2"] - vc["cov3"], 0.0) if t_ > 1 and r_ > 1 else 0.0

    # Analysis 1: random readers, random cases
    rrrc: dict[str, Any] = {}
    if t_ > 1 and r_ > 1:
        den = ms["ms_tr"] + r_ * c23
        ddf = den**2 / (ms["ms_tr"] ** 2 / ((t_ - 1) * (r_ - 1))) if ms["ms_tr"] > 0 else float("inf")
        f = ms["ms_t"] / den if den > 0 else float("nan")
        se = np.sqrt(2.0 / r_ * den)
        rrrc = {"f": f, "df1": t_ - 1, "ddf": ddf, "p": float(stats.f.sf(f, t_ - 1, ddf)), "error_term": den,
                "differences": [_diff_row(mods, a, b, d, se, "t", ddf, conf_level) for a, b, d in diffs]}
    rrrc["single"] = []
    for i in range(t_):
        s = single[i]
        if r_ > 1:
            term = s["ms_r"] + r_ * max(s["cov2"], 0.0)
            dfi = term**2 / (s["ms_r"] ** 2 / (r_ - 1)) if s["ms_r"] > 0 else float("inf")
            se_i = np.sqrt(term / r_)
            rrrc["single"].append({"modality": mods[i], "auc": auc_mod[i], "se": se_i, "df": dfi, "cov2": s["cov2"],
                                   "ms_r": s["ms_r"], "ci": _tci(auc_mod[i], se_i, dfi, conf_level)})
    _copy_first(rrrc)

    # Analysis 2: fixed readers, random cases
    frrc: dict[str, Any] = {}
    if t_ > 1:
        den = var_err - vc["cov1"] + (r_ - 1) * c23
        x2 = (t_ - 1) * ms["ms_t"] / den if den > 0 else float("nan")
        se = np.sqrt(2.0 / r_ * den)
        frrc = {"chisq": x2, "df": t_ - 1, "p": float(stats.chi2.sf(x2, t_ - 1)), "error_term": den,
                "differences": [_diff_row(mods, a, b, d, se, "z", None, conf_level) for a, b, d in diffs]}
        per_reader = []
        for j, rd in enumerate(data.readers):
            for a, b in _pairs(mods):
                ia, ib = a * r_ + j, b * r_ + j
                v = cov[ia, ia] + cov[ib, ib] - 2 * cov[ia, ib]
                row = _diff_row(mods, a, b, float(auc[a, j] - auc[b, j]), np.sqrt(max(v, 0.0)), "z", None, conf_level)
                row.update(reader=rd, var_error=(cov[ia, ia] + cov[ib, ib]) / 2, cov1=cov[ia, ib])
                per_reader.append(row)
        frrc["per_reader"] = per_reader
    frrc["single"] = []
    for i in range(t_):
        s = single[i]
        se_i = np.sqrt((s["var_error"] + (r_ - 1) * max(s["cov2"] if r_ > 1 else 0.0, 0.0)) / r_)
        frrc["single"].append({"modality": mods[i], "auc": auc_mod[i], "se": se_i, "var_error": s["var_error"],
                               "cov2": s["cov2"], "ci": _zci(auc_mod[i], se_i, conf_level)})
    _copy_first(frrc)

    # Analysis 3: random readers, fixed cases (repeated-measures ANOVA of the reader AUCs)
    rrfc: dict[str, Any] = {}
    if t_ > 1 and r_ > 1:
        f = ms["ms_t"] / ms["ms_tr"] if ms["ms_tr"] > 0 else float("nan")
        dfd = (t_ - 1) * (r_ - 1)
        se = np.sqrt(2.0 / r_ * ms["ms_tr"])
        rrfc = {"f": f, "df1": t_ - 1, "ddf": dfd, "p": float(stats.f.sf(f, t_ - 1, dfd)), "error_term": ms["ms_tr"],
                "differences": [_diff_row(mods, a, b, d, se, "t", dfd, conf_level) for a, b, d in diffs]}
    rrfc["single"] = []
    if r_ > 1:
        for i in range(t_):
            se_i = np.sqrt(single[i]["ms_r"] / r_)
            rrfc["single"].append({"modality": mods[i], "auc": auc_mod[i], "se": se_i, "df": r_ - 1,
                                   "ms_r": single[i]["ms_r"], "ci": _tci(auc_mod[i], se_i, r_ - 1, conf_level)})
    _copy_first(rrfc)

    first = rrrc.get("differences", [{}])[0] if rrrc.get("differences") else {}
    details = {
        **base,
        "auc_by_modality": {str(mods[i]): auc_mod[i] for i in range(t_)},
        "auc_by_reader": {str(mods[i]): {str(rd): auc[i, j] for j, rd in enumerate(data.readers)} for i in range(t_)},
        "anova": ms,
        "variance_components": var_comps,
        "rrrc": rrrc, "frrc": frrc, "rrfc": rrfc,
    }
    return ORResult(method=method, estimate=first.get("difference"), ci=first.get("ci"), statistic=rrrc.get("f"),
                    df=rrrc.get("ddf"), p=rrrc.get("p"), n=k_, conf_level=conf_level, **jsonable(details))


def _diff_row(mods: list[Any], a: int, b: int, d: float, se: float, dist: str, df: float | None,
              conf: float) -> dict[str, Any]:
    stat = d / se if se > 0 else float("nan")
    if dist == "t":
        p = 2 * stats.t.sf(abs(stat), df)
        ci = _tci(d, se, df, conf)  # type: ignore[arg-type]
    else:
        p = 2 * stats.norm.sf(abs(stat))
        ci = _zci(d, se, conf)
    return {"comparison": f"{mods[a]} - {mods[b]}", "difference": d, "se": se, "df": df,
            ("t" if dist == "t" else "z"): stat, "p": float(p), "ci": ci}


def _copy_first(block: dict[str, Any]) -> None:
    """Lift the first difference's CI/SE to the block's top level for convenience (two-modality studies)."""
    if block.get("differences"):
        first = block["differences"][0]
        block.setdefault("difference", first["difference"])
        block.setdefault("se", first["se"])
        block.setdefault("ci", first["ci"])


def _three_way_ms(y: np.ndarray) -> dict[str, float]:
    """Mean squares of the modality x reader x case ANOVA without replication."""
    t_, r_, k_ = y.shape
    g = y.mean()
    mt = y.mean(axis=(1, 2))
    mr = y.mean(axis=(0, 2))
    mc = y.mean(axis=(0, 1))
    mtr = y.mean(axis=2)
    mtc = y.mean(axis=1)
    mrc = y.mean(axis=0)
    ss = {
        "t": r_ * k_ * ((mt - g) ** 2).sum(),
        "r": t_ * k_ * ((mr - g) ** 2).sum(),
        "c": t_ * r_ * ((mc - g) ** 2).sum(),
        "tr": k_ * ((mtr - mt[:, None] - mr[None, :] + g) ** 2).sum(),
        "tc": r_ * ((mtc - mt[:, None] - mc[None, :] + g) ** 2).sum(),
        "rc": t_ * ((mrc - mr[:, None] - mc[None, :] + g) ** 2).sum(),
    }
    resid = (y - mtr[:, :, None] - mtc[:, None, :] - mrc[None, :, :] + mt[:, None, None] + mr[None, :, None]
             + mc[None, None, :] - g)
    ss["trc"] = (resid**2).sum()
    dfs = {"t": t_ - 1, "r": r_ - 1, "c": k_ - 1, "tr": (t_ - 1) * (r_ - 1), "tc": (t_ - 1) * (k_ - 1),
           "rc": (r_ - 1) * (k_ - 1), "trc": (t_ - 1) * (r_ - 1) * (k_ - 1)}
    out: dict[str, float] = {}
    for key in ss:
        out[f"ss_{key}"] = float(ss[key])
        out[f"df_{key}"] = dfs[key]
        out[f"ms_{key}"] = float(ss[key] / dfs[key]) if dfs[key] else float("nan")
    return out


def dbm(
    df: pd.DataFrame,
    modalities: list[Any] | None = None,
    conf_level: float = 0.95,
    positive: Any = 1,
    **columns: str,
) -> DBMResult:
    """Dorfman-Berbaum-Metz analysis of jackknife pseudovalues of the empirical AUC (Hillis 2008 error terms).

    Gives the same RRRC F, ddf and p as :func:`obuchowski_rockette`. ``anova`` (:class:`DBMResult`) is the
    modality x reader x case pseudovalue ANOVA (as JAFROC prints it), ``variance_components`` the DBM components, plus
    ``rrrc``/``frrc``/``rrfc`` blocks (the DBM fixed-reader test is F(t-1, (t-1)(K-1)) = MS(T)/MS(TC)).
    """
    method = "Dorfman-Berbaum-Metz MRMC (jackknife pseudovalues of empirical AUC)"
    if df is None or len(df) == 0:
        return empty_result(method, "no ratings", DBMResult)
    data = MRMCData(df, modalities=modalities, positive=positive, **columns)
    t_, r_, k_ = data.shape
    m = int(data.truth.sum())
    base = {"n_modalities": t_, "n_readers": r_, "n_cases": k_, "n_positive": m, "n_negative": k_ - m,
            "n_cases_dropped": data.n_cases_dropped, "modalities": data.modalities, "readers": data.readers}
    if m < 2 or k_ - m < 2 or t_ < 2 or r_ < 2:
        return empty_result(method, "need >= 2 modalities, >= 2 readers, >= 2 positive and negative cases", DBMResult,
                            n=k_, **base)
    auc, jk = _auc_and_jackknife(data)
    pv = k_ * auc[:, :, None] - (k_ - 1) * jk
    ms = _three_way_ms(pv)
    mods = data.modalities
    auc_mod = auc.mean(axis=1)
    diffs = [(a, b, float(auc_mod[a] - auc_mod[b])) for a, b in _pairs(mods)]
    vc = {
        "var_r": (ms["ms_r"] - ms["ms_tr"] - ms["ms_rc"] + ms["ms_trc"]) / (t_ * k_),
        "var_c": (ms["ms_c"] - ms["ms_tc"] - ms["ms_rc"] + ms["ms_trc"]) / (t_ * r_),
        "var_tr": (ms["ms_tr"] - ms["ms_trc"]) / k_,
        "var_tc": (ms["ms_tc"] - ms["ms_trc"]) / r_,
        "var_rc": (ms["ms_rc"] - ms["ms_trc"]) / t_,
        "var_trc_error": ms["ms_trc"],
    }
    single_ms = [_two_way_ms(pv[i]) for i in range(t_)]  # reader x case ANOVA per modality (t->r, r->c here)
    single = [{"ms_r": s["ms_t"], "ms_c": s["ms_r"], "ms_rc": s["ms_tr"]} for s in single_ms]

    den = ms["ms_tr"] + max(ms["ms_tc"] - ms["ms_trc"], 0.0)
    ddf = den**2 / (ms["ms_tr"] ** 2 / ((t_ - 1) * (r_ - 1)))
    f = ms["ms_t"] / den
    se = np.sqrt(2.0 / (r_ * k_) * den)
    rrrc: dict[str, Any] = {"f": f, "df1": t_ - 1, "ddf": ddf, "p": float(stats.f.sf(f, t_ - 1, ddf)),
                            "error_term": den,
                            "differences": [_diff_row(mods, a, b, d, se, "t", ddf, conf_level) for a, b, d in diffs],
                            "single": []}
    for i in range(t_):
        s = single[i]
        term = s["ms_r"] + max(s["ms_c"] - s["ms_rc"], 0.0)
        dfi = term**2 / (s["ms_r"] ** 2 / (r_ - 1))
        se_i = np.sqrt(term / (r_ * k_))
        rrrc["single"].append({"modality": mods[i], "auc": auc_mod[i], "se": se_i, "df": dfi,
                               "ci": _tci(auc_mod[i], se_i, dfi, conf_level)})
    _copy_first(rrrc)
    dfd = (t_ - 1) * (k_ - 1)
    f2 = ms["ms_t"] / ms["ms_tc"]
    se2 = np.sqrt(2.0 / (r_ * k_) * ms["ms_tc"])
    frrc: dict[str, Any] = {"f": f2, "df1": t_ - 1, "ddf": dfd, "p": float(stats.f.sf(f2, t_ - 1, dfd)),
                            "error_term": ms["ms_tc"],
                            "differences": [_diff_row(mods, a, b, d, se2, "t", dfd, conf_level) for a, b, d in diffs],
                            "single": [{"modality": mods[i], "auc": auc_mod[i],
                                        "se": np.sqrt(single[i]["ms_c"] / (r_ * k_)), "df": k_ - 1,
                                        "ci": _tci(auc_mod[i], np.sqrt(single[i]["ms_c"] / (r_ * k_)), k_ - 1,
                                                   conf_level)} for i in range(t_)]}
    _copy_first(frrc)
    dfd3 = (t_ - 1) * (r_ - 1)
    f3 = ms["ms_t"] / ms["ms_tr"]
    se3 = np.sqrt(2.0 / (r_ * k_) * ms["ms_tr"])
    rrfc: dict[str, Any] = {"f": f3, "df1": t_ - 1, "ddf": dfd3, "p": float(stats.f.sf(f3, t_ - 1, dfd3)),
                            "error_term": ms["ms_tr"],
                            "differences": [_diff_row(mods, a, b, d, se3, "t", dfd3, conf_level) for a, b, d in diffs],
                            "single": [{"modality": mods[i], "auc": auc_mod[i],
                                        "se": np.sqrt(single[i]["ms_r"] / (r_ * k_)), "df": r_ - 1,
                                        "ci": _tci(auc_mod[i], np.sqrt(single[i]["ms_r"] / (r_ * k_)), r_ - 1,
                                                   conf_level)} for i in range(t_)]}
    _copy_first(rrfc)
    details = {**base, "auc_by_modality": {str(mods[i]): auc_mod[i] for i in range(t_)}, "anova": ms,
               "single_modality_anova": {str(mods[i]): single[i] for i in range(t_)},
               "variance_components": vc, "rrrc": rrrc, "frrc": frrc, "rrfc": rrfc}
    return DBMResult(method=method, estimate=rrrc["difference"], ci=rrrc["ci"], statistic=f, df=ddf, p=rrrc["p"],
                     n=k_, conf_level=conf_level, **jsonable(details))


def mrmc_analysis(df: pd.DataFrame, modalities: list[Any] | None = None, conf_level: float = 0.95,
                  positive: Any = 1, **columns: str) -> dict[str, Any]:
    """OR and DBM together as one JSON-able dict (what ``python -m analysis mrmc`` prints)."""
    orr = obuchowski_rockette(df, modalities=modalities, conf_level=conf_level, positive=positive, **columns)
    d = dbm(df, modalities=modalities, conf_level=conf_level, positive=positive, **columns)
    o = orr.to_dict()
    keys = ("n_modalities", "n_readers", "n_cases", "n_positive", "n_negative", "n_cases_dropped", "modalities",
            "readers", "auc_by_modality", "auc_by_reader", "anova", "variance_components", "rrrc", "frrc", "rrfc")
    out = {"method": orr.method, **{k: o.get(k) for k in keys}, "note": o.get("note")}
    dd = d.to_dict()
    out["dbm"] = {k: dd.get(k) for k in ("method", "anova", "variance_components", "rrrc", "frrc", "rrfc", "note")}
    return out
