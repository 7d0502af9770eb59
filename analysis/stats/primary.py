"""The declared primary analysis per design (docs/design.md section 7, issue 13): quality, reading time, preference.

Pure functions on the export tables (schema in :mod:`analysis.stats.trial`), no Django; the models per design and
the choices are written up in docs/primary_analysis.md. Entry point
:func:`primary_analysis` returns a :class:`PrimaryBlock`; ``PrimaryBlock.to_dict()`` is what ``results.json`` and
``python -m analysis trial`` put first.

Models (REML linear mixed models from :mod:`analysis.stats.lmm`, Satterthwaite df, t-based CIs and p):

- Quality (1-5, every report scored by every expert): score ~ arm + center (fixed stratum) with random intercepts
  that follow the design (:data:`QUALITY_TERMS`). Paired-by-case: readers are nested in arms, so the arm effect is a
  between-reader comparison: (1|reader) + (1|case) + (1|report = reader:case) + (1|expert). Case-randomised: the case
  is the randomised unit and readers read in both arms: (1|reader) + (1|reader:arm) + (1|case) + (1|expert).
  Crossover: readers and cases fully crossed with arms: (1|reader) + (1|case) + (1|reader:arm) + (1|case:arm) +
  (1|reader:case) + (1|report = reader:case:arm) + (1|expert).
- Reading time: the same on log(active seconds) without the expert term (one observation per read, so a read-level
  term is the residual); estimate exp(beta) = ratio of geometric means, percent reduction 100 (1 - ratio).
- Preference: the published quantity, the share of compared report pairs (paired-by-case: cases) where at least k
  experts (the trial's majority) prefer the assisted report, ties and "no preference" counting as not preferring.
  When ties are possible its null value is not 0.5: under "no effect of the arm" the two reports of a pair are
  exchangeable, so the null share is the mean of (h_assisted + h_control) / 2, h = "at least k prefer this report".
  The test is on the excess h_assisted - h_control (per pair, halved), the CI on the share; both from an
  intercept-only linear mixed model with the design's reader (and case) random intercepts. The
  decisive-pair rate (share of decisive expert judgements favouring assisted, null 0.5) uses the same model on
  (wins - losses) / 2 for the test and on the ratio estimator's linearisation for the CI.

Why not a permutation of readers' arm labels: in paired-by-case every case compares one assisted with one control
reader, so a relabelling leaves about half of the cases with two readers of one arm and the permutation
distribution no longer matches the randomisation (each reader's effect is seen once instead of twice; few readers
per center also make it coarse). In simulation (benchmarks/preference_null.py, docs/primary_analysis.md) its type-I
error ranged from 2% to 13% (12.7% at the published size), and 30% in a toy model with strong reader effects, while
the mixed-model test stayed at 3-4%. A reader-level randomisation test on least-squares reader strengths is
available as an opt-in sensitivity analysis (``n_permutations`` > 0, ``preference.details.randomisation_test``);
it is not calibrated either (2% to 9%) and is not used for inference.

Convergence: a fit that does not converge or sits on the boundary (a variance component estimated at ~0, lme4's
singular fit) is refitted without its smallest variance component (the declared fallback, repeated while needed);
the steps are recorded in ``fallback`` and the ``converged`` / ``boundary`` flags describe the fit that is reported.

Multiplicity: fixed-sequence testing at two-sided alpha (default 0.05) in the order quality -> reading time ->
preference; a later test is confirmatory only if every earlier one rejected (each result says so).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy

from . import lmm
from ._result import UNSET, jsonable

PRIMARY_VERSION = "1.0"
DESIGNS = ("paired_by_case", "case_randomised", "crossover")
HIERARCHY = ("quality", "reading_time", "preference")
DESCRIPTIVE_LABEL = "descriptive only: does not account for readers (case-level pairs; not a valid test here)"

Term = tuple[str, tuple[str, ...]]
DF_METHODS = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}
#: df method of the fits in the current primary_analysis call (Satterthwaite by default; Kenward-Roger optional)
_df_method: ContextVar[str] = ContextVar("df_method", default="satterthwaite")


def _df_label() -> str:
    return DF_METHODS[_df_method.get()]

#: Random intercepts per design (name, columns whose combination defines a level), in the order dropped last-first
#: when a fit fails outright. Terms that are not identifiable in the data (a single level, one level per
#: observation, or the same partition as an earlier term) are left out before fitting and listed.
QUALITY_TERMS: dict[str, list[Term]] = {
    "paired_by_case": [("reader", ("reader",)), ("case", ("case",)), ("report", ("reader", "case")),
                       ("expert", ("expert",))],
    "case_randomised": [("reader", ("reader",)), ("reader:arm", ("reader", "arm")), ("case", ("case",)),
                        ("report", ("reader", "case")), ("expert", ("expert",))],
    "crossover": [("reader", ("reader",)), ("case", ("case",)), ("reader:arm", ("reader", "arm")),
                  ("case:arm", ("case", "arm")), ("reader:case", ("reader", "case")),
                  ("report", ("reader", "case", "arm")), ("expert", ("expert",))],
}
TIME_TERMS: dict[str, list[Term]] = {
    "paired_by_case": [("reader", ("reader",)), ("case", ("case",))],
    "case_randomised": [("reader", ("reader",)), ("reader:arm", ("reader", "arm")), ("case", ("case",))],
    "crossover": [("reader", ("reader",)), ("case", ("case",)), ("reader:arm", ("reader", "arm")),
                  ("case:arm", ("case", "arm")), ("reader:case", ("reader", "case"))],
}
#: Preference (one row per compared pair of reports): paired-by-case pairs an assisted with a control reader;
#: crossover usually pairs one reader's two reports of a case (then reader_control duplicates reader_assisted and is
#: left out), and a case compared more than once gets its own term.
PREFERENCE_TERMS: dict[str, list[Term]] = {
    "paired_by_case": [("reader_assisted", ("reader_assisted",)), ("reader_control", ("reader_control",))],
    "case_randomised": [("reader_assisted", ("reader_assisted",)), ("reader_control", ("reader_control",))],
    "crossover": [("reader_assisted", ("reader_assisted",)), ("reader_control", ("reader_control",)),
                  ("case", ("case",))],
}
DESIGN_TEXT = {
    "paired_by_case": "paired by case: each case is read once in each arm at its center, by readers randomised to "
                      "arms within center (readers nested in arms; the arm effect is a between-reader comparison)",
    "case_randomised": "case-randomised: each case is read in one arm; readers read in both arms",
    "crossover": "crossover: every reader reads every case in both arms (readers and cases crossed with arms)",
}


@dataclass(frozen=True)
class _Details:
    """Base of the endpoint-specific numbers of a :class:`PrimaryResult`. ``to_dict`` is the results.json form: the
    fields in declaration order, a field left :data:`UNSET` left out (the dict these classes replaced did not
    have the key)."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is UNSET:
                continue
            out[f.name] = jsonable(value.to_dict() if isinstance(value, _Details) else
                                   asdict(value) if is_dataclass(value) else value)
        return out

    def __getitem__(self, key: str) -> Any:
        """Dictionary-style access to a field that is set, for notebook convenience."""
        value = getattr(self, key)
        if value is UNSET:
            raise KeyError(key)
        return value


