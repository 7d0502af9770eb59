"""The trial simulator: one model of a reader trial, shared by the export tables here, ``manage.py simulate_trial``
(:mod:`analysis.simulation`), power (:mod:`analysis.stats.power`) and ``benchmarks/calibration.py``.

The model (docs/design.md sections 1 and 7; issue 13 items 7-8):

- Structure. Cases are spread over centers in turn. ``paired_by_case``: readers are spread over centers and
  randomised to arms within center (nested in arms; a center with an odd count gives its extra reader to the arm
  that has fewer so far); each case is read once per arm by a reader of that arm at its center (workload
  balanced in turn). ``case_randomised``: each case is allocated to one arm (balanced within center) and read by
  a reader of its center. ``crossover``: every reader reads every case in both arms (two sessions, random order);
  the rated pair is one reader's two reads, drawn per case, as ``reading.rating_services.pair_reads`` does.
- Quality of a report (latent, 1-5 scale): ``T = m + shift*AI + reader + case + report`` (report = reader x case).
  Each expert perceives ``P = T + e`` and scores ``clip(round(P + expert), 1, 5)``. ``quality_effect`` and
  ``quality_control_mean`` are on the observed (rounded) scale; the latent ``m`` and ``shift`` are solved from them,
  so ``quality_effect`` is exactly what a mean-difference analysis estimates.
- Preference: an expert prefers the report perceived as better, ``P_AI - P_control`` beyond ``+-tie_band``, and
  states no preference inside the band. Preferences therefore follow quality and are clustered by case and reader.
  The default tie band gives the published 54.3% of cases with at least 3 of 5 experts preferring the AI report.
- log reading time: ``log(base) + log(time_ratio)*AI + reader + case + e``; ``time_ratio`` is the ratio of
  geometric means, ``time_control_seconds`` the control arm's arithmetic mean.
- Readers' calls and the model's probabilities: binormal per finding with the given AUCs.

Defaults are the published trial (NCT07117266): 296 cases, 20 readers, 3 centers, 5 experts (majority 3), quality
+0.24 on 4.11, time ratio 0.82 on 146.6 s. Variance components are assumptions (the paper does not give them).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

DEFAULT_FINDINGS = ("pleural_effusion", "pneumothorax", "atelectasis", "consolidation", "cardiomegaly",
                    "lung_opacity")
DESIGNS = ("paired_by_case", "case_randomised", "crossover")
# Solved once with TrialScenario().with_preference_share(0.543) (the published majority share); a test checks it.
DEFAULT_TIE_BAND = 0.2106


@dataclass(frozen=True)
class TrialScenario:
    """Inputs of one simulated trial. SDs are of random effects on the latent 1-5 scale (quality) or log seconds."""

    design: str = "paired_by_case"
    n_cases: int = 296
    n_readers: int = 20
    n_centers: int = 3
    n_experts: int = 5
    majority_k: int | None = None  # experts needed for "assisted preferred"; default the strict majority
    quality_effect: float = 0.24  # observed-scale mean difference, assisted - control
    quality_control_mean: float = 4.11
    time_ratio: float = 0.82  # ratio of geometric means, assisted / control
    time_control_seconds: float = 146.6
    sd_reader: float = 0.2
    sd_case: float = 0.35
    sd_report: float = 0.3
    sd_expert: float = 0.15
    sd_residual: float = 0.5
    sd_log_reader: float = 0.2
    sd_log_case: float = 0.2
    sd_log_residual: float = 0.25
    tie_band: float = DEFAULT_TIE_BAND
    discrete: bool = True  # round and clip scores to 1-5
    model_auc: float = 0.85
    reader_auc_control: float = 0.80
    reader_auc_assisted: float = 0.85
    prevalence: float = 0.3
    findings: tuple[str, ...] = field(default=DEFAULT_FINDINGS)

    # -- checks and derived quantities ------------------------------------------------------------------------
    @property
    def k(self) -> int:
        return self.majority_k if self.majority_k is not None else self.n_experts // 2 + 1

    def validate(self) -> TrialScenario:
        """Raise ValueError when the counts do not fit the design (readers are never silently dropped)."""
        if self.design not in DESIGNS:
            raise ValueError(f"design must be one of {DESIGNS}, got {self.design!r}")
        if self.n_centers < 1 or self.n_cases < 2 * self.n_centers:
            raise ValueError(f"need at least 1 center and 2 cases per center (got {self.n_cases} cases, "
                             f"{self.n_centers} centers)")
        if self.n_experts < 1 or not 1 <= self.k <= self.n_experts:
            raise ValueError(f"majority k={self.k} must be between 1 and the panel size {self.n_experts}")
        _check_readers(self.design, self.n_readers, self.n_centers)
        if self.time_ratio <= 0 or self.time_control_seconds <= 0:
            raise ValueError("time_ratio and time_control_seconds must be positive")
        if min(self.sd_reader, self.sd_case, self.sd_report, self.sd_expert, self.sd_residual, self.sd_log_reader,
               self.sd_log_case, self.sd_log_residual, self.tie_band) < 0:
            raise ValueError("standard deviations and the tie band must be >= 0")
        self.latent_means()  # raises when the observed-scale means cannot be reached
        return self

    @property
    def sd_quality_total(self) -> float:
        return math.sqrt(self.sd_reader**2 + self.sd_case**2 + self.sd_report**2 + self.sd_expert**2
                         + self.sd_residual**2)

    def latent_means(self) -> tuple[float, float]:
        """(control, assisted) latent means giving the observed-scale means of the scenario."""
        mc, ma = self.quality_control_mean, self.quality_control_mean + self.quality_effect
        if not self.discrete:
            return mc, ma
        return _latent_mean(mc, self.sd_quality_total), _latent_mean(ma, self.sd_quality_total)

    @property
    def log_time_base(self) -> float:
        """log geometric mean of control reading time (arithmetic mean ``time_control_seconds``)."""
        var = self.sd_log_reader**2 + self.sd_log_case**2 + self.sd_log_residual**2
        return math.log(self.time_control_seconds) - var / 2

    def null(self) -> TrialScenario:
        """The same trial with no effect of the arm (the tie band and variance components kept)."""
        return replace(self, quality_effect=0.0, time_ratio=1.0)

    def with_preference_share(self, share: float) -> TrialScenario:
        """The scenario whose tie band gives ``share`` of cases with at least k experts preferring the AI report."""
        if self.design == "case_randomised":
            raise ValueError("case-randomised trials have no pairs to prefer")
        top = replace(self, tie_band=0.0).expected_preference()["majority_share"]
        if not 0 < share < top:
            raise ValueError(f"a majority share of {share} is not reachable (at most {top:.3f} with no ties)")
        band = optimize.brentq(lambda b: replace(self, tie_band=b).expected_preference()["majority_share"] - share,
                               0.0, 20 * self.sd_residual + 10)
        return replace(self, tie_band=float(band))

    def expected_preference(self) -> dict[str, float | None]:
        """True values of the preference estimands (expectations over readers, cases, reports and experts).

        majority_share: P(at least k of n experts prefer the AI report); decisive_rate: P(AI | a preference);
        tie_rate: P(no preference) per judgement. None for case-randomised trials (no pairs).
        """
        if self.design == "case_randomised":
            return {"majority_share": None, "decisive_rate": None, "tie_rate": None}
        mc, ma = self.latent_means()
        # The pair's true difference: same reader in crossover (reader and report effects cancel), two readers else.
        sd_pair = 0.0 if self.design == "crossover" else math.sqrt(2 * (self.sd_reader**2 + self.sd_report**2))
        nodes, weights = np.polynomial.hermite_e.hermegauss(60)
        delta = (ma - mc) + sd_pair * nodes
        w = weights / weights.sum()
        s = math.sqrt(2) * self.sd_residual
        if s > 0:
            p_ai, p_ctl = stats.norm.cdf((delta - self.tie_band) / s), stats.norm.cdf((-delta - self.tie_band) / s)
        else:
            p_ai, p_ctl = (delta > self.tie_band).astype(float), (delta < -self.tie_band).astype(float)
        share = float(np.sum(w * stats.binom.sf(self.k - 1, self.n_experts, p_ai)))
        e_ai, e_ctl = float(np.sum(w * p_ai)), float(np.sum(w * p_ctl))
        return {"majority_share": share, "decisive_rate": e_ai / (e_ai + e_ctl) if e_ai + e_ctl > 0 else None,
                "tie_rate": 1 - e_ai - e_ctl}

    def truths(self) -> dict[str, float | None]:
        """True values of the primary estimands: quality difference, time ratio, preference shares."""
        pref = self.expected_preference()
        return {"quality": self.quality_effect, "reading_time": self.time_ratio,
                "preference": pref["majority_share"], "preference_decisive": pref["decisive_rate"]}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["findings"] = list(self.findings)
        d["majority_k"] = self.k
        return d


def _check_readers(design: str, n_readers: int, n_centers: int) -> None:
    if design == "crossover":
        if n_readers < 2:
            raise ValueError(f"a crossover trial needs at least 2 readers (got {n_readers})")
        return
    if design == "case_randomised":
        if n_readers < n_centers:
            raise ValueError(f"a case-randomised trial needs at least one reader per center ({n_readers} readers, "
                             f"{n_centers} centers)")
        return
    if n_readers < 2 * n_centers:
        raise ValueError(f"paired-by-case needs at least one reader per arm at every center: {n_readers} readers "
                         f"cannot cover 2 arms x {n_centers} centers (need >= {2 * n_centers})")
    if n_readers % 2:
        raise ValueError(f"paired-by-case randomises readers into two equal arms: {n_readers} readers is odd")


@lru_cache(maxsize=256)
def _latent_mean(observed: float, sd: float) -> float:
    """Latent mean whose clip(round(N(m, sd)), 1, 5) has mean ``observed``."""
    if not 1 < observed < 5:
        raise ValueError(f"an observed mean quality of {observed:.3f} is outside the open 1-5 range")
    cuts = np.arange(1, 5) + 0.5
    if sd == 0:
        raise ValueError("quality needs some variance to be discrete (or set discrete=False)")
    return float(optimize.brentq(lambda m: 1 + stats.norm.cdf((m - cuts) / sd).sum() - observed, -20, 26))


# -- structure --------------------------------------------------------------------------------------------------
def _reader_arms(sc: TrialScenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Center of each reader (in turn) and, for paired-by-case, the arm (0 control, 1 AI) randomised within center."""
    center = np.arange(sc.n_readers) % sc.n_centers
    arm = np.full(sc.n_readers, -1)
    if sc.design == "paired_by_case":
        totals = [0, 0]
        for c in rng.permutation(sc.n_centers):
            ids = rng.permutation(np.flatnonzero(center == c))
            half = len(ids) // 2
            extra = int(np.argmin(totals)) if len(ids) % 2 else 0
            arm[ids[:half]], arm[ids[half:2 * half]] = 0, 1
            if len(ids) % 2:
                arm[ids[-1]] = extra
            for a in (0, 1):
                totals[a] += int(np.sum(arm[ids] == a))
    return center, arm


