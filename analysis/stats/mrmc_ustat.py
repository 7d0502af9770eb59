"""Reader-averaged AUC and the arm difference with the U-statistic MRMC variance of Gallas (the method of iMRMC).

Gallas 2006 (Acad Radiol 13:353, "One-shot estimate of MRMC variance: AUC"), Gallas, Bandos, Samuelson and Wagner
2009 (Commun Stat A 38:2586) and, for arbitrary study designs (split-plot, readers nested in arms, missing reads),
Gallas and Brown 2008 (Neural Networks 21:387) and Obuchowski, Gallas and Hillis 2012 (Acad Radiol 19:1508).
Missing reads are handled by the design matrix: a read that is absent has weight 0 and no case is dropped.

Estimator (as iMRMC): in arm X, reader r, negative case i and positive case j, the kernel is
``s = 1[y_rj > x_ri] + 0.5 * 1[y_rj == x_ri]`` and the design weight ``d = 1`` when reader r read both cases in X.
The reader-averaged AUC is ``sum d s / sum d``: each reader's Mann-Whitney AUC on the cases that reader read,
weighted by that reader's number of (negative, positive) pairs (equal weights when the design is fully crossed).

Variance: for arms X and Y (X = Y for a variance, X != Y for the covariance) the products of two kernels fall into
eight patterns by what they share (same reader? same negative? same positive?); M1..M8 are the mean products in each
pattern, numbered as iMRMC (M1 all the same, M2 same reader and positive, M3 same reader and negative, M4 same
reader only, M5 other reader with the same two cases, M6 other reader and same positive, M7 other reader and same
negative, M8 nothing shared). Every M_k is estimated without bias by its pattern's mean over the pairs the
design has (sums with coincidences removed by inclusion-exclusion), and ``Cov(AUC_X, AUC_Y) = sum_k c_k M_k`` with
``c_k`` the share of weight in pattern k (``c_8`` minus 1). The estimate is unbiased for any fixed design
(checked exactly by enumeration in tests/analysis/test_mrmc_ustat.py); it can be negative in small studies. Then
the MLE (V-statistic moments; when fully crossed it is the ideal bootstrap variance, >= 0) is used, and if that is
not positive either (possible in incomplete designs) the reader mean squares alone; ``variance_kind`` and ``note``
say which.

Degrees of freedom: readers crossed (the same readers in both arms), Hillis' ddf ``(R - 1) V^2 / (s_d^2 / R)^2``
with ``s_d^2`` the variance of the readers' AUC differences (iMRMC's ``dfHillis``); readers nested or partly
overlapping, the reader mean squares ``s_A^2/R_A + s_B^2/R_B`` get Welch's df and the rest of V is treated as a
constant shift, as :func:`analysis.stats.mrmc_split._shifted_df` (Hillis-type ddf over-covered there). iMRMC
rounds df down to an integer for its t quantiles; we do not.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ._result import jsonable
from .mrmc_split import _design, _long_frame, _shifted_df
from .roc import _placements

METHOD = "U-statistic MRMC variance (Gallas 2006 / iMRMC; empirical AUC, design-matrix weights)"
# Inclusion-exclusion from sums over pairs sharing at least the pattern's indices to exactly the pattern
# (rows M1..M8 from the sums b1..b8 of the same ordering); iMRMC's bias2unbias.
_EXACT = np.array([
    [1, 0, 0, 0, 0, 0, 0, 0],
    [-1, 1, 0, 0, 0, 0, 0, 0],
    [-1, 0, 1, 0, 0, 0, 0, 0],
    [1, -1, -1, 1, 0, 0, 0, 0],
    [-1, 0, 0, 0, 1, 0, 0, 0],
    [1, -1, 0, 0, -1, 1, 0, 0],
    [1, 0, -1, 0, -1, 0, 1, 0],
    [-1, 1, 1, -1, 1, -1, -1, 1],
], dtype=float)


@dataclass(frozen=True)
class _ReaderReads:
    """One reader's reads in one arm: global indices of the negative / positive cases read and their ratings."""

    neg: np.ndarray
    x: np.ndarray
    pos: np.ndarray
    y: np.ndarray
    row: np.ndarray  # per negative read: sum over this reader's positives of the kernel
    col: np.ndarray  # per positive read: sum over this reader's negatives of the kernel
    total: float  # sum of the kernel = AUC * n_neg * n_pos
    square_total: float = 0.0  # sum of the squared kernel (the reader's own block in the moment sums)

    @property
    def pairs(self) -> int:
        return self.neg.size * self.pos.size