@dataclass(frozen=True)
class FitFlags:
    """``converged`` / ``boundary`` of a fit (the first, declared fit before any fallback, or the share model);
    ``fallback`` where the flags belong to a fit that may have dropped variance components."""

    converged: bool | None
    boundary: bool | None


@dataclass(frozen=True)
class ShareFit(FitFlags):
    fallback: str | None = None


@dataclass(frozen=True, kw_only=True)
class ArmFitDetails(_Details):
    """Numbers of an arm-effect mixed model (quality and reading time): the arm coefficient's ``se`` and ``t``,
    ``n_obs`` rows fitted, the fitted ``model`` formula, the ``terms_not_identifiable`` in the data, the declared
    model's ``initial_fit`` flags and the engine's ``engine_message``."""

    se: float
    t: float
    n_obs: int
    model: str
    terms_not_identifiable: list[str]
    initial_fit: FitFlags
    engine_message: str | None


@dataclass(frozen=True, kw_only=True)
class QualityDetails(ArmFitDetails):
    """The quality endpoint: ``n_experts`` whose scores entered, ``scores_without_reader`` left out because their
    report's reader is unknown."""

    n_experts: int = UNSET
    scores_without_reader: int = UNSET


@dataclass(frozen=True, kw_only=True)
class ReadingTimeDetails(ArmFitDetails):
    """The reading-time endpoint on the model's log scale (``log_ratio`` with ``log_ratio_ci``/``log_ratio_se``),
    the ``percent_reduction`` 100 (1 - ratio) with its CI, and ``n_reads`` analysed."""

    log_ratio: float = UNSET
    log_ratio_ci: tuple[float | None, float | None] = UNSET
    log_ratio_se: float = UNSET
    percent_reduction: float = UNSET
    percent_reduction_ci: tuple[float | None, float | None] = UNSET
    n_reads: int = UNSET


@dataclass(frozen=True, kw_only=True)
class RandomisationTest(_Details):
    """The reader-level randomisation test (:func:`reader_randomisation_test`; a sensitivity analysis): ``statistic``
    the center-weighted difference of mean reader strengths, two-sided ``p`` over ``n_permutations`` relabellings of
    ``n_readers`` readers; only ``note`` (and ``p`` None) when the readers are unknown."""

    method: str
    statistic: float = UNSET
    p: float | None = None
    n_permutations: int = UNSET
    n_readers: int = UNSET
    note: str = UNSET


@dataclass(frozen=True, kw_only=True)
class PreferenceDetails(_Details):
    """The preference endpoint: ``k`` experts needed ("majority" when the panel's strict majority), ``n_pairs``
    compared report pairs, ``n_experts`` the largest panel; ``share_control`` (pairs where k prefer the control
    report), ``null_share`` and ``excess`` = share - null share with ``excess_ci`` (the test's model);
    ``share_model_estimate`` and ``share_fit`` of the share's own model (its CI); the judgements (``n_judgements``,
    ``n_decisive``, ``ties``, ``wins``, ``losses``) and the decisive-pair rate wins / (wins + losses) with its CI,
    p and df (df only when its model was fitted); the test model's formula and flags as in
    :class:`ArmFitDetails`; ``randomisation_test`` when asked for (``n_permutations`` > 0, not in crossover)."""

    k: int | str
    n_pairs: int
    n_experts: int
    share_control: float
    null_share: float
    excess: float
    excess_ci: tuple[float | None, float | None]
    share_model_estimate: float
    share_fit: ShareFit
    n_judgements: int
    n_decisive: int
    ties: int
    wins: int
    losses: int
    decisive_rate: float | None
    decisive_rate_ci: tuple[float | None, float | None]
    decisive_rate_p: float | None
    decisive_rate_df: float | None = UNSET
    model: str
    terms_not_identifiable: list[str]
    initial_fit: FitFlags
    engine_message: str | None
    randomisation_test: RandomisationTest = UNSET


PrimaryDetails = QualityDetails | ReadingTimeDetails | ArmFitDetails | PreferenceDetails


@dataclass(frozen=True)
class PrimaryResult:
    """One primary endpoint.

    ``estimate`` and ``ci`` (low, high) are on the reported scale: quality difference assisted - control (1-5
    points); reading time ratio of geometric means assisted / control; preference share of pairs where at least k
    experts prefer the assisted report. ``p`` and ``df`` belong to the endpoint's test (Satterthwaite df);
    ``method`` writes the model out. ``n_cases`` cases analysed, ``n_readers`` readers per arm,
    ``variance_components`` the fitted variances (incl. ``residual``) of the reported fit. ``converged`` /
    ``boundary`` describe that fit; ``fallback`` says which variance components were dropped and why (None when the
    declared model was fitted as is). ``confirmatory`` is the fixed-sequence verdict, explained in
    ``hierarchy_note``. ``details`` holds the endpoint-specific numbers: :class:`QualityDetails`,
    :class:`ReadingTimeDetails` or :class:`PreferenceDetails` (None when the endpoint could not be estimated).
    ``note`` says why an endpoint could not be estimated (then the numbers are None). ``to_dict`` is the
    results.json form (``details`` an empty object when there are none).
    """

    endpoint: str
    estimate: float | None
    ci: tuple[float | None, float | None]
    p: float | None
    df: float | None
    method: str
    n_cases: int
    n_readers: dict[str, int]
    variance_components: dict[str, float]
    converged: bool | None
    boundary: bool | None
    fallback: str | None
    conf_level: float = 0.95
    hierarchy_position: int = 0
    confirmatory: bool = False
    hierarchy_note: str = ""
    details: PrimaryDetails | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["details"] = {} if self.details is None else self.details.to_dict()
        return jsonable(out)


@dataclass(frozen=True)
class SubgroupEffect:
    """The arm effect in one level of a subgroup (quality: difference; reading time: ratio of geometric means)."""

    estimate: float | None
    ci: tuple[float | None, float | None]
    n_cases: int


@dataclass(frozen=True)
class InteractionTerm:
    """One arm x level coefficient: how the level's arm effect differs from the reference level's (model scale)."""

    estimate: float
    p: float
    df: float


@dataclass(frozen=True)
class InteractionTest:
    """Joint F test of all arm x subgroup coefficients (lmerTest's contestMD)."""

    f: float
    ndf: int
    ddf: float
    p: float


