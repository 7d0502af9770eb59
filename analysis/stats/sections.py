"""Typed results of the whole-trial analysis, one dataclass per section (docs/design.md section 7).

:func:`analysis.stats.trial.analyse_trial` returns a :class:`TrialResults`; its ``to_dict()`` is the JSON-able dict
that ``results.json`` and ``python -m analysis trial`` hold (the keys are the field names, in field order; a field
marked optional is left out while it is None, as the dict left the key out). Per-test numbers are
:class:`~analysis.stats._result.StatResult` (or the method's own result class: the primary endpoints, split-plot
MRMC, blinding indices); descriptive summaries are the dicts of :func:`~analysis.stats.comparisons.describe`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._result import FLATTEN, Section, StatResult, jsonable, optional
from .blinding import TrialBlinding
from .calibration import CalibrationReport
from .mrmc_split import SplitPlotMRMCResult
from .mrmc_ustat import UStatMRMCResult
from .primary import PrimaryBlock, PrimaryResult

Describe = dict[str, float | int | None]


@dataclass(frozen=True)
class ArmsUsed(Section):
    """The arms compared (after :func:`analysis.stats.arms.resolve_arms`) and every arm label seen in the data."""

    assisted: str
    control: str | None
    observed: list[str]


@dataclass(frozen=True)
class ArmFlow(Section):
    """Submitted reads of one arm and the cases they cover."""

    reads: int
    cases_read: int


@dataclass(frozen=True)
class Flow(Section):
    """Counts of the analysis set: cases, reads per arm, cases read in both arms, exclusions, ratings."""

    cases_enrolled: int
    by_arm: dict[str, ArmFlow]
    cases_read_in_both_arms: int
    reads_excluded_unsubmitted: int
    cases_rated: int
    ratings: int


@dataclass(frozen=True)
class ArmComparison(Section):
    """Case-level comparison of one outcome between arms (descriptive: it does not account for readers).

    Paired designs fill ``n_pairs`` and the paired tests, case-randomised ones ``n_units`` and the two-sample
    tests; on the log scale (reading time) the geometric mean ratio and relative reduction replace the t-test.
    """

    note: str
    n_pairs: int | None = optional()
    n_units: dict[str, int] | None = optional()
    geometric_mean_ratio: StatResult | None = optional()
    relative_reduction: StatResult | None = optional()
    paired_t: StatResult | None = optional()
    welch_t: StatResult | None = optional()
    wilcoxon: StatResult | None = optional()
    mann_whitney: StatResult | None = optional()

    @property
    def t_test(self) -> StatResult | None:
        """The design's t-test (paired or Welch)."""
        return self.paired_t if self.paired_t is not None else self.welch_t

    @property
    def rank_test(self) -> StatResult | None:
        """The design's rank test (Wilcoxon signed-rank or Mann-Whitney)."""
        return self.wilcoxon if self.wilcoxon is not None else self.mann_whitney

    @property
    def n_analysed(self) -> int:
        """Cases in the comparison: pairs, or units of both arms."""
        if self.n_pairs is not None:
            return self.n_pairs
        return sum((self.n_units or {}).values())


@dataclass(frozen=True)
class ModelPointer(Section):
    """A section's adjusted (mixed-model) estimate: the primary endpoint's numbers, pointing at them."""

    method: str
    estimate: float | None
    ci: list[float | None]
    p: float | None
    df: float | None
    converged: bool | None
    boundary: bool | None
    fallback: str | None
    n: int
    note: str | None

    @classmethod
    def of(cls, res: PrimaryResult, where: str) -> ModelPointer:
        return cls(method=f"see {where}: {res.method}", estimate=res.estimate, ci=list(res.ci), p=res.p, df=res.df,
                   converged=res.converged, boundary=res.boundary, fallback=res.fallback, n=res.n_cases,
                   note=res.note)


@dataclass(frozen=True)
class QualitySection(Section):
    """Report quality (1-5): per-arm summaries of all scores and of case means, the case-level comparison and the
    pointer to the primary mixed model."""

    descriptive_reports: dict[str, Describe]
    descriptive_case_means: dict[str, Describe]
    comparison: ArmComparison = field(metadata=FLATTEN)
    mixed_model: ModelPointer | None = optional()


@dataclass(frozen=True, kw_only=True)
class ReadingTimeSection(Section):
    """Active reading time (seconds): per-arm summaries (wall-clock too when exported), the relative reduction over
    all reads, the case-level comparison on the log scale and the pointer to the primary mixed model."""

    descriptive: dict[str, Describe]
    descriptive_wall: dict[str, Describe] | None = optional()
    relative_reduction_all_reads: StatResult
    comparison: ArmComparison = field(metadata=FLATTEN)
    mixed_model: ModelPointer | None = optional()


