"""Linear mixed models with scalar random intercepts (crossed or nested), fitted by REML the lme4 way.

``y = X beta + Z_1 b_1 + ... + Z_k b_k + e`` with ``b_j ~ N(0, sigma^2 theta_j^2 I)`` and ``e ~ N(0, sigma^2 I)``:
one random intercept per grouping factor (reader, case, report = reader x case, expert ...), crossed or nested.

The fit follows lme4's penalised least squares formulation (Bates, Maechler, Bolker & Walker 2015, "Fitting linear
mixed-effects models using lme4", J. Stat. Softw. 67(1), section 3): for relative standard deviations ``theta`` the
profiled REML deviance needs log|Lambda'Z'Z Lambda + I|, the fixed-effects block ``R_X'R_X`` and the penalised
residual sum of squares; it is minimised over ``theta >= 0``. Because every term is a scalar intercept, the
``Z'Z`` block of each factor is diagonal, so the factorisation is a sequence of exact block eliminations (Schur
complements): the factor with most levels (report) first, with its level weights grouped by level size so that a
step costs a few vector operations; then the next factor when its block is still diagonal (case, when report is
nested in case); the few hundred remaining columns (reader, expert, fixed effects) densely. Designs without that
structure fall back to a sparse LU of the remaining block (SuperLU), which is exact but slower. The gradient is
analytic: d log|N| / d theta_j = (2 / theta_j) (levels_j - sum of diag(N^-1) over factor j), for N the random-effect
block with and without the [X y] columns, from the same eliminations.

Denominator degrees of freedom follow lmerTest (Kuznetsova, Brockhoff & Christensen 2017, J. Stat. Softw. 82(13)):
the variance parameters are ``(theta, sigma)``; their covariance is twice the inverse Hessian of the deviance at
fixed ``sigma`` (pseudo-inverse over eigenvalues > 1e-8, as lmerTest does), and the Satterthwaite df of a contrast
``L`` is ``2 (L V L')^2 / (g' A g)`` with ``g`` the gradient of ``L V(theta, sigma) L'``. Derivatives are central
finite differences of the analytic gradient of the deviance (lmerTest uses numDeriv's Richardson differences; both
are accurate to far below the 1e-4 the tests ask). Joint F tests follow lmerTest's contestMD. Kenward-Roger
(optional) follows pbkrtest's vcovAdj / Lb_ddf / KRmodcomp, with dense algebra over the random-effect levels.
Verified against lme4 + lmerTest + pbkrtest in tests/analysis/test_lmm_vs_r.py; timed in benchmarks/lmm_speed.py.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp
from scipy import optimize, stats
from scipy.linalg import blas, lapack
from scipy.sparse.linalg import splu

try:  # small dense BLAS calls are far slower multi-threaded on a busy machine (OpenBLAS spin-waits)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional
    threadpool_limits = None

ENGINE = f"cxr-trial lmm 1.0 (lme4-style penalised least squares REML; scipy {scipy.__version__})"

_DENSE_MAX = 3000  # random-effect columns left when the remaining block is factorised densely
_DENSE_TAIL = 400  # a diagonal block is eliminated with a dense right-hand side when the rest is this small
_MAX_SIZE_GROUPS = 24  # distinct level sizes of the largest factor for the grouped first elimination
_BOUNDARY_TOL = 1e-4  # lme4's isSingular() tolerance on theta
_GRAD_TOL = 2e-3  # lme4's check.conv.grad tolerance
_EIG_TOL = 1e-8  # lmerTest's tolerance on eigenvalues of the variance-parameter Hessian
_KR_MAX_LEVELS = 4000  # Kenward-Roger needs dense q x q matrices (q = all random-effect levels)


@dataclass(frozen=True)
class Contrast:
    """One linear contrast ``L @ beta`` of the fixed effects with a t test on Satterthwaite df."""

    estimate: float
    se: float
    df: float
    t: float
    p: float
    ci_low: float
    ci_high: float
    conf_level: float


@dataclass(frozen=True)
class FTest:
    """A joint test of several contrasts (rows of L): F statistic on (ndf, ddf), as lmerTest's contestMD."""

    f: float
    ndf: int
    ddf: float
    p: float