def _balanced_pick(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n readers from ``pool`` in turn after a shuffle (equal workloads up to one case)."""
    order = rng.permutation(pool)
    return order[np.arange(n) % len(order)]


def _plan_reads(sc: TrialScenario, case_center: np.ndarray, reader_center: np.ndarray, reader_arm: np.ndarray,
                rng: np.random.Generator) -> pd.DataFrame:
    """One row per read: case, reader, arm (0/1), session."""
    cases, readers, arms = [], [], []
    if sc.design == "crossover":
        ci, ri = np.meshgrid(np.arange(sc.n_cases), np.arange(sc.n_readers), indexing="ij")
        ci, ri = np.repeat(ci.ravel(), 2), np.repeat(ri.ravel(), 2)
        arm = np.tile([0, 1], sc.n_cases * sc.n_readers)
        first = rng.integers(0, 2, sc.n_cases * sc.n_readers).repeat(2)
        session = np.where(arm == first, 1, 2)
        return pd.DataFrame({"case": ci, "reader": ri, "arm": arm, "session": session})
    for c in range(sc.n_centers):
        at_c = np.flatnonzero(case_center == c)
        if sc.design == "case_randomised":
            arm = rng.permutation(np.arange(len(at_c)) % 2)
            cases.append(at_c)
            readers.append(_balanced_pick(np.flatnonzero(reader_center == c), len(at_c), rng))
            arms.append(arm)
            continue
        for a in (0, 1):
            pool = np.flatnonzero((reader_center == c) & (reader_arm == a))
            cases.append(at_c)
            readers.append(_balanced_pick(pool, len(at_c), rng))
            arms.append(np.full(len(at_c), a))
    out = pd.DataFrame({"case": np.concatenate(cases), "reader": np.concatenate(readers),
                        "arm": np.concatenate(arms), "session": 1})
    return out.sort_values(["case", "arm"], kind="stable").reset_index(drop=True)


def _rated_pairs(sc: TrialScenario, reads: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into ``reads`` of the (AI, control) reports rated per case; control -1 for single reports."""
    if sc.design == "case_randomised":
        idx = reads.index.to_numpy()
        return idx, np.full(len(idx), -1)
    if sc.design == "crossover":
        pick = rng.integers(0, sc.n_readers, sc.n_cases)
        base = (np.arange(sc.n_cases) * sc.n_readers + pick) * 2  # rows are case-major, reader, arm 0/1
        return base + 1, base
    ai = reads.index[reads["arm"] == 1].to_numpy()
    ctl = reads.index[reads["arm"] == 0].to_numpy()
    return ai, ctl  # both sorted by case


# -- outcomes ---------------------------------------------------------------------------------------------------
@dataclass
class TrialEffects:
    """Realised random effects of one simulated trial."""

    reader_q: np.ndarray
    case_q: np.ndarray
    expert_q: np.ndarray
    reader_t: np.ndarray
    case_t: np.ndarray


def draw_effects(sc: TrialScenario, rng: np.random.Generator) -> TrialEffects:
    return TrialEffects(reader_q=rng.normal(0, sc.sd_reader, sc.n_readers),
                    case_q=rng.normal(0, sc.sd_case, sc.n_cases),
                    expert_q=rng.normal(0, sc.sd_expert, sc.n_experts),
                    reader_t=rng.normal(0, sc.sd_log_reader, sc.n_readers),
                    case_t=rng.normal(0, sc.sd_log_case, sc.n_cases))


def report_quality(sc: TrialScenario, case: np.ndarray, reader: np.ndarray, arm: np.ndarray, eff: TrialEffects,
                   rng: np.random.Generator) -> np.ndarray:
    """Latent true quality T of each read (report effect drawn per reader x case)."""
    mc, ma = sc.latent_means()
    key = case.astype(np.int64) * sc.n_readers + reader
    uniq, inv = np.unique(key, return_inverse=True)
    report = rng.normal(0, sc.sd_report, len(uniq))[inv]
    return np.where(arm == 1, ma, mc) + eff.reader_q[reader] + eff.case_q[case] + report


def log_seconds(sc: TrialScenario, case: np.ndarray, reader: np.ndarray, arm: np.ndarray, eff: TrialEffects,
                rng: np.random.Generator) -> np.ndarray:
    return (sc.log_time_base + math.log(sc.time_ratio) * arm + eff.reader_t[reader] + eff.case_t[case]
            + rng.normal(0, sc.sd_log_residual, len(case)))


def judge_reports(sc: TrialScenario, t_first: np.ndarray, t_second: np.ndarray | None, expert_offset: np.ndarray,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Expert judgements, one per row: each report perceived as ``T + e`` and scored ``clip(round(P + expert))``.

    ``t_first`` is the latent quality of the AI report of a pair (or of the single report), ``t_second`` the
    control report's (None for single reports), ``expert_offset`` the rating expert's effect. Returns
    ``score_first``, ``score_second`` and ``preference`` (1 AI, -1 control, 0 no preference: inside the tie band).
    """
    p_first = t_first + rng.normal(0, sc.sd_residual, len(t_first))
    out = {"score_first": _score(sc, p_first + expert_offset)}
    if t_second is not None:
        p_second = t_second + rng.normal(0, sc.sd_residual, len(t_second))
        out["score_second"] = _score(sc, p_second + expert_offset)
        d = p_first - p_second
        out["preference"] = np.where(d > sc.tie_band, 1, np.where(d < -sc.tie_band, -1, 0))
    return out


def _score(sc: TrialScenario, latent: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(latent), 1, 5) if sc.discrete else latent


def _binormal_score(truth: np.ndarray, auc: float, rng: np.random.Generator) -> np.ndarray:
    sep = math.sqrt(2) * stats.norm.ppf(auc)
    return rng.normal(0, 1, truth.shape) + sep * truth - sep / 2


# -- tables -----------------------------------------------------------------------------------------------------
def make_trial_tables(
    design: str | None = None,
    *,
    scenario: TrialScenario | None = None,
    seed: int = 1,
    rng: np.random.Generator | None = None,
    assisted_arm: str = "ai_assisted",
    control_arm: str = "unassisted",
    **fields: Any,
) -> dict[str, pd.DataFrame]:
    """reads, ratings, drafts and cases tables (the export schema, see :mod:`analysis.stats.trial`) of one trial.

    ``scenario`` (default :class:`TrialScenario`, the published trial) with ``design`` and any ``fields`` (e.g.
    ``n_cases=120, quality_effect=0.3``) replacing its values. ``rng`` overrides ``seed``. Ratings carry
    ``reader_a``/``reader_b`` (needed in crossover, where one reader reads a case in both arms).
    """
    sc = scenario or TrialScenario()
    if design is not None:
        fields["design"] = design
    sc = replace(sc, **fields).validate() if fields else sc.validate()
    rng = rng if rng is not None else np.random.default_rng(seed)
    case_center = np.arange(sc.n_cases) % sc.n_centers
    reader_center, reader_arm = _reader_arms(sc, rng)
    plan = _plan_reads(sc, case_center, reader_center, reader_arm, rng)
    eff = draw_effects(sc, rng)
    case_i, reader_i, arm_i = (plan[c].to_numpy() for c in ("case", "reader", "arm"))
    quality = report_quality(sc, case_i, reader_i, arm_i, eff, rng)
    secs = np.exp(log_seconds(sc, case_i, reader_i, arm_i, eff, rng))
    names = _Names(sc, assisted_arm, control_arm)
    truth = {f: (rng.random(sc.n_cases) < sc.prevalence).astype(int) for f in sc.findings}
    cases = pd.DataFrame({"case_code": names.case, "center": names.center[case_center]})
    for f in sc.findings:
        cases[f"ref_{f}"] = truth[f]
    reads = _reads_table(sc, plan, names, case_center, secs, truth, rng)
    ai_rows, ctl_rows = _rated_pairs(sc, plan, rng)
    ratings = _ratings_table(sc, plan, ai_rows, ctl_rows, quality, eff, names, case_center, rng)
    drafts = pd.DataFrame({"case_code": names.case, "model_version": "janus-pro-cxr-1"})
    for f in sc.findings:
        drafts[f"prob_{f}"] = np.round(stats.logistic.cdf(_binormal_score(truth[f], sc.model_auc, rng)), 4)
    return {"reads": reads, "ratings": ratings, "drafts": drafts, "cases": cases}


class _Names:
    def __init__(self, sc: TrialScenario, assisted: str, control: str) -> None:
        self.case = np.array([f"C{i + 1:05d}" for i in range(sc.n_cases)])
        self.center = np.array([f"S{c + 1}" for c in range(sc.n_centers)])
        self.reader = np.array([f"R{j + 1:02d}" for j in range(sc.n_readers)])
        self.expert = np.array([f"E{j + 1:02d}" for j in range(sc.n_experts)])
        self.arm = np.array([control, assisted])
        self.experience = np.where(np.arange(sc.n_readers) % 3 == 0, "senior", "junior")


def _reads_table(sc: TrialScenario, plan: pd.DataFrame, names: _Names, case_center: np.ndarray, secs: np.ndarray,
                 truth: dict[str, np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
    case_i, reader_i, arm_i = (plan[c].to_numpy() for c in ("case", "reader", "arm"))
    reads = pd.DataFrame({
        "read_id": [f"RD{k + 1:06d}" for k in range(len(plan))], "case_code": names.case[case_i],
        "center": names.center[case_center[case_i]], "reader": names.reader[reader_i],
        "reader_experience": names.experience[reader_i], "arm": names.arm[arm_i],
        "session": plan["session"].to_numpy(), "active_seconds": np.round(secs, 1),
        "wall_seconds": np.round(secs * rng.uniform(1.1, 1.5, len(secs)), 1)})
    auc = np.where(arm_i == 1, sc.reader_auc_assisted, sc.reader_auc_control)
    sep = math.sqrt(2) * stats.norm.ppf(auc)
    for f in sc.findings:
        z = rng.normal(0, 1, len(plan)) + sep * truth[f][case_i] - sep / 2
        reads[f"finding_{f}"] = (z > 0).astype(int)
        reads[f"confidence_{f}"] = np.minimum(5, 1 + np.floor(np.abs(z) * 2)).astype(int)
    return reads


def _ratings_table(sc: TrialScenario, plan: pd.DataFrame, ai_rows: np.ndarray, ctl_rows: np.ndarray,
                   quality: np.ndarray, eff: TrialEffects, names: _Names, case_center: np.ndarray,
                   rng: np.random.Generator) -> pd.DataFrame:
    single = sc.design == "case_randomised"
    n_pairs, n_e = len(ai_rows), sc.n_experts
    j = judge_reports(sc, np.repeat(quality[ai_rows], n_e), None if single else np.repeat(quality[ctl_rows], n_e),
                      np.tile(eff.expert_q, n_pairs), rng)
    case_i = plan["case"].to_numpy()[ai_rows]
    reader = plan["reader"].to_numpy()
    out = pd.DataFrame({"rating_id": [f"RT{k + 1:06d}" for k in range(n_pairs * n_e)],
                        "case_code": np.repeat(names.case[case_i], n_e),
                        "center": np.repeat(names.center[case_center[case_i]], n_e),
                        "expert": np.tile(names.expert, n_pairs)})
    if single:
        arm_single = names.arm[plan["arm"].to_numpy()[ai_rows]]
        # single-report ratings: no second report, no preference (empty in the CSV export)
        out["arm_a"], out["arm_b"] = np.repeat(arm_single, n_e), None
        out["preference"], out["quality_a"], out["quality_b"] = None, j["score_first"], np.nan
        out["reader_a"], out["reader_b"] = np.repeat(names.reader[reader[ai_rows]], n_e), None
        return out
    swap = rng.random(n_pairs * n_e) < 0.5  # A/B order drawn per rating
    q_ai, q_ctl, pref = j["score_first"], j["score_second"], j["preference"]
    r_ai, r_ctl = np.repeat(names.reader[reader[ai_rows]], n_e), np.repeat(names.reader[reader[ctl_rows]], n_e)
    out["arm_a"] = np.where(swap, names.arm[0], names.arm[1])
    out["arm_b"] = np.where(swap, names.arm[1], names.arm[0])
    ai_letter, ctl_letter = np.where(swap, "B", "A"), np.where(swap, "A", "B")
    out["preference"] = np.where(pref == 1, ai_letter, np.where(pref == -1, ctl_letter, "none"))
    out["quality_a"], out["quality_b"] = np.where(swap, q_ctl, q_ai), np.where(swap, q_ai, q_ctl)
    out["reader_a"], out["reader_b"] = np.where(swap, r_ctl, r_ai), np.where(swap, r_ai, r_ctl)
    return out


def write_tables(tables: dict[str, pd.DataFrame], directory: str | Path) -> None:
    """Write the tables as <name>.csv into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, t in tables.items():
        t.to_csv(d / f"{name}.csv", index=False)
