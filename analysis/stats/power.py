"""Power by simulation for a paired-by-case reader trial (pure numpy/scipy; no Django).

Each simulated trial: ``n_cases`` cases spread over ``n_centers``; readers randomised to two arms stratified by
center; every case read once per arm by a reader of that arm at its center; each pair of reports scored 1-5 by a
panel of ``n_experts``. Quality = base + effect*assisted + case + reader + center + expert + noise (rounded and
clipped to 1-5 unless ``discrete=False``); log reading time = log(base) + log(time_ratio)*assisted + case + reader +
center + noise. The primary tests (paired t and Wilcoxon on case-level mean quality; paired t on log time, i.e. the
ratio of geometric means, and Wilcoxon on times) are run on every simulated trial; power = share of p < alpha.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from ._result import StatResult
from .proportions import clopper_pearson


@dataclass
class PowerScenario:
    n_cases: int = 296
    n_readers: int = 20
    n_centers: int = 3
    n_experts: int = 5
    quality_base: float = 4.1
    quality_effect: float = 0.25
    sd_case: float = 0.45
    sd_reader: float = 0.2
    sd_center: float = 0.1
    sd_expert: float = 0.2
    sd_residual: float = 0.6
    discrete: bool = True
    time_base_seconds: float = 146.6
    time_ratio: float = 0.817
    sd_log_case: float = 0.2
    sd_log_reader: float = 0.15
    sd_log_center: float = 0.1
    sd_log_residual: float = 0.3


def simulate_trial_data(scenario: PowerScenario, sims: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Simulate ``sims`` trials at once. Returns arrays indexed [sim, case, arm] (arm 0 = control, 1 = assisted):
    ``quality`` (case-level mean over the expert panel), ``seconds``, plus ``center`` [case] and ``reader``
    [sim, case, arm]."""
    s = scenario
    k, e = s.n_cases, s.n_experts
    center = np.arange(k) % s.n_centers
    per_center = max(1, s.n_readers // (2 * s.n_centers))
    # readers of arm a at center c: ids (c * 2 + a) * per_center + 0..per_center-1
    pick = rng.integers(0, per_center, size=(sims, k, 2))
    arm_idx = np.arange(2)[None, None, :]
    reader = (center[None, :, None] * 2 + arm_idx) * per_center + pick
    n_reader_ids = s.n_centers * 2 * per_center
    assisted = np.array([0.0, 1.0])[None, None, :]

    r_eff = rng.normal(0, s.sd_reader, (sims, n_reader_ids))
    c_eff = rng.normal(0, s.sd_center, (sims, s.n_centers))
    case_eff = rng.normal(0, s.sd_case, (sims, k, 1))
    exp_eff = rng.normal(0, s.sd_expert, (sims, 1, 1, e))
    rdr = np.take_along_axis(r_eff, reader.reshape(sims, -1), axis=1).reshape(sims, k, 2)
    mu = s.quality_base + s.quality_effect * assisted + case_eff + rdr + c_eff[:, center][:, :, None]
    scores = mu[..., None] + exp_eff + rng.normal(0, s.sd_residual, (sims, k, 2, e))
    if s.discrete:
        scores = np.clip(np.rint(scores), 1, 5)
    quality = scores.mean(axis=3)

    r_log = rng.normal(0, s.sd_log_reader, (sims, n_reader_ids))
    c_log = rng.normal(0, s.sd_log_center, (sims, s.n_centers))
    lt = (np.log(s.time_base_seconds) + np.log(s.time_ratio) * assisted + rng.normal(0, s.sd_log_case, (sims, k, 1))
          + np.take_along_axis(r_log, reader.reshape(sims, -1), axis=1).reshape(sims, k, 2)
          + c_log[:, center][:, :, None] + rng.normal(0, s.sd_log_residual, (sims, k, 2)))
    return {"quality": quality, "seconds": np.exp(lt), "center": center, "reader": reader}


def simulate_power(
    scenario: PowerScenario | None = None,
    sims: int = 500,
    alpha: float = 0.05,
    seed: int = 20250101,
    mixed_model_sims: int = 0,
    **overrides: Any,
) -> StatResult:
    """Power of the primary tests by simulation. ``overrides`` replace scenario fields (e.g. n_cases=150).

    Estimate/CI: power of the paired t-test on case-level quality (Clopper-Pearson CI for the Monte-Carlo error);
    ``extras['power']`` has every test, ``extras['mean_estimates']`` the average estimates (which should sit near
    the true effects), ``extras['scenario']`` the inputs.

    Readers are nested in arms in this design, so reader variance enters the arm difference: the case-level paired
    tests then reject too often under H0 (see ``extras['power']`` with zero effects). ``mixed_model_sims`` > 0 also
    fits the reader/center mixed models on that many of the simulated trials (about 0.2 s each) and reports their
    power as ``quality_mixed_model`` and ``time_mixed_model``.
    """
    sc = scenario or PowerScenario()
    if overrides:
        sc = PowerScenario(**{**asdict(sc), **overrides})
    rng = np.random.default_rng(seed)
    data = simulate_trial_data(sc, sims, rng)
    q, t = data["quality"], data["seconds"]
    dq = q[:, :, 1] - q[:, :, 0]
    p_q_t = stats.ttest_rel(q[:, :, 1], q[:, :, 0], axis=1).pvalue
    nz = np.where(dq == 0, np.nan, dq)  # zero differences dropped, as R/scipy 'wilcox'
    p_q_w = stats.wilcoxon(nz, axis=1, nan_policy="omit", method="asymptotic", correction=True).pvalue
    lt = np.log(t)
    p_t_t = stats.ttest_rel(lt[:, :, 1], lt[:, :, 0], axis=1).pvalue
    p_t_w = stats.wilcoxon(t[:, :, 1] - t[:, :, 0], axis=1, method="asymptotic", correction=True).pvalue
    power = {
        "quality_paired_t": float(np.mean(p_q_t < alpha)),
        "quality_wilcoxon": float(np.mean(np.asarray(p_q_w) < alpha)),
        "time_log_paired_t": float(np.mean(p_t_t < alpha)),
        "time_wilcoxon": float(np.mean(p_t_w < alpha)),
        "both_primary": float(np.mean((p_q_t < alpha) & (p_t_t < alpha))),
    }
    means = {
        "quality_difference": float(dq.mean()),
        "time_ratio_geometric": float(np.exp((lt[:, :, 1] - lt[:, :, 0]).mean())),
        "time_relative_reduction": float(np.mean(1 - t[:, :, 1].mean(axis=1) / t[:, :, 0].mean(axis=1))),
    }
    if mixed_model_sims > 0:
        import pandas as pd

        from .mixed import log_time_mixed_model, quality_mixed_model

        m = min(mixed_model_sims, sims)
        pq, pt, est_q, est_t = [], [], [], []
        k = sc.n_cases
        for i in range(m):
            df = pd.DataFrame({
                "case_code": np.repeat(np.arange(k), 2),
                "arm": np.tile(["unassisted", "ai_assisted"], k),
                "reader": data["reader"][i].ravel(),
                "center": np.repeat(data["center"], 2),
                "score": q[i].ravel(),
                "active_seconds": t[i].ravel(),
            })
            rq = quality_mixed_model(df, random_effects=("reader", "center"))
            rt = log_time_mixed_model(df)
            pq.append(rq.p if rq.p is not None else np.nan)
            pt.append(rt.p if rt.p is not None else np.nan)
            est_q.append(rq.estimate)
            est_t.append(rt.estimate)
        power["quality_mixed_model"] = float(np.nanmean(np.asarray(pq) < alpha))
        power["time_mixed_model"] = float(np.nanmean(np.asarray(pt) < alpha))
        power["mixed_model_sims"] = m
        means["quality_difference_mixed"] = float(np.nanmean(np.asarray(est_q, dtype=float)))
        means["time_ratio_mixed"] = float(np.nanmean(np.asarray(est_t, dtype=float)))
    hits = int(np.sum(p_q_t < alpha))
    return StatResult(method="Power by simulation (paired-by-case design)", estimate=power["quality_paired_t"],
                      ci=clopper_pearson(hits, sims), n=sims,
                      extras={"alpha": alpha, "seed": seed, "sims": sims, "power": power, "mean_estimates": means,
                              "scenario": asdict(sc)})