@dataclass(frozen=True)
class PreferenceSection(Section):
    """Expert preference (descriptive): the decisive-pair rate, the case-level panel majority, per center."""

    pairs: StatResult
    panel_majority: StatResult
    note: str | None = optional()
    by_center: dict[str, StatResult] | None = optional()


@dataclass(frozen=True)
class ModelFinding(Section):
    """A model's standalone accuracy for one finding: empirical AUC (DeLong), the operating point and the
    ``calibration`` report (:class:`analysis.stats.calibration.CalibrationReport`: raw and cross-fitted Platt and
    isotonic reliability data, ECE and Brier score, or a ``note`` when there are too few cases; empty when the
    model gave no probabilities)."""

    auc: StatResult
    operating_point: StatResult
    calibration: CalibrationReport = field(default_factory=CalibrationReport)


@dataclass(frozen=True)
class AIStandalone(Section):
    """Standalone accuracy per model version and finding (``models[version][finding]``)."""

    note: str | None = optional()
    models: dict[str, dict[str, ModelFinding]] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmAccuracy(Section):
    """Readers' accuracy in one arm, reads pooled (ignores reader clustering)."""

    sens_spec: StatResult
    auc_pooled_reads: StatResult


@dataclass(frozen=True)
class MRMCNote(Section):
    """Why the split-plot MRMC analysis could not run."""

    method: str
    note: str
    n: int


MRMC = StatResult | SplitPlotMRMCResult | UStatMRMCResult | MRMCNote


@dataclass(frozen=True)
class FindingAccuracy(Section):
    """Readers' accuracy for one finding: per arm (keyed by arm label) and the MRMC AUC difference; or only
    ``note`` when there is no reference standard or no reader call."""

    by_arm: dict[str, ArmAccuracy] = field(default_factory=dict)
    mrmc: MRMC | None = None
    #: Nested designs: the U-statistic (iMRMC) alternative beside the split-plot OR (docs/primary_analysis.md).
    mrmc_ustat: MRMC | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.note is not None:
            return {"note": self.note}
        out = {**{arm: acc.to_dict() for arm, acc in self.by_arm.items()}, "mrmc": jsonable(self.mrmc)}
        if self.mrmc_ustat is not None:
            out["mrmc_ustat"] = jsonable(self.mrmc_ustat)
        return out


@dataclass(frozen=True)
class ReaderAccuracy(Section):
    """Readers' accuracy per finding."""

    findings: dict[str, FindingAccuracy]
    note: str


@dataclass(frozen=True)
class KappaPair(Section):
    """Quadratic weighted kappa of one pair of experts on the quality scores of the reports both scored."""

    expert_1: str
    expert_2: str
    n: int
    kappa: float | None
    ci: tuple[float | None, float | None] | None
    p: float | None


@dataclass(frozen=True)
class KappaSummary(Section):
    """Mean and median of the pairwise kappas; ``n_pairs`` and ``median`` absent (None) when there were no ratings."""

    mean: float | None
    pairs: list[KappaPair]
    median: float | None = None
    n_pairs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.n_pairs is None:
            return {"mean": self.mean, "pairs": jsonable(self.pairs)}
        return {"mean": self.mean, "median": self.median, "n_pairs": self.n_pairs, "pairs": jsonable(self.pairs)}


@dataclass(frozen=True)
class Agreement(Section):
    """Agreement between experts: pairwise kappas and ICCs on quality (keyed by form), Fleiss' kappa on preference."""

    quality_kappa_quadratic: KappaSummary
    quality_icc: dict[str, StatResult]
    preference_fleiss_kappa: StatResult


@dataclass(frozen=True)
class SubgroupEffects(Section):
    """Case-level arm effects in one subgroup (descriptive): quality difference and reading-time ratio."""

    quality: StatResult | None = optional()
    time_ratio: StatResult | None = optional()


@dataclass(frozen=True)
class Subgroups(Section):
    """Case-level arm effects by center and by reader experience (descriptive)."""

    center: dict[str, SubgroupEffects] = field(default_factory=dict)
    reader_experience: dict[str, SubgroupEffects] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialResults(Section):
    """The whole-trial analysis; ``primary`` (the declared analysis) first, then the secondary sections."""

    primary: PrimaryBlock
    design: str
    paired_analysis: bool
    arms: ArmsUsed
    findings: list[str]
    warnings: list[str]
    flow: Flow
    quality: QualitySection
    reading_time: ReadingTimeSection
    preference: PreferenceSection
    ai_standalone: AIStandalone
    reader_accuracy: ReaderAccuracy
    agreement: Agreement
    subgroups: Subgroups
    blinding: TrialBlinding