@dataclass(frozen=True)
class Moments:
    """U-statistic moments M1..M8 (``moments``), their MLE (V-statistic) versions and the design coefficients of
    one arm pair; ``variance = sum(coefficients * moments)`` (a covariance when the arms differ)."""

    pair: str
    moments: tuple[float, ...]
    moments_mle: tuple[float, ...]
    coefficients: tuple[float, ...]
    variance: float
    variance_mle: float


@dataclass(frozen=True)
class ArmUStat:
    """One arm: reader-averaged AUC (pair-weighted, as iMRMC), its U-statistic variance, Hillis df and CI;
    ``reader_auc`` / ``reader_var`` are each reader's AUC and single-reader U-statistic variance."""

    arm: str
    auc: float
    var: float
    se: float
    df: float
    ci: tuple[float, float]
    n_readers: int
    n_reads: int
    reader_auc: dict[str, float] = field(default_factory=dict)
    reader_var: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class UStatMRMCResult:
    """AUC difference ``arms[0] - arms[1]`` with the U-statistic random-readers random-cases variance.

    ``design``: ``crossed`` / ``nested`` / ``partial`` (as :mod:`analysis.stats.mrmc_split`). ``var`` is the
    variance used (U-statistic, or MLE when that was not positive: ``variance_kind``); ``p_normal`` and ``ci_normal``
    are iMRMC's normal-approximation columns; ``moments`` holds AA, BB and AB.
    """

    method: str
    design: str
    estimate: float
    var: float
    se: float
    df: float
    ci: tuple[float, float]
    statistic: float
    p: float
    p_normal: float
    ci_normal: tuple[float, float]
    conf_level: float
    n: int
    n_positive: int
    n_negative: int
    variance_kind: str
    arms: tuple[ArmUStat, ...]
    moments: tuple[Moments, ...]
    n_readers_excluded: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def _kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = y[None, :] - x[:, None]
    return (d > 0) + 0.5 * (d == 0)


def _reader_reads(neg: np.ndarray, x: np.ndarray, pos: np.ndarray, y: np.ndarray) -> _ReaderReads:
    v10, v01 = _placements(y, x)  # per positive: share of negatives below; per negative: share of positives above
    return _ReaderReads(neg=neg, x=x, pos=pos, y=y, row=v01 * pos.size, col=v10 * neg.size,
                        total=float(v10.sum() * neg.size), square_total=_square_total(x, y))


def _square_total(x: np.ndarray, y: np.ndarray) -> float:
    """sum over (negative, positive) of the squared kernel = #(y > x) + 0.25 #(y == x), by sorting. Whole numbers
    and quarters: the same float as summing the squared kernel matrix (every partial sum is exact)."""
    xs = np.sort(x)
    below, upto = np.searchsorted(xs, y, side="left"), np.searchsorted(xs, y, side="right")
    return float(below.sum()) + 0.25 * float((upto - below).sum())


def _block(a: _ReaderReads, b: _ReaderReads) -> tuple[float, float]:
    """(sum of s_a * s_b, number of terms) over the (negative, positive) pairs both reads contain."""
    if a is b:
        return a.square_total, float(a.neg.size * a.pos.size)
    _, ia, ib = np.intersect1d(a.neg, b.neg, assume_unique=True, return_indices=True)
    if ia.size == 0:
        return 0.0, 0.0
    _, ja, jb = np.intersect1d(a.pos, b.pos, assume_unique=True, return_indices=True)
    if ja.size == 0:
        return 0.0, 0.0
    sa = _kernel(a.x[ia], a.y[ja])
    sb = _kernel(b.x[ib], b.y[jb])
    return float((sa * sb).sum()), float(ia.size * ja.size)