@dataclass(frozen=True)
class LmmFit:
    """A fitted linear mixed model (see :func:`fit_lmm`).

    ``coef``/``se``/``df``/``t``/``p`` are per fixed effect (column of X, in ``names`` order); ``vcov`` is
    ``sigma^2 (R_X'R_X)^-1``; ``variance_components`` maps each grouping factor and ``"residual"`` to a variance;
    ``reml_criterion`` is lme4's ``REMLcrit()`` (the ML deviance when fitted with ``reml=False``). ``boundary``: a
    relative SD below 1e-4 (lme4's singular fit). ``vcov_varpar`` (covariance of ``(theta, sigma)``) and
    ``vcov_jacobian`` (derivatives of ``vcov`` with respect to them) give the Satterthwaite df of any contrast.
    With ``df_method="kenward-roger"``, ``vcov`` is the Kenward-Roger adjusted covariance (pbkrtest's vcovAdj),
    ``vcov_unadjusted`` the model one, and ``kr_p``/``kr_w`` the P matrices and W that give its df.
    """

    names: tuple[str, ...]
    coef: np.ndarray
    se: np.ndarray
    df: np.ndarray
    t: np.ndarray
    p: np.ndarray
    vcov: np.ndarray
    variance_components: dict[str, float]
    reml_criterion: float
    converged: bool
    boundary: bool
    message: str
    n_obs: int
    n_levels: dict[str, int]
    engine: str
    df_method: str
    theta: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    sigma: float = field(default=float("nan"), repr=False, compare=False)
    vcov_varpar: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False, compare=False)
    vcov_jacobian: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)), repr=False, compare=False)
    vcov_unadjusted: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False, compare=False)
    kr_p: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)), repr=False, compare=False)
    kr_w: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), repr=False, compare=False)

    def contrast(self, L: np.ndarray, conf_level: float = 0.95) -> Contrast:  # noqa: N803
        """Estimate, SE, Satterthwaite df, t, two-sided p and t-based CI of ``L @ beta`` (L: one row)."""
        L = np.asarray(L, dtype=float).reshape(-1)  # noqa: N806
        if L.shape[0] != len(self.names):
            raise ValueError(f"contrast needs {len(self.names)} coefficients, got {L.shape[0]}")
        estimate = float(L @ self.coef)
        var = float(L @ self.vcov @ L)
        if self.df_method == "kenward-roger":
            df = _kr_ddf(L, self.vcov_unadjusted, self.kr_p, self.kr_w)
        else:
            grad = np.einsum("i,kij,j->k", L, self.vcov_jacobian, L)
            denom = float(grad @ self.vcov_varpar @ grad)
            df = 2.0 * var**2 / denom if denom > 0 else float("inf")
        se = float(np.sqrt(var))
        t = estimate / se if se > 0 else float("nan")
        p = float(2.0 * stats.t.sf(abs(t), df))
        q = float(stats.t.ppf(0.5 + conf_level / 2.0, df))
        return Contrast(estimate=estimate, se=se, df=float(df), t=float(t), p=p, ci_low=estimate - q * se,
                        ci_high=estimate + q * se, conf_level=conf_level)

    def ftest(self, L: np.ndarray) -> FTest:  # noqa: N803
        """Joint F test of ``L @ beta = 0`` (L: rows of contrasts), as lmerTest's contestMD: Satterthwaite df for the
        F statistic (Fai & Cornelius), or pbkrtest's Kenward-Roger F (scaled, adjusted covariance)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))  # noqa: N806
        if L.shape[1] != len(self.names):
            raise ValueError(f"contrast rows need {len(self.names)} coefficients, got {L.shape[1]}")
        if self.df_method == "kenward-roger":
            return _kr_ftest(L, self.coef, self.vcov, self.vcov_unadjusted, self.kr_p, self.kr_w)
        if L.shape[0] == 1:
            c = self.contrast(L[0])
            return FTest(f=c.t**2, ndf=1, ddf=c.df, p=c.p)
        d, vecs = np.linalg.eigh(L @ self.vcov @ L.T)
        d, vecs = d[::-1], vecs[:, ::-1]  # decreasing, like R's eigen()
        q = int(np.sum(d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)))
        ptl = vecs[:, :q].T @ L
        if q == 1:
            c = self.contrast(ptl[0])
            return FTest(f=c.t**2, ndf=1, ddf=c.df, p=c.p)
        f = float(np.sum((ptl @ self.coef) ** 2 / d[:q]) / q)
        grads = np.einsum("mi,kij,mj->mk", ptl, self.vcov_jacobian, ptl)
        nu = 2 * d[:q] ** 2 / np.einsum("mk,kl,ml->m", grads, self.vcov_varpar, grads)
        if np.all(np.abs(np.diff(nu)) < 1e-8):
            ddf = float(np.mean(nu))
        elif np.any(nu <= 2):
            ddf = 2.0
        else:
            e = float(np.sum(nu / (nu - 2)))
            ddf = 2 * e / (e - q)
        return FTest(f=f, ndf=q, ddf=ddf, p=float(stats.f.sf(f, q, ddf)))

    def coef_test(self, name: str, conf_level: float = 0.95) -> Contrast:
        """The contrast for one fixed effect by column name."""
        if name not in self.names:
            raise KeyError(f"no fixed effect {name!r}; have {self.names}")
        L = np.zeros(len(self.names))  # noqa: N806
        L[self.names.index(name)] = 1.0
        return self.contrast(L, conf_level)


# ----------------------------------------------------------------------------------------------------------------
# The deviance evaluator


@dataclass(frozen=True)
class _State:
    """Everything the deviance and its derivatives need at one theta."""

    ld_l2: float  # log|Lambda'Z'Z Lambda + I|
    ld_rx2: float  # log|R_X'R_X|
    pwrss: float  # penalised weighted residual sum of squares
    delta: np.ndarray  # beta minus the OLS start
    rxtrx_inv: np.ndarray  # (R_X'R_X)^-1


def _dense_schur(a: np.ndarray, nz: int) -> tuple[float, np.ndarray]:
    """Eliminate the first ``nz`` rows/columns of a dense SPD matrix: (log-determinant of that block, Schur)."""
    if nz == 0:
        return 0.0, a
    chol, info = lapack.dpotrf(a[:nz, :nz], lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"random-effects block not positive definite (dpotrf info {info})")
    v = blas.dtrsm(1.0, chol, a[:nz, nz:], lower=1)  # (scipy's solve_triangular/trtrs is slow here)
    return 2.0 * float(np.log(np.diag(chol)).sum()), a[nz:, nz:] - v.T @ v


def _sparse_lu_schur(a: sp.csr_matrix, nz: int) -> tuple[float, np.ndarray]:
    """As _dense_schur for a large sparse block without diagonal structure (SuperLU, symmetric mode)."""
    azz = a[:nz, :nz].tocsc()
    b = a[:nz, nz:].toarray()
    lu = splu(azz, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    logdet = float(np.log(np.abs(lu.U.diagonal())).sum())
    return logdet, a[nz:, nz:].toarray() - b.T @ lu.solve(b)


def _is_diagonal(block: sp.spmatrix) -> bool:
    coo = block.tocoo()
    return bool(np.all((coo.row == coo.col) | (coo.data == 0)))


def _eliminate(cur: sp.csr_matrix, sizes: list[int]) -> tuple[float, np.ndarray]:
    """Eliminate the random-effect blocks (``sizes`` leading columns, one entry per factor) of ``cur``."""
    logdet = 0.0
    sizes = list(sizes)
    while sizes:
        nz = sum(sizes)
        if nz <= _DENSE_MAX:
            ld, s = _dense_schur(cur.toarray(), nz)
            return logdet + ld, s
        m = sizes.pop(0)
        if not _is_diagonal(cur[:m, :m]):
            ld, s = _sparse_lu_schur(cur, nz)
            return logdet + ld, s
        d = cur.diagonal()[:m]
        logdet += float(np.log(d).sum())
        b = cur[:m, m:]
        rest = cur.shape[0] - m
        if rest <= _DENSE_TAIL:
            wb = b.toarray() / np.sqrt(d)[:, None]
            tail = cur[m:, m:].toarray() - wb.T @ wb  # W'W: BLAS syrk (a general GEMM here can be slow)
            ld, s = _dense_schur(tail, sum(sizes))
            return logdet + ld, s
        cur = (cur[m:, m:] - b.T @ sp.diags(1.0 / d) @ b).tocsr()
    return logdet, cur.toarray()


def _positions(pattern: sp.csr_matrix, a: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``a``'s entries in the data array of ``pattern`` (sorted CSR containing a's pattern)."""
    ncol = pattern.shape[1]
    prow = np.repeat(np.arange(pattern.shape[0], dtype=np.int64), np.diff(pattern.indptr))
    pkeys = prow * ncol + pattern.indices
    coo = a.tocoo()
    return np.searchsorted(pkeys, coo.row.astype(np.int64) * ncol + coo.col), coo.data