@dataclass(frozen=True)
class SubgroupFit:
    """One arm x subgroup interaction model: the fitted formula, the arm effect per level, the interaction
    coefficients against ``reference_level`` and their joint test, the fit's flags; or only ``note`` when it could
    not be fitted. ``to_dict`` is the results.json form (the coefficients under ``interaction_vs_<reference>``)."""

    model: str | None = None
    effects: dict[str, SubgroupEffect] = field(default_factory=dict)
    reference_level: str | None = None
    interactions: dict[str, InteractionTerm] = field(default_factory=dict)
    interaction_test: InteractionTest | None = None
    converged: bool | None = None
    boundary: bool | None = None
    fallback: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.model is None:
            return {"note": self.note}
        return jsonable({
            "model": self.model, "effects": {lv: asdict(e) for lv, e in self.effects.items()},
            f"interaction_vs_{self.reference_level}": {lv: asdict(t) for lv, t in self.interactions.items()},
            "interaction_test": None if self.interaction_test is None else asdict(self.interaction_test),
            "converged": self.converged, "boundary": self.boundary, "fallback": self.fallback})


@dataclass(frozen=True)
class SubgroupModels:
    """The arm x subgroup models by center and by reader experience, each keyed by endpoint (quality,
    reading_time); descriptive (``note``)."""

    note: str
    center: dict[str, SubgroupFit] = field(default_factory=dict)
    reader_experience: dict[str, SubgroupFit] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"note": self.note, **{by: {name: fit.to_dict() for name, fit in getattr(self, by).items()}
                                      for by in ("center", "reader_experience")}}