def _scatter(values: list[tuple[np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    out = np.zeros(size)
    for idx, v in values:
        np.add.at(out, idx, v)
    return out


def _incidence(reads: list[_ReaderReads], attr: str, size: int) -> sp.csr_matrix:
    idx = [getattr(a, attr) for a in reads]
    rows = np.repeat(np.arange(len(reads)), [i.size for i in idx])
    return sp.csr_matrix((np.ones(rows.size), (rows, np.concatenate(idx) if idx else rows)), shape=(len(reads), size))


def _shares_cases(rx: list[_ReaderReads], ry: list[_ReaderReads], n_neg: int, n_pos: int) -> np.ndarray:
    """[len(rx) x len(ry)]: the two reads have a negative and a positive case in common (all pairs at once)."""
    if len(rx) * len(ry) == 1:  # one reader against itself (_reader_variance): no need to look
        return np.ones((1, 1), bool)
    both = None
    for attr, size in (("neg", n_neg), ("pos", n_pos)):
        common = (_incidence(rx, attr, size) @ _incidence(ry, attr, size).T).toarray() > 0
        both = common if both is None else both & common
    return both


def _sums(rx: dict[str, _ReaderReads], ry: dict[str, _ReaderReads], n_neg: int,
          n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums b1..b8 over pairs of kernels sharing at least: (reader, negative, positive), (reader, positive),
    (reader, negative), (reader), (negative, positive), (positive), (negative), nothing; kernel products (first
    array) and weight products (second). iMRMC's numbering: M2 and M6 share the positive case, M3 and M7 the
    negative one."""
    bs, bd = np.zeros(8), np.zeros(8)
    for r, a in rx.items():
        b = ry.get(r)
        if b is None:
            continue
        s, w = _block(a, b)
        bs[0] += s
        bd[0] += w
        common, ja, jb = np.intersect1d(a.pos, b.pos, assume_unique=True, return_indices=True)
        bs[1] += float(a.col[ja] @ b.col[jb])
        bd[1] += common.size * a.neg.size * b.neg.size
        common, ia, ib = np.intersect1d(a.neg, b.neg, assume_unique=True, return_indices=True)
        bs[2] += float(a.row[ia] @ b.row[ib])
        bd[2] += common.size * a.pos.size * b.pos.size
        bs[3] += a.total * b.total
        bd[3] += a.pairs * b.pairs
    shares = _shares_cases(list(rx.values()), list(ry.values()), n_neg, n_pos)
    for i, a in enumerate(rx.values()):
        for j in np.flatnonzero(shares[i]):  # a pair of reads with no case in common adds exactly 0
            s, d = _block(a, list(ry.values())[j])
            bs[4] += s
            bd[4] += d
    for k, (attr, size, other) in enumerate((("col", n_pos, "neg"), ("row", n_neg, "pos")), start=5):
        idx = "neg" if attr == "row" else "pos"
        sx = _scatter([(getattr(a, idx), getattr(a, attr)) for a in rx.values()], size)
        sy = _scatter([(getattr(b, idx), getattr(b, attr)) for b in ry.values()], size)
        wx = _scatter([(getattr(a, idx), np.full(getattr(a, idx).size, getattr(a, other).size, float))
                       for a in rx.values()], size)
        wy = _scatter([(getattr(b, idx), np.full(getattr(b, idx).size, getattr(b, other).size, float))
                       for b in ry.values()], size)
        bs[k], bd[k] = float(sx @ sy), float(wx @ wy)
    tx, ty = sum(a.total for a in rx.values()), sum(b.total for b in ry.values())
    px, py = sum(a.pairs for a in rx.values()), sum(b.pairs for b in ry.values())
    bs[7], bd[7] = tx * ty, float(px) * float(py)
    return bs, bd


def _moments(pair: str, rx: dict[str, _ReaderReads], ry: dict[str, _ReaderReads], n_neg: int,
             n_pos: int) -> Moments:
    bs, bd = _sums(rx, ry, n_neg, n_pos)
    num, den = _EXACT @ bs, _EXACT @ bd
    ok = den > 0.5  # a pattern the design does not contain has no pairs (iMRMC: denominator > min weight / 2)
    m = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    okb = bd > 0.5
    mb = np.where(okb, bs / np.where(okb, bd, 1.0), 0.0)
    c = den / bd[7]
    c[7] -= 1.0
    return Moments(pair=pair, moments=tuple(m.tolist()), moments_mle=tuple(mb.tolist()),
                   coefficients=tuple(c.tolist()), variance=float(c @ m), variance_mle=float(c @ mb))


def _reader_variance(a: _ReaderReads, n_neg: int, n_pos: int) -> float:
    """One reader's U-statistic AUC variance (Gallas 2006): the four same-reader moments, with M4 (no case shared)
    standing for AUC^2."""
    bs, bd = _sums({"r": a}, {"r": a}, n_neg, n_pos)
    num, den = _EXACT[:4, :4] @ bs[:4], _EXACT[:4, :4] @ bd[:4]
    ok = den > 0.5
    m = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    c = den / bd[3]
    c[3] -= 1.0
    return float(c @ m)


def _arm_reads(d: pd.DataFrame, arm: str, case_pos: np.ndarray) -> tuple[dict[str, _ReaderReads], int, int]:
    """Readers of one arm with >= 1 negative and >= 1 positive read (others counted as excluded), and reads."""
    out: dict[str, _ReaderReads] = {}
    excluded = n_reads = 0
    g = d[d["modality"] == arm]
    for reader, idx in sorted(g.groupby("reader").indices.items()):
        rows = g.iloc[idx]
        t = rows["truth"].to_numpy(bool)
        cp = case_pos[rows.index.to_numpy()]
        if t.sum() < 1 or (~t).sum() < 1:
            excluded += 1
            continue
        neg_order, pos_order = np.argsort(cp[~t]), np.argsort(cp[t])
        out[str(reader)] = _reader_reads(cp[~t][neg_order], rows["rating"].to_numpy(float)[~t][neg_order],
                                         cp[t][pos_order], rows["rating"].to_numpy(float)[t][pos_order])
        n_reads += len(rows)
    return out, excluded, n_reads


def _t_ci(est: float, se: float, df: float, conf: float) -> tuple[float, float]:
    q = stats.t.ppf(0.5 + conf / 2, df) if np.isfinite(df) else stats.norm.ppf(0.5 + conf / 2)
    return est - q * se, est + q * se


def _hillis_df(var: float, reader_values: np.ndarray) -> float:
    """Hillis' ddf in its iMRMC form: (R - 1) V^2 / (s^2 / R)^2, s^2 the variance of the reader values."""
    r = reader_values.size
    s2 = float(reader_values.var(ddof=1)) if r > 1 else float("nan")
    if not (r > 1 and s2 > 0):
        return float("inf")
    return (r - 1) * var**2 / (s2 / r) ** 2


def _arm_result(arm: str, reads: dict[str, _ReaderReads], mom: Moments, n_neg: int, n_pos: int, n_reads: int,
                conf: float) -> ArmUStat:
    pairs = sum(a.pairs for a in reads.values())
    auc = sum(a.total for a in reads.values()) / pairs
    reader_auc = {r: a.total / a.pairs for r, a in reads.items()}
    reader_var = {r: _reader_variance(a, n_neg, n_pos) for r, a in reads.items()}
    var = mom.variance if mom.variance > 0 else mom.variance_mle
    se = float(np.sqrt(max(var, 0.0)))
    df = _hillis_df(var, np.array(list(reader_auc.values())))
    return ArmUStat(arm=arm, auc=float(auc), var=float(var), se=se, df=float(df), ci=_t_ci(auc, se, df, conf),
                    n_readers=len(reads), n_reads=n_reads, reader_auc=reader_auc, reader_var=reader_var)


def _difference_df(design: str, var: float, arm_a: ArmUStat, arm_b: ArmUStat, conf: float) -> float:
    if design == "crossed":
        diffs = np.array([arm_a.reader_auc[r] - arm_b.reader_auc[r] for r in arm_a.reader_auc])
        return _hillis_df(var, diffs)
    parts = []
    for arm in (arm_a, arm_b):
        vals = np.array(list(arm.reader_auc.values()))
        parts.append(float(vals.var(ddof=1)) / vals.size if vals.size > 1 else 0.0)
    dfs = [arm.n_readers - 1 for arm in (arm_a, arm_b)]
    den = sum(p**2 / d for p, d in zip(parts, dfs, strict=True) if d > 0)
    reader_part = sum(parts)
    welch = reader_part**2 / den if den > 0 else float("inf")
    return _shifted_df(reader_part, welch, var - reader_part, conf)


def _difference_variance(mom: tuple[Moments, ...], arm_a: ArmUStat,
                         arm_b: ArmUStat) -> tuple[float, str, str | None]:
    """U-statistic variance of the difference; if not positive the MLE (V-statistic) one; if that is not positive
    either (possible when the design is not fully crossed), the reader mean squares alone."""
    var_u = mom[0].variance + mom[1].variance - 2 * mom[2].variance
    if var_u > 0:
        return var_u, "U-statistic", None
    var_mle = mom[0].variance_mle + mom[1].variance_mle - 2 * mom[2].variance_mle
    if var_mle > 0:
        return var_mle, "MLE", "U-statistic variance not positive: MLE (V-statistic) variance used"
    reader_part = sum(float(np.var(list(a.reader_auc.values()), ddof=1)) / a.n_readers for a in (arm_a, arm_b))
    return reader_part, "reader mean squares", "U-statistic and MLE variances not positive: reader part only"


def ustat_mrmc(
    df: pd.DataFrame,
    modalities: list[Any],
    conf_level: float = 0.95,
    positive: Any = 1,
    **columns: str,
) -> UStatMRMCResult | None:
    """Gallas U-statistic MRMC analysis of ``modalities[0] - modalities[1]`` for any reading design (input as
    :func:`analysis.stats.mrmc_split.split_plot_mrmc`); ``None`` when an arm has no reader with both a negative and
    a positive case read. Readers need not be the same in both arms and need not read every case."""
    d = _long_frame(df, columns, positive)
    arms = [str(m) for m in modalities[:2]]
    d = d[d["modality"].isin(arms)].reset_index(drop=True)
    truth_by_case = d.groupby("case")["truth"].first()
    neg_index = pd.Index(sorted(truth_by_case.index[~truth_by_case.to_numpy(bool)]))
    pos_index = pd.Index(sorted(truth_by_case.index[truth_by_case.to_numpy(bool)]))
    # position of each read's case among the negatives or among the positives
    case_pos = np.where(d["truth"].to_numpy(bool), pos_index.get_indexer(d["case"]), neg_index.get_indexer(d["case"]))
    reads_a, ex_a, na = _arm_reads(d, arms[0], case_pos)
    reads_b, ex_b, nb = _arm_reads(d, arms[1], case_pos)
    if not reads_a or not reads_b:
        return None
    n_neg, n_pos = neg_index.size, pos_index.size
    mom = (_moments("AA", reads_a, reads_a, n_neg, n_pos), _moments("BB", reads_b, reads_b, n_neg, n_pos),
           _moments("AB", reads_a, reads_b, n_neg, n_pos))
    arm_a = _arm_result(arms[0], reads_a, mom[0], n_neg, n_pos, na, conf_level)
    arm_b = _arm_result(arms[1], reads_b, mom[1], n_neg, n_pos, nb, conf_level)
    design = _design(list(reads_a), list(reads_b))
    var, kind, note = _difference_variance(mom, arm_a, arm_b)
    est = arm_a.auc - arm_b.auc
    se = float(np.sqrt(max(var, 0.0)))
    ddf = _difference_df(design, var, arm_a, arm_b, conf_level)
    t = est / se if se > 0 else float("nan")
    z = stats.norm.ppf(0.5 + conf_level / 2)
    if ex_a + ex_b:
        note = "; ".join(filter(None, [note, f"{ex_a + ex_b} reader-arm(s) without a positive and a negative read "
                                             "left out"]))
    return UStatMRMCResult(
        method=f"{METHOD}; readers {design}", design=design, estimate=float(est), var=float(var), se=se,
        df=float(ddf), ci=_t_ci(est, se, ddf, conf_level), statistic=float(t),
        p=float(2 * stats.t.sf(abs(t), ddf)) if np.isfinite(ddf) else float(2 * stats.norm.sf(abs(t))),
        p_normal=float(2 * stats.norm.sf(abs(t))), ci_normal=(est - z * se, est + z * se), conf_level=conf_level,
        n=n_neg + n_pos, n_positive=n_pos, n_negative=n_neg, variance_kind=kind, arms=(arm_a, arm_b), moments=mom,
        n_readers_excluded=ex_a + ex_b, note=note)


__all__ = ["ArmUStat", "Moments", "UStatMRMCResult", "ustat_mrmc"]