@dataclass(frozen=True)
class _Work:
    """One factorisation at theta: the pieces the deviance and its analytic gradient share."""

    ld_l2: float
    schur: np.ndarray  # (p+1)-square Schur complement left for [X y]
    tail: np.ndarray  # dense matrix of the last elimination (its first nz_tail columns are random effects)
    nz_tail: int
    data: np.ndarray | None = None  # first-step matrix on the fixed pattern
    d2: np.ndarray | None = None  # diagonal of the second factor's block ("diag" plan)
    wb: np.ndarray | None = None  # that factor's off-diagonal rows over sqrt(d2)


class _Deviance:
    """Precomputed cross-products of [Z X y] and the exact evaluation of the REML/ML deviance at theta.

    After the grouped first elimination the plan is "diag" (the next factor's block is diagonal and what is left
    after it is small: one diagonal elimination with a dense right-hand side), "dense" (the rest is small enough
    to factorise densely) or "sparse" (anything else: :func:`_eliminate`, and finite-difference gradients).
    """

    def __init__(self, y: np.ndarray, x: np.ndarray, codes: list[np.ndarray], sizes: list[int], reml: bool):
        self.n, self.p = x.shape
        self.reml = reml
        self.sizes = sizes
        self.beta0 = np.linalg.lstsq(x, y, rcond=None)[0]
        resid = y - x @ self.beta0  # same pwrss and beta - beta0, better conditioned
        n = self.n
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        z = sp.csr_matrix(
            (np.ones(n * len(codes)),
             (np.tile(np.arange(n), len(codes)),
              np.concatenate([c + o for c, o in zip(codes, offsets, strict=False)]))),
            shape=(n, int(offsets[-1])),
        )
        v = np.column_stack([x, resid])
        ztz = (z.T @ z).tocsr()
        ztv = sp.csr_matrix(z.T @ v)
        m = sp.bmat([[ztz, ztv], [ztv.T, sp.csr_matrix(v.T @ v)]], format="csr")
        self.q = int(offsets[-1])
        self.level_theta_index = np.concatenate([np.full(s, i) for i, s in enumerate(sizes)])
        self.plan = "sparse"
        self.has_gradient = False
        self._setup_first(m)
        if self.grouped:
            self._setup_plan()
        self.cache: dict[tuple[float, ...], _State] = {}
        self.grad_cache: dict[tuple[float, ...], tuple[_State, np.ndarray]] = {}
        self.last: tuple[tuple[float, ...], _State, _Work] | None = None  # the gradient reuses this factorisation

    def _setup_first(self, m: sp.csr_matrix) -> None:
        """Group the first (largest) factor's levels by size so its elimination is a weighted sum of constants."""
        m1 = self.sizes[0]
        counts = m.diagonal()[:m1]
        self.g1 = m[:m1, m1:].tocsr()
        self.m_rest = m[m1:, m1:].tocsr()
        self.size_values, inverse = np.unique(counts, return_inverse=True)
        self.size_counts = np.bincount(inverse).astype(float)
        self.size_group = inverse
        self.counts1 = counts
        self.grouped = len(self.size_values) <= _MAX_SIZE_GROUPS
        r = self.m_rest.shape[0]
        nz_rest = self.q - m1
        k = len(self.sizes)
        self.rest_type = np.concatenate([self.level_theta_index[m1:], np.full(r - nz_rest, k)])  # k: X and y
        if not self.grouped:
            return
        parts = [(self.g1[inverse == j].T @ self.g1[inverse == j]).tocsr() for j in range(len(self.size_values))]
        pattern = abs(self.m_rest)
        for part in parts:
            pattern = pattern + abs(part)
        pattern = pattern.tocsr()
        pattern.sum_duplicates()
        pattern.sort_indices()
        self.pattern = pattern
        nnz = pattern.nnz
        base = np.zeros(nnz)
        pos, val = _positions(pattern, self.m_rest)
        np.add.at(base, pos, val)
        self.base = base
        self.parts = np.zeros((len(parts), nnz))
        for j, part in enumerate(parts):
            pos, val = _positions(pattern, part)
            np.add.at(self.parts[j], pos, val)
        self.pat_row = np.repeat(np.arange(r), np.diff(pattern.indptr))
        self.pat_col = pattern.indices.astype(np.int64)
        self.pat_pair = self.rest_type[self.pat_row] * (k + 1) + self.rest_type[self.pat_col]
        self.pat_zdiag = _positions(pattern, sp.identity(r, format="csr")[:nz_rest])[0]

    def _setup_plan(self) -> None:
        rest = self.sizes[1:]
        r = self.pattern.shape[0]
        row, col = self.pat_row, self.pat_col
        if rest:
            m2 = rest[0]
            top = row < m2
            if r - m2 <= _DENSE_TAIL and not np.any(top & (col < m2) & (row != col)):
                self._setup_diag(m2)
                return
        if sum(rest) <= _DENSE_MAX:
            self.plan, self.flat = "dense", row * r + col
            self.has_gradient = True

    def _setup_diag(self, m2: int) -> None:
        row, col = self.pat_row, self.pat_col
        t = self.pattern.shape[0] - m2
        top = row < m2
        self.plan = "diag"
        self.sel_d = np.flatnonzero(top & (col == row))
        self.sel_b = np.flatnonzero(top & (col >= m2))
        self.flat_b = row[self.sel_b] * t + (col[self.sel_b] - m2)
        self.type_b = self.rest_type[col[self.sel_b]]
        self.buf_b = np.zeros(m2 * t)  # scatter targets: entries off the pattern stay zero for good
        self.buf_q = np.zeros(m2 * t)
        self.sel_c = np.flatnonzero((row >= m2) & (col >= m2))
        self.flat_c = (row[self.sel_c] - m2) * t + (col[self.sel_c] - m2)
        self.has_gradient = True

    def _first_data(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """log-determinant of the first block and the data of the next matrix on the fixed pattern."""
        t1sq = theta[0] ** 2
        w = t1sq / (t1sq * self.size_values + 1.0)
        tv = np.append(theta, 1.0)
        data = (self.base - w @ self.parts) * np.outer(tv, tv).ravel()[self.pat_pair]
        data[self.pat_zdiag] += 1.0
        return float(self.size_counts @ np.log1p(t1sq * self.size_values)), data

    def _first_sparse(self, theta: np.ndarray) -> tuple[float, sp.csr_matrix]:
        t1sq = theta[0] ** 2
        w = t1sq / (t1sq * self.counts1 + 1.0)
        k = self.m_rest - self.g1.T @ sp.diags(w) @ self.g1
        s = sp.diags(np.append(theta, 1.0)[self.rest_type])
        a1 = (s @ k @ s + sp.diags((self.rest_type < len(self.sizes)).astype(float))).tocsr()
        return float(np.log1p(t1sq * self.counts1).sum()), a1

    def _factorise(self, theta: np.ndarray) -> _Work:
        nxy = self.p + 1
        if not self.grouped:
            ld1, a1 = self._first_sparse(theta)
            ld2, s = _eliminate(a1, self.sizes[1:])
            return _Work(ld1 + ld2, s, s, 0)
        ld1, data = self._first_data(theta)
        r = self.pattern.shape[0]
        if self.plan == "dense":
            a = np.zeros(r * r)
            a[self.flat] = data
            a = a.reshape(r, r)
            ld2, s = _dense_schur(a, r - nxy)
            return _Work(ld1 + ld2, s, a, r - nxy, data=data)
        if self.plan == "diag":
            m2 = self.sizes[1]
            t = r - m2
            d = data[self.sel_d]
            b = self.buf_b
            b[self.flat_b] = data[self.sel_b]
            c = np.zeros(t * t)
            c[self.flat_c] = data[self.sel_c]
            wb = b.reshape(m2, t) / np.sqrt(d)[:, None]
            tail = c.reshape(t, t) - wb.T @ wb  # W'W: BLAS syrk (a general GEMM here can be slow)
            ld2, s = _dense_schur(tail, t - nxy)
            return _Work(ld1 + float(np.log(d).sum()) + ld2, s, tail, t - nxy, data=data, d2=d, wb=wb)
        a1 = sp.csr_matrix((data, self.pattern.indices, self.pattern.indptr), shape=self.pattern.shape)
        ld2, s = _eliminate(a1, self.sizes[1:])
        return _Work(ld1 + ld2, s, s, 0)

    def _evaluate(self, theta: np.ndarray, need_work: bool = False) -> tuple[_State, _Work | None]:
        theta = np.abs(np.asarray(theta, dtype=float))
        key = tuple(theta.tolist())
        if self.last is not None and self.last[0] == key:
            return self.last[1], self.last[2]
        hit = self.cache.get(key)
        if hit is not None and not need_work:
            return hit, None
        work = self._factorise(theta)
        s, p = work.schur, self.p
        chol, info = lapack.dpotrf(s[:p, :p], lower=0)
        if info != 0:
            raise np.linalg.LinAlgError(f"fixed-effects block not positive definite (dpotrf info {info})")
        delta = lapack.dpotrs(chol, s[:p, p], lower=0)[0]
        pwrss = float(s[p, p] - s[:p, p] @ delta)
        inv = lapack.dpotrs(chol, np.eye(p), lower=0)[0]  # (OpenBLAS's dpotri/dtrtrs are slow here)
        st = _State(ld_l2=work.ld_l2, ld_rx2=2.0 * float(np.log(np.diag(chol)).sum()), pwrss=pwrss, delta=delta,
                    rxtrx_inv=inv)
        if len(self.cache) < 4096:
            self.cache[key] = st
        self.last = (key, st, work)
        return st, work

    def state(self, theta: np.ndarray) -> _State:
        return self._evaluate(theta)[0]

    def _inverse_diag_sums(self, theta: np.ndarray, work: _Work) -> np.ndarray:
        """Sum of diag(N^-1) over each factor's levels, for N the leading z, z+X and z+X+y block of the system."""
        k, nzt = len(self.sizes), work.nz_tail
        sums = np.zeros((3, k))
        t0sq = theta[0] ** 2
        d1 = t0sq * self.size_values + 1.0
        first = float(self.size_counts @ (1.0 / d1))
        tv = np.append(theta, 1.0)
        qdata = (t0sq / d1**2) @ self.parts  # sum over first-factor levels of u u' (u = its scaled row / d1)
        if self.plan == "diag":
            quad, bases = self._diag_quadratics(theta, work, qdata)
            bases = (first + bases[0], bases[1])
            offset = 2
        else:
            r = self.pattern.shape[0]
            qd = np.zeros(r * r)
            qd[self.flat] = qdata * np.outer(tv, tv).ravel()[self.pat_pair]
            quad, bases, offset = (qd.reshape(r, r),), (first,), 1
        blocks = (nzt, nzt + self.p, nzt + self.p + 1)
        for i, (t, inv) in enumerate(zip(blocks, _leading_inverses(work.tail[:blocks[-1], :blocks[-1]], blocks),
                                         strict=True)):
            for j, (qm, base) in enumerate(zip(quad, bases, strict=True)):
                sums[i, j] = base + float(np.sum(inv * qm[:t, :t]))
            dg = np.diag(inv)
            start = 0
            for j in range(offset, k):
                size = self.sizes[j]
                sums[i, j] = float(dg[start:start + size].sum())
                start += size
        return sums

    def _diag_quadratics(self, theta: np.ndarray, work: _Work,
                         qdata: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[float, float]]:
        """For the "diag" plan: sum_l v_l v_l' over first-factor levels l (v_l = beta_l U2_c(l) - b_l, see
        _inverse_diag_sums) and U2'U2, from the constant size-group parts, so no n1 x t array is built."""
        m2 = self.sizes[1]
        t = self.pattern.shape[0] - m2
        tvt = np.append(theta, 1.0)[self.rest_type[m2:]]
        qcc = qdata[self.sel_d]
        qct = self.buf_q
        qct[self.flat_b] = qdata[self.sel_b] * np.append(theta, 1.0)[self.type_b]
        qct = qct.reshape(m2, t)
        qtt = np.zeros(t * t)
        qtt[self.flat_c] = qdata[self.sel_c]
        qtt = qtt.reshape(t, t) * np.outer(tvt, tvt)
        u2 = work.wb / np.sqrt(work.d2)[:, None]
        a = (theta[1] * np.sqrt(qcc))[:, None] * u2
        cross = theta[1] * (u2.T @ qct)
        vtv = a.T @ a - cross - cross.T + qtt
        extra = float(theta[1] ** 2 * np.sum(qcc / work.d2))
        return (vtv, u2.T @ u2), (extra, float(np.sum(1.0 / work.d2)))

    def logdet_gradients(self, theta: np.ndarray) -> tuple[_State, np.ndarray]:
        """State at |theta| and d/dtheta of log|N| for N = the z, z+X and z+X+y blocks (rows), by theta_j.

        d log|N| / d theta_j = (2 / theta_j) (m_j - sum over j's levels of diag(N^-1)), 0 at theta_j = 0."""
        sign = np.sign(theta)
        th = np.abs(np.asarray(theta, dtype=float))
        key = tuple(th.tolist())
        hit = self.grad_cache.get(key)  # the optimum is visited again by the convergence check and the df
        if hit is not None:
            return hit[0], hit[1] * sign
        st, work = self._evaluate(th, need_work=True)
        assert work is not None
        sums = self._inverse_diag_sums(th, work)
        sizes = np.asarray(self.sizes, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(th > 0, 2.0 / th * (sizes - sums), 0.0)
        if len(self.grad_cache) < 256:
            self.grad_cache[key] = (st, g)
        return st, g * sign

    def dof(self) -> int:
        return self.n - self.p if self.reml else self.n

    def profiled(self, theta: np.ndarray) -> float:
        """lme4's profiled deviance: REMLcrit for REML, the deviance for ML."""
        st = self.state(theta)
        if not st.pwrss > 0:
            return float("inf")
        nd = self.dof()
        dev = st.ld_l2 + nd * (1.0 + np.log(2.0 * np.pi * st.pwrss / nd))
        return float(dev + (st.ld_rx2 if self.reml else 0.0))

    def profiled_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        st, g = self.logdet_gradients(theta)
        nd = self.dof()
        g_pw = g[2] - g[1]  # d log pwrss
        grad = (g[1] if self.reml else g[0]) + nd * g_pw
        return self.profiled(theta), grad


def _leading_inverses(a: np.ndarray, sizes: tuple[int, ...]) -> list[np.ndarray]:
    """Inverses of the leading blocks ``a[:t, :t]`` (``t`` in ``sizes``) of an SPD matrix from one inversion:
    with ``B = a^-1``, ``a[:t, :t]^-1 = B11 - B12 B22^-1 B21`` (B22 is at most (p+1)-square here). One dense
    inversion instead of one per block: the crossover models have tails of ~1000 columns."""
    full = _spd_inverse(a)
    out = []
    for t in sizes:
        if t == full.shape[0]:
            out.append(full)
            continue
        b12 = full[:t, t:]
        out.append(full[:t, :t] - b12 @ np.linalg.solve(full[t:, t:], b12.T))
    return out


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    if a.shape[0] == 0:
        return a
    chol, info = lapack.dpotrf(a, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"matrix not positive definite (dpotrf info {info})")
    return lapack.dpotrs(chol, np.eye(a.shape[0]), lower=0)[0]


# ----------------------------------------------------------------------------------------------------------------
# Optimisation and derivatives


def _steps(theta: np.ndarray) -> np.ndarray:
    return 1e-3 * np.maximum(np.abs(theta), 0.05)


def _gradient(f, theta: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Central differences (the deviance is even in each theta, so theta - h is fine at the bound)."""
    h = _steps(theta) * 0.1
    g = np.zeros_like(theta)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = h[i]
        g[i] = (f(theta + e) - f(theta - e)) / (2 * h[i])
    return g


def _escape_boundary(f, theta: np.ndarray) -> np.ndarray | None:  # noqa: ANN001
    """A point below f(theta) next to a zero component, or None when theta is a minimum on that boundary.

    The deviance is even in each theta, so its gradient is exactly zero at theta_j = 0 even when the deviance
    falls as theta_j grows (a saddle): a gradient method that reaches the bound stops there; lme4's derivative-free
    BOBYQA does not. Probe each zero component with a few steps."""
    f0 = f(theta)
    best, best_f = None, f0
    for j in np.flatnonzero(theta == 0):
        for step in (1e-3, 1e-2, 1e-1):
            t = theta.copy()
            t[j] = step
            ft = f(t)
            if ft < best_f - 1e-12 * max(1.0, abs(f0)):
                best, best_f = t, ft
    return best


def _objective(dev: _Deviance):  # noqa: ANN202
    """The profiled deviance with its gradient (analytic where the plan has one, else central differences)."""
    if dev.has_gradient:
        return dev.profiled_and_gradient
    return lambda t: (dev.profiled(t), _gradient(dev.profiled, t))


def _optimise(dev: _Deviance) -> tuple[np.ndarray, bool, str]:
    """Minimise the profiled deviance over theta >= 0 from theta = 1 (lme4's start).

    L-BFGS-B works on theta_j * sqrt(levels_j): the curvature in theta_j grows with the factor's number of levels
    (20,000 reports against 5 experts), and this scaling roughly halves the iterations."""
    k = len(dev.sizes)
    fun = _objective(dev)
    scale = np.sqrt(np.asarray(dev.sizes, dtype=float))

    def scaled(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fun(x / scale)
        return f, g / scale

    start: np.ndarray | None = np.ones(k)
    nit = nfev = restarts = 0
    while start is not None:
        res = optimize.minimize(scaled, start * scale, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * k,
                                options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500})
        nit, nfev = nit + res.nit, nfev + res.nfev
        theta = np.asarray(res.x, dtype=float) / scale
        theta[theta < 1e-10] = 0.0
        restarts += 1
        start = _escape_boundary(dev.profiled, theta) if restarts <= k else None
    grad = fun(theta)[1]
    proj = np.where(theta > 0, grad, np.minimum(grad, 0.0))
    max_grad = float(np.max(np.abs(proj))) if k else 0.0
    # like lme4's check.conv.grad: judged on the gradient (a line search that stalls at the optimum is fine),
    # but not when the iteration limit cut the search short
    converged = res.status != 1 and max_grad < _GRAD_TOL
    message = (f"L-BFGS-B: {res.message}; {nit} iterations, {nfev} deviance evaluations; "
               f"max |gradient| {max_grad:.2g}")
    return theta, converged, message


def _derivatives_analytic(dev: _Deviance, theta: np.ndarray) -> tuple[np.ndarray, ...]:
    """As :func:`_derivatives` from the analytic gradients: Hessians and Jacobian by central differences of them
    (error O(h^2), about 1e-7 relative at these steps)."""
    k, p = len(theta), dev.p

    def parts(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        st, g = dev.logdet_gradients(t)
        g_phi = g[1] if dev.reml else g[0]
        return g_phi, st.pwrss * (g[2] - g[1]), st.rxtrx_inv

    g_phi, g_pw, _ = parts(theta)
    h = _steps(theta)
    h_phi, h_pw, jac_c = np.zeros((k, k)), np.zeros((k, k)), np.zeros((k, p, p))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        plus, minus = parts(theta + e), parts(theta - e)
        h_phi[i], h_pw[i], jac_c[i] = ((a - b) / (2 * h[i]) for a, b in zip(plus, minus, strict=True))
    return g_phi, g_pw, (h_phi + h_phi.T) / 2, (h_pw + h_pw.T) / 2, jac_c


def _derivatives(dev: _Deviance, theta: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gradient and Hessian of phi = log|L|^2 (+ log|R_X|^2) and pwrss, and the Jacobian of (R_X'R_X)^-1, in theta.

    Central differences at steps h and h/2 combined by Richardson extrapolation (error O(h^4)).
    """
    k, p = len(theta), dev.p

    def vec(t: np.ndarray) -> np.ndarray:
        st = dev.state(t)
        phi = st.ld_l2 + (st.ld_rx2 if dev.reml else 0.0)
        return np.concatenate([[phi, st.pwrss], st.rxtrx_inv.ravel()])

    h = _steps(theta)
    f0 = vec(theta)
    grad = np.zeros((k, f0.shape[0]))
    hess = np.zeros((k, k, 2))
    for i in range(k):
        vals = {}
        for frac in (1.0, 0.5):
            e = np.zeros(k)
            e[i] = h[i] * frac
            vals[frac] = (vec(theta + e), vec(theta - e))
        d1 = [(vals[f][0] - vals[f][1]) / (2 * h[i] * f) for f in (1.0, 0.5)]
        d2 = [(vals[f][0][:2] - 2 * f0[:2] + vals[f][1][:2]) / (h[i] * f) ** 2 for f in (1.0, 0.5)]
        grad[i] = (4 * d1[1] - d1[0]) / 3
        hess[i, i] = (4 * d2[1] - d2[0]) / 3
    for i in range(k):
        for j in range(i + 1, k):
            est = []
            for frac in (1.0, 0.5):
                ei, ej = np.zeros(k), np.zeros(k)
                ei[i], ej[j] = h[i] * frac, h[j] * frac
                num = (vec(theta + ei + ej)[:2] - vec(theta + ei - ej)[:2] - vec(theta - ei + ej)[:2]
                       + vec(theta - ei - ej)[:2])
                est.append(num / (4 * h[i] * h[j] * frac**2))
            hess[i, j] = hess[j, i] = (4 * est[1] - est[0]) / 3
    return grad[:, 0], grad[:, 1], hess[:, :, 0], hess[:, :, 1], grad[:, 2:].reshape(k, p, p)


def _satterthwaite_parts(dev: _Deviance, theta: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """lmerTest's vcov of varpar = (theta, sigma) and the Jacobian of vcov(beta) with respect to varpar."""
    g_phi, g_pw, h_phi, h_pw, jac_c = (_derivatives_analytic if dev.has_gradient else _derivatives)(dev, theta)
    st = dev.state(theta)
    k = len(theta)
    s2 = sigma**2
    hess = np.zeros((k + 1, k + 1))
    hess[:k, :k] = h_phi + h_pw / s2
    hess[:k, k] = hess[k, :k] = -2.0 * g_pw / sigma**3
    hess[k, k] = 6.0 * st.pwrss / sigma**4 - 2.0 * dev.dof() / s2
    evals, evecs = np.linalg.eigh(hess)
    pos = evals > _EIG_TOL
    vcov_varpar = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    jac = np.concatenate([s2 * jac_c, (2.0 * sigma * st.rxtrx_inv)[None]], axis=0)
    return vcov_varpar, jac


# ----------------------------------------------------------------------------------------------------------------
# Kenward-Roger (pbkrtest's vcovAdj and Lb_ddf), for designs with at most _KR_MAX_LEVELS random-effect levels


def _kr_ddf(L: np.ndarray, phi: np.ndarray, pmats: np.ndarray, w: np.ndarray) -> float:  # noqa: N803
    """pbkrtest's ddf_Lb: Kenward-Roger denominator df of one contrast (q = 1)."""
    theta = np.outer(L, L) / float(L @ phi @ L)
    u = np.einsum("ab,gbc,cd->gad", theta @ phi, pmats, phi)
    tr = np.einsum("gaa->g", u)
    a1 = float(tr @ w @ tr)
    a2 = float(np.einsum("ij,iab,jba->", w, u, u))
    b = (a1 + 6 * a2) / 2
    g = (2 * a1 - 5 * a2) / (3 * a2)
    c1, c2, c3 = g / (5 - 2 * g), (1 - g) / (5 - 2 * g), (3 - g) / (5 - 2 * g)
    v0 = 1 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1 - c2 * b, 1 - c3 * b
    rho = ((1 - a2) / v1) ** 2 * v0 / v2 if v1 != 0 else 0.0
    return 4 + 3 / (rho - 1)


def _kr_ftest(L: np.ndarray, beta: np.ndarray, phi_a: np.ndarray, phi: np.ndarray, pmats: np.ndarray,  # noqa: N803
              w: np.ndarray) -> FTest:
    """pbkrtest's .KR_adjust (KRmodcomp) for L beta = 0: scaled F on (q, ddf)."""
    q = int(np.linalg.matrix_rank(L))
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    u = np.einsum("ab,gbc,cd->gad", theta @ phi, pmats, phi)
    tr = np.einsum("gaa->g", u)
    a1 = float(tr @ w @ tr)
    a2 = float(np.einsum("ij,iab,jba->", w, u, u))
    b = (a1 + 6 * a2) / (2 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    den = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    v0 = 1 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1 - c2 * b, 1 - c3 * b
    x = 1 - a2 / q
    ratio = 1.0 if abs(x) < 1e-14 and abs(v1) < 1e-14 else x / v1
    rho = ratio**2 * v0 / v2 / q
    ddf = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(ddf - 2) < 0.01 else ddf * x / (ddf - 2)
    lb = L @ beta
    f = scaling * float(lb @ np.linalg.solve(L @ phi_a @ L.T, lb)) / q
    return FTest(f=f, ndf=q, ddf=float(ddf), p=float(stats.f.sf(f, q, ddf)))


def _kr_blocks(x: np.ndarray, codes: list[np.ndarray], sizes: list[int], theta: np.ndarray,
               sigma: float) -> tuple[np.ndarray, ...]:
    """Z'SZ, diag(Z'S^2 Z), tr(S^2), Z'SX, Z'S^2 X and X'S^2 X... for S = V^-1, by Woodbury with q x q algebra."""
    n = x.shape[0]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    z = sp.csr_matrix((np.ones(n * len(codes)), (np.tile(np.arange(n), len(codes)),
                       np.concatenate([c + o for c, o in zip(codes, offsets, strict=False)]))),
                      shape=(n, int(offsets[-1])))
    w = (z.T @ z).toarray()
    lam = np.concatenate([np.full(m, t) for m, t in zip(sizes, theta, strict=True)])
    a = lam[:, None] * w * lam[None, :] + np.eye(w.shape[0])
    k = lam[:, None] * _spd_inverse(a) * lam[None, :]  # Lambda A^-1 Lambda
    s2 = sigma**-2
    wk = w @ k
    wkw = wk @ w
    ztsz = s2 * (w - wkw)
    diag_zts2z = s2**2 * (np.diag(w) - 2 * np.diag(wkw) + np.einsum("ij,ji->i", wkw, wk.T))
    kw = k @ w
    tr_s2 = s2**2 * (n - 2 * np.trace(kw) + np.einsum("ij,ji->", kw, kw))
    u = s2 * (x - z @ (k @ (z.T @ x)))  # S X
    su = s2 * (u - z @ (k @ (z.T @ u)))  # S^2 X
    return ztsz, diag_zts2z, tr_s2, np.asarray(z.T @ u), np.asarray(z.T @ su), u, su, offsets


def _kenward_roger(x: np.ndarray, codes: list[np.ndarray], sizes: list[int], theta: np.ndarray, sigma: float,
                   phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pbkrtest's vcovAdj for scalar random intercepts: (adjusted vcov, P matrices, W)."""
    ztsz, dg2, tr_s2, ztu, ztsu, u, su, off = _kr_blocks(x, codes, sizes, theta, sigma)
    k = len(sizes)
    blk = [slice(off[i], off[i + 1]) for i in range(k)]
    zu = [ztu[b] for b in blk] + [u]  # G_r-side factor of S X: Z_r'U, and U itself for the residual
    pm = np.array([-(m.T @ m) for m in zu])
    g = k + 1

    def qq(r: int, s_: int) -> np.ndarray:
        if r < k and s_ < k:
            return zu[r].T @ ztsz[blk[r], blk[s_]] @ zu[s_]
        if r < k:
            return zu[r].T @ ztsu[blk[r]]
        if s_ < k:
            return ztsu[blk[s_]].T @ zu[s_]
        return u.T @ su

    def ktrace(r: int, s_: int) -> float:
        if r < k and s_ < k:
            return float(np.sum(ztsz[blk[r], blk[s_]] ** 2))
        if r == k and s_ == k:
            return float(tr_s2)
        return float(dg2[blk[min(r, s_)]].sum())

    q = {(r, s_): qq(r, s_) for r in range(g) for s_ in range(r, g)}
    ie2 = np.zeros((g, g))
    for r in range(g):
        for s_ in range(r, g):
            ie2[r, s_] = ie2[s_, r] = (ktrace(r, s_) - 2 * np.sum(phi * q[r, s_])
                                       + np.sum((phi @ pm[r]) * (pm[s_] @ phi)))
    condi = np.min(np.abs(np.linalg.eigvalsh(ie2)))
    ww = 2 * (np.linalg.inv(ie2) if condi > 1e-10 else np.linalg.pinv(ie2))
    ww = (ww + ww.T) / 2
    uu = np.zeros_like(phi)
    for r in range(g):
        for s_ in range(r + 1, g):
            uu += ww[r, s_] * (q[r, s_] - pm[r] @ phi @ pm[s_])
    uu = uu + uu.T
    for r in range(g):
        uu += ww[r, r] * (q[r, r] - pm[r] @ phi @ pm[r])
    return phi + 2 * phi @ uu @ phi, pm, ww


# ----------------------------------------------------------------------------------------------------------------
# Public entry point


def _encode_groups(groups: Mapping[str, np.ndarray], n: int) -> tuple[list[str], list[np.ndarray], list[int]]:
    if not groups:
        raise ValueError("fit_lmm needs at least one grouping factor")
    enc = []
    for name, values in groups.items():
        arr = np.asarray(values)
        if arr.shape != (n,):
            raise ValueError(f"grouping factor {name!r} has shape {arr.shape}, expected ({n},)")
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        if (codes < 0).any():
            raise ValueError(f"grouping factor {name!r} has missing values")
        if not 1 < len(uniques) < n:
            raise ValueError(f"grouping factor {name!r} has {len(uniques)} levels; lme4 needs 1 < levels < n")
        enc.append((str(name), codes.astype(np.int64), len(uniques)))
    enc.sort(key=lambda e: -e[2])  # elimination order: most levels first (stable for ties)
    return [e[0] for e in enc], [e[1] for e in enc], [e[2] for e in enc]


def _check_inputs(y: np.ndarray, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    yy = np.asarray(y, dtype=float).reshape(-1)
    xx = np.asarray(X, dtype=float)
    if xx.ndim != 2 or xx.shape[0] != yy.shape[0]:
        raise ValueError(f"X has shape {xx.shape} for {yy.shape[0]} observations")
    if not (np.isfinite(yy).all() and np.isfinite(xx).all()):
        raise ValueError("y and X must be finite (drop missing rows first)")
    if np.linalg.matrix_rank(xx) < xx.shape[1]:
        raise ValueError(f"fixed-effects design is rank deficient: columns {list(X.columns)}")
    return yy, xx


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    if threadpool_limits is None:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def fit_lmm(
    y: np.ndarray,
    X: pd.DataFrame,  # noqa: N803
    groups: Mapping[str, np.ndarray],
    *,
    reml: bool = True,
    df_method: str = "satterthwaite",
) -> LmmFit:
    """Fit ``y ~ X + (1|g1) + (1|g2) + ...`` by REML (or ML) with Satterthwaite df, matching lme4 + lmerTest.

    ``X`` is the full fixed design (include the intercept column); ``groups`` maps a factor name to a code array
    (ints or strings) of length n, each giving a random intercept. Raises ValueError on bad input (rank-deficient
    X, missing values, a factor with one level or as many levels as observations).
    """
    if df_method not in ("satterthwaite", "kenward-roger"):
        raise ValueError(f"df_method {df_method!r} not supported (use 'satterthwaite' or 'kenward-roger')")
    if df_method == "kenward-roger" and not reml:
        raise ValueError("Kenward-Roger df need a REML fit")
    with _single_threaded_blas():
        return _fit(y, X, groups, reml, df_method)


def _fit(y: np.ndarray, X: pd.DataFrame, groups: Mapping[str, np.ndarray], reml: bool,  # noqa: N803
         df_method: str) -> LmmFit:
    yy, xx = _check_inputs(y, X)
    names, codes, sizes = _encode_groups(groups, yy.shape[0])
    dev = _Deviance(yy, xx, codes, sizes, reml)
    theta, converged, message = _optimise(dev)
    st = dev.state(theta)
    sigma = float(np.sqrt(st.pwrss / dev.dof()))
    coef = dev.beta0 + st.delta
    vcov = sigma**2 * st.rxtrx_inv
    vcov_varpar, jac = _satterthwaite_parts(dev, theta, sigma)
    kr: dict[str, np.ndarray] = {}
    if df_method == "kenward-roger":
        if sum(sizes) > _KR_MAX_LEVELS:
            raise ValueError(f"Kenward-Roger needs dense algebra over all {sum(sizes)} random-effect levels "
                             f"(limit {_KR_MAX_LEVELS}); use df_method='satterthwaite'")
        vcov_adj, pm, ww = _kenward_roger(xx, codes, sizes, theta, sigma, vcov)
        kr = {"vcov_unadjusted": vcov, "kr_p": pm, "kr_w": ww}
        vcov = vcov_adj
        df = np.array([_kr_ddf(row, kr["vcov_unadjusted"], pm, ww) for row in np.eye(len(coef))])
    se = np.sqrt(np.diag(vcov))
    if df_method == "satterthwaite":
        grads = np.einsum("kii->ik", jac)
        denom = np.einsum("ik,kl,il->i", grads, vcov_varpar, grads)
        with np.errstate(divide="ignore"):
            df = np.where(denom > 0, 2.0 * se**4 / denom, np.inf)
    t = coef / se
    comps = {nm: float((th * sigma) ** 2) for nm, th in zip(names, theta, strict=True)}
    comps["residual"] = sigma**2
    order = [str(k) for k in groups]
    perm = [names.index(k) for k in order] + [len(names)]
    return LmmFit(
        names=tuple(str(c) for c in X.columns), coef=coef, se=se, df=df, t=t, p=2.0 * stats.t.sf(np.abs(t), df),
        vcov=vcov, variance_components={**{k: comps[k] for k in order}, "residual": sigma**2},
        reml_criterion=dev.profiled(theta), converged=converged, boundary=bool(np.any(theta < _BOUNDARY_TOL)),
        message=message, n_obs=int(yy.shape[0]), n_levels={nm: int(s) for nm, s in zip(names, sizes, strict=True)},
        engine=ENGINE, df_method=df_method,
        theta=theta[perm[:-1]], sigma=sigma, vcov_varpar=vcov_varpar[np.ix_(perm, perm)], vcov_jacobian=jac[perm],
        **kr,
    )