@dataclass(frozen=True)
class PrimaryBlock:
    """The declared primary analysis of one trial: three :class:`PrimaryResult` in the testing hierarchy.

    ``hierarchy`` lists the fixed testing sequence, ``alpha`` its two-sided level; ``engine`` names the mixed-model
    engine and versions; ``methods`` is the methods paragraph (plain text); ``secondary_note`` explains why the
    case-level paired tests elsewhere in the results are descriptive; ``subgroups`` holds arm-by-subgroup
    interaction models (descriptive); ``warnings`` anything the reader of the table must know.
    """

    design: str
    arms: dict[str, str | None]
    quality: PrimaryResult
    reading_time: PrimaryResult
    preference: PrimaryResult
    hierarchy: tuple[str, ...] = HIERARCHY
    hierarchy_text: str = ""
    alpha: float = 0.05
    engine: str = ""
    methods: str = ""
    secondary_note: str = DESCRIPTIVE_LABEL
    subgroups: SubgroupModels | dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # Field by field, each result through its own to_dict (dataclasses.asdict would copy the details' UNSET
        # fields instead of leaving them out).
        return jsonable({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class FitOutcome:
    """A mixed-model fit after the declared fallback: the reported fit (or None), the terms it kept, the steps."""

    fit: Any
    terms: tuple[str, ...]
    steps: tuple[str, ...]
    initial_converged: bool | None
    initial_boundary: bool | None
    error: str | None = None

    @property
    def fallback(self) -> str | None:
        return "; ".join(self.steps) if self.steps else None


# -- helpers ------------------------------------------------------------------------------------------------------
def engine_version() -> str:
    """The engine and library versions named in the methods text."""
    eng = getattr(lmm, "ENGINE", None) or getattr(lmm, "__version__", None) or "analysis.stats.lmm"
    return (f"{eng} (REML, {_df_label()} df); analysis.stats.primary {PRIMARY_VERSION}; numpy {np.__version__}, "
            f"scipy {scipy.__version__}, pandas {pd.__version__}")


def _codes(df: pd.DataFrame, cols: tuple[str, ...]) -> np.ndarray:
    return df.groupby(list(cols), sort=True, dropna=False).ngroup().to_numpy()


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    return na == nb and len(np.unique(a.astype(np.int64) * nb + b)) == na


def identifiable_groups(df: pd.DataFrame, terms: list[Term]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Level codes per random term that can be estimated in ``df``, and notes on the terms left out."""
    groups: dict[str, np.ndarray] = {}
    notes: list[str] = []
    n = len(df)
    for name, cols in terms:
        if not set(cols) <= set(df.columns) or df[list(cols)].isna().any().any():
            notes.append(f"{name}: not in the data")
            continue
        codes = _codes(df, cols)
        levels = int(codes.max()) + 1 if n else 0
        if levels < 2:
            notes.append(f"{name}: a single level")
        elif levels >= n:
            notes.append(f"{name}: one level per observation (the residual)")
        elif any(_same_partition(codes, g) for g in groups.values()):
            twin = next(k for k, g in groups.items() if _same_partition(codes, g))
            notes.append(f"{name}: same levels as {twin}")
        else:
            groups[name] = codes
    return groups, notes


def fit_with_fallback(y: np.ndarray, X: pd.DataFrame, groups: Mapping[str, np.ndarray],  # noqa: N803
                      order: list[str] | None = None) -> FitOutcome:
    """Fit the LMM; while it fails, does not converge or is singular, drop the smallest variance component
    (or, when the fit failed outright, the last declared term) and refit. Keeps at least one random term."""
    terms = dict(groups)
    order = order or list(terms)
    steps: list[str] = []
    first: tuple[bool | None, bool | None] | None = None
    fit, error = None, None
    while terms:
        try:
            fit, error = lmm.fit_lmm(np.asarray(y, float), X, terms, reml=True, df_method=_df_method.get()), None
        except Exception as exc:  # noqa: BLE001 - any engine failure triggers the declared fallback
            fit, error = None, f"{type(exc).__name__}: {exc}"
        if first is None:
            first = (None, None) if fit is None else (bool(fit.converged), bool(fit.boundary))
        if fit is not None and fit.converged and not fit.boundary:
            break
        if len(terms) == 1:
            break
        drop, why = _term_to_drop(fit, terms, order, error)
        steps.append(f"{why}: dropped ({drop}) and refitted")
        del terms[drop]
    if fit is not None and steps:
        steps.append("refit converged" if fit.converged and not fit.boundary else
                     f"refit still {'not converged' if not fit.converged else 'on the boundary'}")
    return FitOutcome(fit=fit, terms=tuple(terms), steps=tuple(steps), initial_converged=(first or (None,))[0],
                      initial_boundary=(first or (None, None))[1], error=error)


def _term_to_drop(fit: Any, terms: dict[str, np.ndarray], order: list[str], error: str | None) -> tuple[str, str]:
    if fit is None:
        drop = [t for t in order if t in terms][-1]
        return drop, f"fit failed ({error})"
    vc = {k: float(v) for k, v in fit.variance_components.items() if k in terms}
    drop = min(vc, key=lambda k: vc[k]) if vc else list(terms)[-1]
    state = "not converged" if not fit.converged else "boundary (singular) fit"
    return drop, f"{state}, smallest variance component {drop} = {vc.get(drop, float('nan')):.3g}"


def _design_matrix(df: pd.DataFrame, arm: bool = True) -> pd.DataFrame:
    """Intercept, the arm indicator (1 = assisted) and treatment-coded center dummies (fixed stratum)."""
    X = pd.DataFrame({"(Intercept)": np.ones(len(df))}, index=df.index)  # noqa: N806
    if arm:
        X["arm"] = df["assisted"].astype(float)
    if "center" in df and df["center"].nunique() > 1:
        for c in sorted(df["center"].astype(str).unique())[1:]:
            X[f"center[{c}]"] = (df["center"].astype(str) == c).astype(float)
    return X.reset_index(drop=True)


def _formula(lhs: str, fixed: str, terms: tuple[str, ...] | list[str]) -> str:
    return f"{lhs} ~ {fixed}" + "".join(f" + (1|{t})" for t in terms)


def _declared(lhs: str, fixed: str, terms: list[Term]) -> str:
    return _formula(lhs, fixed, [t for t, _ in terms])


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


def _exp(x: float) -> float | None:
    """exp for a ratio scale; None where the log-scale bound is not finite or overflows (a subgroup with almost no
    degrees of freedom has a CI bound of +-1e300: "no finite bound", not a crash)."""
    if x is None or not math.isfinite(x) or x > 700:
        return None
    return math.exp(x)


def _readers_per_arm(df: pd.DataFrame, assisted: str, control: str) -> dict[str, int]:
    if df.empty or "reader" not in df:
        return {assisted: 0, control: 0}
    return {arm: int(df.loc[df["arm"] == arm, "reader"].nunique()) for arm in (assisted, control)}


def _empty(endpoint: str, method: str, note: str, n_readers: dict[str, int]) -> PrimaryResult:
    return PrimaryResult(endpoint=endpoint, estimate=None, ci=(None, None), p=None, df=None, method=method,
                         n_cases=0, n_readers=n_readers, variance_components={}, converged=None, boundary=None,
                         fallback=None, note=note)


def _vc(fit: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in (fit.variance_components or {}).items()} if fit is not None else {}


def _arm_fit_fields(d: ArmFitDetails) -> dict[str, Any]:
    return {f.name: getattr(d, f.name) for f in fields(ArmFitDetails)}


def _fit_details(out: FitOutcome, lhs: str, fixed: str, not_ident: list[str]) -> dict[str, Any]:
    return {"model": _formula(lhs, fixed, out.terms), "terms_not_identifiable": not_ident,
            "initial_fit": FitFlags(converged=out.initial_converged, boundary=out.initial_boundary),
            "engine_message": getattr(out.fit, "message", out.error)}


# -- data ---------------------------------------------------------------------------------------------------------
def _clean(t: pd.DataFrame | None) -> pd.DataFrame:
    t = t.copy() if isinstance(t, pd.DataFrame) else pd.DataFrame()
    for c in ("case_code", "center", "reader", "expert", "arm", "arm_a", "arm_b", "reader_a", "reader_b"):
        if c in t:
            t[c] = t[c].astype("string")
    if "submitted" in t:
        t = t[pd.to_numeric(t["submitted"], errors="coerce").fillna(0) > 0]
    return t


def _reader_lookup(reads: pd.DataFrame) -> pd.DataFrame:
    """case_code, arm, _reader: the (case, arm) pairs read by exactly one reader."""
    if reads.empty or not {"case_code", "arm", "reader"} <= set(reads.columns):
        return pd.DataFrame(columns=["case_code", "arm", "_reader"])
    r = reads[["case_code", "arm", "reader"]].dropna().drop_duplicates()
    r = r[~r.duplicated(["case_code", "arm"], keep=False)]
    return r.rename(columns={"reader": "_reader"})


def _report_reader(ratings: pd.DataFrame, slot: str, lookup: pd.DataFrame) -> pd.Series:
    """The reader of report A or B: the ``reader_a``/``reader_b`` column, else looked up in reads by (case, arm)."""
    col = f"reader_{slot}"
    given = (ratings[col] if col in ratings else pd.Series(pd.NA, index=ratings.index)).astype("string")
    given = given.mask(given.str.strip() == "")
    if given.notna().all() or lookup.empty:
        return given
    keys = pd.DataFrame({"case_code": ratings["case_code"].to_numpy(), "arm": ratings[f"arm_{slot}"].to_numpy()})
    looked = keys.merge(lookup, on=["case_code", "arm"], how="left")["_reader"].astype("string")
    return given.fillna(pd.Series(looked.to_numpy(), index=ratings.index, dtype="string"))


def quality_frame(tables: Mapping[str, pd.DataFrame], assisted: str, control: str) -> pd.DataFrame:
    """One row per (expert judgement, report): case, center, expert, arm, assisted (0/1), reader, score."""
    ratings, reads = _clean(tables.get("ratings")), _clean(tables.get("reads"))
    cols = ["case", "center", "expert", "arm", "assisted", "reader", "score"]
    if ratings.empty or not {"case_code", "arm_a", "quality_a"} <= set(ratings.columns):
        return pd.DataFrame(columns=cols)
    lookup = _reader_lookup(reads)
    parts = []
    for slot in ("a", "b"):
        if f"arm_{slot}" not in ratings or f"quality_{slot}" not in ratings:
            continue
        parts.append(pd.DataFrame({
            "case": ratings["case_code"], "center": ratings.get("center", pd.Series("all", index=ratings.index)),
            "expert": ratings.get("expert", pd.Series("expert", index=ratings.index)),
            "arm": ratings[f"arm_{slot}"], "reader": _report_reader(ratings, slot, lookup),
            "score": pd.to_numeric(ratings[f"quality_{slot}"], errors="coerce")}))
    q = pd.concat(parts, ignore_index=True)
    q = q[q["arm"].isin([assisted, control]) & q["score"].notna() & q["case"].notna()].copy()
    q["assisted"] = (q["arm"] == assisted).astype(int)
    q["center"] = q["center"].fillna("all")
    return q[cols].reset_index(drop=True)


def time_frame(tables: Mapping[str, pd.DataFrame], assisted: str, control: str) -> pd.DataFrame:
    """One row per submitted read with positive active seconds: case, center, reader, arm, assisted, log_seconds."""
    reads = _clean(tables.get("reads"))
    cols = ["case", "center", "reader", "arm", "assisted", "seconds", "log_seconds", "reader_experience"]
    if reads.empty or not {"case_code", "arm", "active_seconds"} <= set(reads.columns):
        return pd.DataFrame(columns=cols)
    r = pd.DataFrame({"case": reads["case_code"], "center": reads.get("center", "all"),
                      "reader": reads.get("reader"), "arm": reads["arm"],
                      "seconds": pd.to_numeric(reads["active_seconds"], errors="coerce"),
                      "reader_experience": reads.get("reader_experience")})
    r = r[r["arm"].isin([assisted, control]) & (r["seconds"] > 0) & r["case"].notna()].copy()
    r["assisted"] = (r["arm"] == assisted).astype(int)
    r["log_seconds"] = np.log(r["seconds"].astype(float))
    r["center"] = r["center"].fillna("all")
    return r[cols].reset_index(drop=True)


def preference_frame(tables: Mapping[str, pd.DataFrame], assisted: str, control: str, majority_k: int | None
                     ) -> pd.DataFrame:
    """One row per compared pair of reports (case, assisted reader, control reader): the experts' counts.

    Columns: case, center, reader_assisted, reader_control, n_experts, wins (experts preferring the assisted report),
    losses (preferring the control report), ties, k, h (wins >= k), h_control (losses >= k).
    """
    ratings, reads = _clean(tables.get("ratings")), _clean(tables.get("reads"))
    cols = ["case", "center", "reader_assisted", "reader_control", "n_experts", "wins", "losses", "ties", "k", "h",
            "h_control"]
    if ratings.empty or not {"case_code", "arm_a", "arm_b", "preference"} <= set(ratings.columns):
        return pd.DataFrame(columns=cols)
    lookup = _reader_lookup(reads)
    r = ratings[ratings["preference"].notna()].copy()
    a_first = (r["arm_a"] == assisted) & (r["arm_b"] == control)
    b_first = (r["arm_b"] == assisted) & (r["arm_a"] == control)
    r = r[a_first | b_first].copy()
    if r.empty:
        return pd.DataFrame(columns=cols)
    a_first = a_first.loc[r.index]
    ra, rb = _report_reader(r, "a", lookup), _report_reader(r, "b", lookup)
    pref = r["preference"].astype(str).str.strip().str.upper()
    p = pd.DataFrame({
        "case": r["case_code"], "center": r.get("center", pd.Series("all", index=r.index)).fillna("all"),
        "reader_assisted": ra.where(a_first, rb).fillna("?"), "reader_control": rb.where(a_first, ra).fillna("?"),
        "win": np.where(a_first, pref == "A", pref == "B"), "loss": np.where(a_first, pref == "B", pref == "A"),
    })
    g = p.groupby(["case", "center", "reader_assisted", "reader_control"], sort=True, observed=True)
    u = g.agg(n_experts=("win", "size"), wins=("win", "sum"), losses=("loss", "sum")).reset_index()
    u["ties"] = u["n_experts"] - u["wins"] - u["losses"]
    u["k"] = int(majority_k) if majority_k else u["n_experts"] // 2 + 1
    u["h"] = (u["wins"] >= u["k"]).astype(float)
    u["h_control"] = (u["losses"] >= u["k"]).astype(float)
    return u[cols]


# -- endpoints ----------------------------------------------------------------------------------------------------
def _arm_result(endpoint: str, df: pd.DataFrame, y: np.ndarray, lhs: str, terms: list[Term], method: str,
                assisted: str, control: str, conf_level: float) -> tuple[PrimaryResult, Any]:
    n_readers = _readers_per_arm(df, assisted, control)
    if df.empty or df["assisted"].nunique() < 2:
        return _empty(endpoint, method, "no data in both arms", n_readers), None
    groups, not_ident = identifiable_groups(df, terms)
    if not groups:
        return _empty(endpoint, method, "no identifiable random effect (too few readers or cases)", n_readers), None
    X = _design_matrix(df)  # noqa: N806
    out = fit_with_fallback(y, X, groups, order=[t for t, _ in terms])
    if out.fit is None:
        return _empty(endpoint, method, f"model could not be fitted: {out.error}", n_readers), None
    c = out.fit.coef_test("arm", conf_level)
    details = ArmFitDetails(se=c.se, t=c.t, n_obs=len(df), **_fit_details(out, lhs, "arm + center", not_ident))
    res = PrimaryResult(endpoint=endpoint, estimate=c.estimate, ci=(c.ci_low, c.ci_high), p=c.p, df=c.df,
                        method=method, n_cases=int(df["case"].nunique()), n_readers=n_readers,
                        variance_components=_vc(out.fit), converged=bool(out.fit.converged),
                        boundary=bool(out.fit.boundary), fallback=out.fallback, conf_level=conf_level,
                        details=details)
    return res, out.fit


def quality_primary(tables: Mapping[str, pd.DataFrame], *, design: str, assisted: str, control: str,
                    conf_level: float = 0.95, frame: pd.DataFrame | None = None) -> PrimaryResult:
    """Quality difference assisted - control from the design's linear mixed model (module docstring). ``frame``:
    :func:`quality_frame` of these tables when the caller has it already."""
    terms = QUALITY_TERMS[design]
    q = quality_frame(tables, assisted, control) if frame is None else frame
    method = (f"Linear mixed model (REML), {_declared('score', 'arm + center', terms)}; "
              f"{'report = reader:case:arm' if design == 'crossover' else 'report = reader:case'} (one report per "
              "read); center fixed (stratum); "
              f"{_df_label()} df, t-based CI and p for the arm effect ({assisted} - {control}). Design: "
              f"{DESIGN_TEXT[design]}.")
    unknown = int(q["reader"].isna().sum())
    if 0 < unknown < len(q):  # reports whose reader is unknown cannot enter the reader terms
        q = q[q["reader"].notna()].reset_index(drop=True)
    res, _ = _arm_result("quality", q, q["score"].to_numpy(float), "score", terms, method, assisted, control,
                         conf_level)
    if res.estimate is not None:
        res = replace(res, details=QualityDetails(**_arm_fit_fields(res.details),
                                                  n_experts=int(q["expert"].nunique()), scores_without_reader=unknown))
    return res


def reading_time_primary(tables: Mapping[str, pd.DataFrame], *, design: str, assisted: str, control: str,
                         conf_level: float = 0.95, frame: pd.DataFrame | None = None) -> PrimaryResult:
    """Ratio of geometric means of active reading time, assisted / control, from the LMM on log seconds. ``frame``:
    :func:`time_frame` of these tables when the caller has it already."""
    terms = TIME_TERMS[design]
    r = time_frame(tables, assisted, control) if frame is None else frame
    method = (f"Linear mixed model (REML) on log active seconds, {_declared('log(seconds)', 'arm + center', terms)}"
              f"; center fixed; {_df_label()} df; ratio of geometric means exp(arm effect) ({assisted} / {control}) "
              f"with t-based CI; percent reduction 100 (1 - ratio). Design: {DESIGN_TEXT[design]}.")
    res, _ = _arm_result("reading_time", r, r["log_seconds"].to_numpy(float), "log(seconds)", terms, method,
                         assisted, control, conf_level)
    if res.estimate is None:
        return res
    lo, hi = res.ci
    ratio = math.exp(res.estimate)
    details = ReadingTimeDetails(**_arm_fit_fields(res.details), log_ratio=res.estimate, log_ratio_ci=res.ci,
                                 log_ratio_se=res.details.se, percent_reduction=100 * (1 - ratio),
                                 percent_reduction_ci=(100 * (1 - math.exp(hi)), 100 * (1 - math.exp(lo))),
                                 n_reads=len(r))
    return replace(res, estimate=ratio, ci=(math.exp(lo), math.exp(hi)), details=details)


def _intercept_model(df: pd.DataFrame, y: np.ndarray, groups: dict[str, np.ndarray], order: list[str],
                     conf_level: float) -> tuple[Any, FitOutcome]:
    """Mean of ``y`` over pairs with the design's random intercepts. No center term: readers are nested in centers,
    so a fixed center effect would spend the few reader degrees of freedom, and the null holds in every center."""
    X = pd.DataFrame({"(Intercept)": np.ones(len(df))})  # noqa: N806
    out = fit_with_fallback(y, X, groups, order=order)
    if out.fit is None:
        return None, out
    return out.fit.coef_test("(Intercept)", conf_level), out


def preference_primary(tables: Mapping[str, pd.DataFrame], *, design: str, assisted: str, control: str,
                       majority_k: int | None = None, conf_level: float = 0.95, n_permutations: int = 0,
                       rng: np.random.Generator | None = None) -> PrimaryResult:
    """Share of compared pairs where at least k experts prefer the assisted report, tested against its null share
    (which accounts for ties), and the decisive-pair rate (module docstring)."""
    terms = PREFERENCE_TERMS[design]
    u = preference_frame(tables, assisted, control, majority_k)
    k_txt = str(majority_k) if majority_k else "a strict majority of the panel"
    method = (f"Share of compared report pairs in which at least k = {k_txt} experts prefer the {assisted} report "
              "(ties and no preference count as not preferring). Null share = mean of (h_assisted + h_control)/2 "
              "(the two reports are exchangeable without an arm effect; not 0.5 when ties are possible). Test of "
              f"share = null share and CI of the share from linear mixed models (REML, {_df_label()} df) on the "
              f"pair-level indicators with random intercepts {', '.join(t for t, _ in terms)} (no center term: readers "
              "are nested in centers). Decisive-pair rate: wins / (wins + losses), null 0.5, same models on "
              "(wins - losses) / 2 (test) and on the ratio's linearisation (CI).")
    n_readers = {assisted: int(u.loc[u["reader_assisted"] != "?", "reader_assisted"].nunique()),
                 control: int(u.loc[u["reader_control"] != "?", "reader_control"].nunique())}
    if u.empty:
        return _empty("preference", method, "no pairwise preferences between the arms", n_readers)
    groups, not_ident = identifiable_groups(u, terms)
    if not groups:
        return _empty("preference", method, "no identifiable reader effect (readers unknown or too few)", n_readers)
    order = [t for t, _ in terms]
    excess, out = _intercept_model(u, ((u["h"] - u["h_control"]) / 2).to_numpy(float), groups, order, conf_level)
    share_c, out_share = _intercept_model(u, u["h"].to_numpy(float), groups, order, conf_level)
    if excess is None or share_c is None:
        return _empty("preference", method, f"model could not be fitted: {out.error or out_share.error}", n_readers)
    share, share_ctl = float(u["h"].mean()), float(u["h_control"].mean())
    randomisation = (reader_randomisation_test(u, n_permutations=n_permutations, rng=rng)
                     if n_permutations > 0 and design != "crossover" else UNSET)
    details = PreferenceDetails(
        k=majority_k or "majority", n_pairs=len(u), n_experts=int(u["n_experts"].max()), share_control=share_ctl,
        null_share=(share + share_ctl) / 2, excess=(share - share_ctl) / 2, excess_ci=(excess.ci_low, excess.ci_high),
        share_model_estimate=share_c.estimate,
        share_fit=ShareFit(converged=bool(out_share.fit.converged), boundary=bool(out_share.fit.boundary),
                           fallback=out_share.fallback),
        **_decisive(u, groups, order, conf_level), **_fit_details(out, "excess", "1", not_ident),
        randomisation_test=randomisation)
    half = (share_c.ci_high - share_c.ci_low) / 2
    return PrimaryResult(endpoint="preference", estimate=share, ci=(max(0.0, share - half), min(1.0, share + half)),
                         p=excess.p, df=excess.df, method=method, n_cases=int(u["case"].nunique()),
                         n_readers=n_readers, variance_components=_vc(out.fit), converged=bool(out.fit.converged),
                         boundary=bool(out.fit.boundary), fallback=out.fallback, conf_level=conf_level,
                         details=details)


def _decisive(u: pd.DataFrame, groups: dict[str, np.ndarray], order: list[str], conf_level: float
              ) -> dict[str, Any]:
    wins, losses = u["wins"].to_numpy(float), u["losses"].to_numpy(float)
    dec = wins + losses
    base = {"n_judgements": int(u["n_experts"].sum()), "n_decisive": int(dec.sum()), "ties": int(u["ties"].sum()),
            "wins": int(wins.sum()), "losses": int(losses.sum())}
    if dec.sum() == 0:
        return {**base, "decisive_rate": None, "decisive_rate_ci": (None, None), "decisive_rate_p": None}
    rate = float(wins.sum() / dec.sum())
    test, _ = _intercept_model(u, (wins - losses) / 2, groups, order, conf_level)
    lin, _ = _intercept_model(u, (wins - rate * dec) / dec.mean(), groups, order, conf_level)
    if test is None or lin is None:
        return {**base, "decisive_rate": rate, "decisive_rate_ci": (None, None), "decisive_rate_p": None}
    q = lin.ci_high - lin.estimate
    return {**base, "decisive_rate": rate, "decisive_rate_ci": (max(0.0, rate - q), min(1.0, rate + q)),
            "decisive_rate_p": test.p, "decisive_rate_df": test.df}


def reader_randomisation_test(u: pd.DataFrame, *, n_permutations: int = 2000,
                              rng: np.random.Generator | None = None) -> RandomisationTest:
    """Sensitivity analysis for readers randomised to arms within center (paired-by-case).

    Reader strengths theta are the least-squares solution of x_pair = theta_assisted_reader - theta_control_reader
    (x = (h_assisted - h_control) / 2); the statistic is the center-weighted difference of mean strengths between
    arms, and its reference distribution permutes the readers' arm labels within center (``n_permutations`` draws
    from ``rng``, vectorised). Two-sided p = (1 + #|U*| >= |U|) / (1 + B). Not calibrated (type-I error 2% to 9% in
    simulation, docs/primary_analysis.md): a sensitivity analysis, never the primary test.
    """
    rng = rng if rng is not None else np.random.default_rng(20250101)
    d = u[(u["reader_assisted"] != "?") & (u["reader_control"] != "?")]
    if d.empty:
        return RandomisationTest(method="reader-level randomisation test", p=None, note="readers unknown")
    readers = pd.Index(sorted(set(d["reader_assisted"]) | set(d["reader_control"])))
    ia, ic = readers.get_indexer(d["reader_assisted"]), readers.get_indexer(d["reader_control"])
    n, m = len(d), len(readers)
    Z = np.zeros((n, m))  # noqa: N806
    Z[np.arange(n), ia] = 1.0
    Z[np.arange(n), ic] -= 1.0
    theta = np.linalg.lstsq(Z, ((d["h"] - d["h_control"]) / 2).to_numpy(float), rcond=None)[0]
    label = np.zeros(m)
    label[np.unique(ia)] = 1.0
    center_of = d.groupby("reader_assisted")["center"].first().to_dict() | \
        d.groupby("reader_control")["center"].first().to_dict()
    weights = np.zeros((n_permutations + 1, m))
    for c, share in d["center"].value_counts(normalize=True).items():
        idx = np.array([i for i, r in enumerate(readers) if center_of.get(r) == c])
        lab = label[idx]
        if lab.sum() in (0, len(idx)):
            continue
        perm = np.vstack([lab, rng.permuted(np.tile(lab, (n_permutations, 1)), axis=1)])
        weights[:, idx] = share * (perm / lab.sum() - (1 - perm) / (len(idx) - lab.sum()))
    stat = weights @ theta
    p = float((1 + np.sum(np.abs(stat[1:]) >= abs(stat[0]) - 1e-12)) / (1 + n_permutations))
    return RandomisationTest(method="reader-level randomisation test (least-squares reader strengths; arm labels "
                                    "permuted within center); sensitivity analysis, not calibrated",
                             statistic=float(stat[0]), p=p, n_permutations=n_permutations, n_readers=m)


# -- subgroups (descriptive) --------------------------------------------------------------------------------------
def _interaction_fit(df: pd.DataFrame, y: np.ndarray, terms: list[Term], by: str, conf_level: float,
                     to_ratio: bool) -> SubgroupFit:
    """Arm effect per level of ``by`` from one model with arm x ``by`` interaction terms (plus center fixed)."""
    d = df.dropna(subset=[by]).copy()
    d[by] = d[by].astype(str)
    levels = sorted(d[by].unique())
    keep = np.asarray(df[by].notna())
    if len(levels) < 2:
        return SubgroupFit(note=f"fewer than two levels of {by}")
    X = _design_matrix(d)  # noqa: N806
    for lv in levels[1:]:
        ind = (d[by] == lv).to_numpy(float)
        if by != "center":
            X[f"{by}[{lv}]"] = ind
        X[f"arm:{by}[{lv}]"] = X["arm"].to_numpy() * ind
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        return SubgroupFit(note=f"arm x {by} not estimable: {by} is confounded with center or arm in these data")
    groups, _ = identifiable_groups(d, terms)
    if not groups:
        return SubgroupFit(note="no identifiable random effect")
    out = fit_with_fallback(np.asarray(y)[keep], X, groups, order=[t for t, _ in terms])
    if out.fit is None:
        return SubgroupFit(note=f"model could not be fitted: {out.error}")
    names = list(X.columns)
    effects, inter = {}, {}
    for lv in levels:
        L = np.zeros(len(names))  # noqa: N806
        L[names.index("arm")] = 1.0
        if lv != levels[0]:
            L[names.index(f"arm:{by}[{lv}]")] = 1.0
            ic = out.fit.coef_test(f"arm:{by}[{lv}]", conf_level)
            inter[lv] = InteractionTerm(estimate=ic.estimate, p=ic.p, df=ic.df)
        c = out.fit.contrast(L, conf_level)
        f = _exp if to_ratio else _num
        effects[lv] = SubgroupEffect(estimate=f(c.estimate), ci=(f(c.ci_low), f(c.ci_high)),
                                     n_cases=int(d.loc[d[by] == lv, "case"].nunique()))
    rows = np.array([[1.0 if n == f"arm:{by}[{lv}]" else 0.0 for n in names] for lv in levels[1:]])
    joint = out.fit.ftest(rows) if hasattr(out.fit, "ftest") else None
    fixed = f"arm * {by}" + ("" if by == "center" else " + center")
    return SubgroupFit(
        model=_formula("y", fixed, out.terms), effects=effects, reference_level=levels[0], interactions=inter,
        interaction_test=None if joint is None else InteractionTest(f=joint.f, ndf=joint.ndf, ddf=joint.ddf,
                                                                     p=joint.p),
        converged=bool(out.fit.converged), boundary=bool(out.fit.boundary), fallback=out.fallback)


def subgroup_analysis(tables: Mapping[str, pd.DataFrame], *, design: str, assisted: str, control: str,
                      conf_level: float = 0.95,
                      frames: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> SubgroupModels:
    """Arm effects by center and by reader experience, as arm x subgroup interactions in the primary models.

    Descriptive: not part of the testing hierarchy, no multiplicity adjustment. Quality on the 1-5 scale, reading
    time as ratios of geometric means. ``frames``: (:func:`quality_frame`, :func:`time_frame`) of these tables
    when the caller has them already (not modified).
    """
    if frames is None:
        q, r = quality_frame(tables, assisted, control), time_frame(tables, assisted, control)
    else:
        q, r = frames[0].copy(), frames[1]
    exp_by_reader = r.dropna(subset=["reader", "reader_experience"]).groupby("reader")["reader_experience"].first()
    q["reader_experience"] = q["reader"].map(exp_by_reader) if len(q) else pd.Series(dtype="string")
    out: dict[str, dict[str, SubgroupFit]] = {}
    for by in ("center", "reader_experience"):
        blk: dict[str, SubgroupFit] = {}
        for name, df, col, terms, ratio in (("quality", q, "score", QUALITY_TERMS[design], False),
                                            ("reading_time", r, "log_seconds", TIME_TERMS[design], True)):
            if df.empty or df["assisted"].nunique() < 2 or by not in df:
                blk[name] = SubgroupFit(note="no data")
                continue
            blk[name] = _interaction_fit(df, df[col].to_numpy(float), terms, by, conf_level, ratio)
        out[by] = blk
    return SubgroupModels(note="descriptive: arm x subgroup interactions in the primary models, not part of the "
                               "testing hierarchy, no multiplicity adjustment", **out)


# -- hierarchy and the block --------------------------------------------------------------------------------------
def apply_hierarchy(results: list[PrimaryResult], alpha: float = 0.05) -> list[PrimaryResult]:
    """Fixed-sequence testing: result i is confirmatory only if results 1..i-1 all rejected at ``alpha``."""
    out: list[PrimaryResult] = []
    failed: str | None = None
    seq = " -> ".join(r.endpoint.replace("_", " ") for r in results)
    for pos, r in enumerate(results, start=1):
        rejected = r.p is not None and r.p < alpha
        verdict = "rejected" if rejected else "not rejected"
        if failed is None:
            note = (f"Test {pos} of the fixed sequence ({seq}) at two-sided alpha {alpha:g}: confirmatory; "
                    f"{verdict}" + ("." if rejected or pos == len(results) else "; later tests are descriptive."))
        else:
            note = (f"Test {pos} of the fixed sequence ({seq}): NOT confirmatory, because the {failed} test did not "
                    f"reject; descriptive only (p shown for information).")
        out.append(replace(r, hierarchy_position=pos, confirmatory=failed is None, hierarchy_note=note))
        if failed is None and not rejected:
            failed = r.endpoint.replace("_", " ")
    return out


def methods_text(design: str, results: list[PrimaryResult], engine: str, alpha: float) -> str:
    """The methods paragraph: design, models, df method, fallback, hierarchy, engine and versions."""
    parts = [f"Primary analysis for a {DESIGN_TEXT[design]}."]
    parts += [f"{r.endpoint.replace('_', ' ').capitalize()}: {r.method.split(' Design: ')[0]}" for r in results]
    parts.append(f"Degrees of freedom by {_df_label()}'s approximation; CIs and p from the t distribution. A fit that "
                 "did not converge or was singular (a variance component at the boundary) is refitted without its "
                 "smallest variance component; fallbacks are listed with each result.")
    parts.append(f"Multiplicity: fixed-sequence testing at two-sided alpha {alpha:g} in the order quality, "
                 "reading time, preference; a later test is confirmatory only if all earlier ones rejected.")
    parts.append("Case-level paired t and Wilcoxon tests appear as descriptive secondary output only: they do not "
                 "account for readers (in this design a case's arm difference is also a difference between readers).")
    parts.append(f"Engine: {engine}.")
    return " ".join(parts)


def primary_analysis(tables: Mapping[str, pd.DataFrame], *, design: str, majority_k: int | None = None,
                     assisted: str, control: str, n_permutations: int = 0,
                     rng: np.random.Generator | None = None, conf_level: float = 0.95, alpha: float = 0.05,
                     subgroups: bool = True, df_method: str = "satterthwaite") -> PrimaryBlock:
    """The declared primary analysis of the export ``tables`` (reads, ratings; schema in analysis.stats.trial).

    ``design``: 'paired_by_case', 'case_randomised' or 'crossover'; ``majority_k``: experts needed for "the panel
    prefers the assisted report" (None: strict majority of the panel); ``assisted`` / ``control``: arm labels as
    in the tables; ``n_permutations`` and ``rng``: the reader-level randomisation test of the preference, an
    opt-in sensitivity analysis (0, the default, skips it); ``subgroups``: also fit the arm x subgroup models
    (descriptive);
    ``df_method``: 'satterthwaite' (declared) or 'kenward-roger' (option) for every test.
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    if df_method not in DF_METHODS:
        raise ValueError(f"df_method must be one of {tuple(DF_METHODS)}, got {df_method!r}")
    token = _df_method.set(df_method)
    try:
        return _primary_block(tables, design=design, majority_k=majority_k, assisted=str(assisted),
                              control=str(control), n_permutations=n_permutations, rng=rng, conf_level=conf_level,
                              alpha=alpha, subgroups=subgroups)
    finally:
        _df_method.reset(token)


def _primary_block(tables: Mapping[str, pd.DataFrame], *, design: str, majority_k: int | None, assisted: str,
                   control: str, n_permutations: int, rng: np.random.Generator | None, conf_level: float,
                   alpha: float, subgroups: bool) -> PrimaryBlock:
    kw = {"design": design, "assisted": assisted, "control": control, "conf_level": conf_level}
    frames = (quality_frame(tables, assisted, control), time_frame(tables, assisted, control))  # built once
    results = apply_hierarchy([quality_primary(tables, **kw, frame=frames[0]),
                               reading_time_primary(tables, **kw, frame=frames[1]),
                               preference_primary(tables, **kw, majority_k=majority_k,
                                                  n_permutations=n_permutations, rng=rng)], alpha)
    engine = engine_version()
    warnings = []
    for r in results:
        label = r.endpoint.replace("_", " ")
        if r.note:
            warnings.append(f"Primary {label}: {r.note}")
        if r.converged is False or r.boundary:
            warnings.append(f"Primary {label}: the reported fit is {'not converged' if not r.converged else ''}"
                            f"{' and ' if not r.converged and r.boundary else ''}"
                            f"{'on the boundary' if r.boundary else ''}; read it with care")
        if r.fallback:
            warnings.append(f"Primary {label}: declared fallback applied: {r.fallback}")
        if isinstance(r.details, QualityDetails) and r.details.scores_without_reader:
            fitted = "(1|reader)" in r.details.model
            warnings.append(f"Primary {label}: {r.details.scores_without_reader} scores of reports whose reader "
                            "is unknown (export without reader_a/reader_b and a case read more than once per arm): "
                            + ("left out" if fitted else "no reader term could be fitted; the arm effect ignores "
                               "readers"))
    hierarchy_text = ("Fixed-sequence testing at two-sided alpha " f"{alpha:g}: quality -> reading time -> "
                      "preference; a later test is confirmatory only if every earlier test rejected.")
    return PrimaryBlock(
        design=design, arms={"assisted": assisted, "control": control}, quality=results[0],
        reading_time=results[1], preference=results[2], hierarchy_text=hierarchy_text, alpha=alpha, engine=engine,
        methods=methods_text(design, results, engine, alpha),
        subgroups=subgroup_analysis(tables, **kw, frames=frames) if subgroups else {},
        warnings=tuple(warnings))


__all__ = ["PrimaryBlock", "PrimaryResult", "SubgroupFit", "SubgroupModels", "SubgroupEffect",
           "primary_analysis", "quality_primary", "reading_time_primary",
           "preference_primary", "subgroup_analysis", "apply_hierarchy", "fit_with_fallback",
           "identifiable_groups", "reader_randomisation_test", "DESIGNS", "HIERARCHY", "DESCRIPTIVE_LABEL"]
