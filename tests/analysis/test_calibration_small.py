"""A small calibration run in the suite (the full table: benchmarks/calibration.py).

200 null trials of a small paired-by-case design (readers nested in arms): the primary reading-time model (the
fastest primary test) must reject about 5% of them and its 95% CI must hold the true ratio about 95% of the time;
the old case-level paired t on the same trials must not (it ignores readers).
"""
import numpy as np
import pytest
from scipy import stats

from analysis.stats.power import case_level_paired_t
from analysis.stats.primary import reading_time_primary
from analysis.stats.synthetic import TrialScenario, make_trial_tables

pytestmark = pytest.mark.slow

SIMS = 200


def _acceptance(n: int, p: float, level: float = 0.999) -> tuple[int, int]:
    """Counts of n Bernoulli(p) trials that fall outside only with probability 1 - level (two-sided)."""
    tail = (1 - level) / 2
    return int(stats.binom.ppf(tail, n, p)), int(stats.binom.isf(tail, n, p))


def test_primary_time_model_holds_its_level_where_the_case_level_t_does_not():
    sc = TrialScenario(n_cases=40, n_readers=8, n_centers=2).null()
    reject = cover = reject_case_t = 0
    for i in range(SIMS):
        tables = make_trial_tables(scenario=sc, rng=np.random.default_rng([11, i]))
        res = reading_time_primary(tables, design=sc.design, assisted="ai_assisted", control="unassisted")
        assert res.p is not None, res.note
        reject += res.p < 0.05
        cover += res.ci[0] <= sc.time_ratio <= res.ci[1]
        reject_case_t += case_level_paired_t(tables)["time_case_paired_t"][3] < 0.05
    lo, hi = _acceptance(SIMS, 0.05)
    assert lo <= reject <= hi, (reject, (lo, hi))
    assert reject_case_t > hi, reject_case_t  # the old case-level test rejects far more often than 5%
    lo_c, hi_c = _acceptance(SIMS, 0.95)
    assert lo_c <= cover <= hi_c, (cover, (lo_c, hi_c))
