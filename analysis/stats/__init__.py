"""Pure statistics for cxr-trial (no Django): import from a notebook as ``from analysis.stats import ...``."""
from ._result import StatResult, jsonable
from .agreement import ICC_FORMS, cohen_kappa, fleiss_kappa, icc, icc_all
from .arms import ArmChoice, resolve_arms
from .bradley_terry import arena_ranking, bradley_terry, comparisons_from_ratings
from .comparisons import (
    describe,
    geometric_mean_ratio,
    mann_whitney,
    paired_t_test,
    relative_reduction,
    welch_t_test,
    wilcoxon_signed_rank,
)
from .mixed import fit_mixed_model, log_time_mixed_model, quality_mixed_model
from .mrmc import dbm, mrmc_analysis, obuchowski_rockette
from .power import PowerScenario, simulate_power
from .proportions import binomial_test, clopper_pearson, panel_majority, preference_rate
from .roc import auc_delong, delong_paired_test, sensitivity_specificity
from .sections import TrialResults
from .synthetic import TrialScenario, make_trial_tables
from .trial import analyse_export_dir, analyse_trial, analyse_trial_tables, read_export_dir

__all__ = [
    "ArmChoice", "ICC_FORMS", "PowerScenario", "StatResult", "TrialResults", "analyse_export_dir", "analyse_trial",
    "analyse_trial_tables", "arena_ranking", "auc_delong", "comparisons_from_ratings",
    "binomial_test", "bradley_terry", "clopper_pearson", "cohen_kappa", "dbm", "delong_paired_test", "describe",
    "fit_mixed_model", "fleiss_kappa", "geometric_mean_ratio", "icc", "icc_all", "jsonable", "log_time_mixed_model",
    "mann_whitney", "mrmc_analysis", "obuchowski_rockette", "paired_t_test", "panel_majority", "preference_rate",
    "quality_mixed_model", "read_export_dir", "relative_reduction", "resolve_arms", "sensitivity_specificity",
    "simulate_power",
    "TrialScenario", "make_trial_tables", "welch_t_test", "wilcoxon_signed_rank",
]
