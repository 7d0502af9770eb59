"""Command line for the statistics layer (no Django): ``python -m analysis {mrmc,auc,power,trial} ...``.

Every subcommand prints one JSON document on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

from analysis.stats import (
    auc_delong,
    delong_paired_test,
    jsonable,
    mrmc_analysis,
    simulate_power,
)
from analysis.stats.synthetic import TrialScenario
from analysis.stats.trial import DESIGNS, analyse_export_dir


def _parse_value(v: str | None) -> Any:
    if v is None:
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _cmd_mrmc(a: argparse.Namespace) -> dict[str, Any]:
    df = pd.read_csv(a.csv)
    mods = [_parse_value(m) for m in a.modalities.split(",")] if a.modalities else None
    return mrmc_analysis(df, modalities=mods, conf_level=a.conf_level, positive=_parse_value(a.positive))


def _cmd_auc(a: argparse.Namespace) -> dict[str, Any]:
    df = pd.read_csv(a.csv)
    for col in [a.truth, *a.score]:
        if col not in df:
            raise SystemExit(f"column {col!r} not in {a.csv} (columns: {list(df.columns)})")
    pos = _parse_value(a.positive) if a.positive is not None else None
    if pos is None:
        pos = 1 if set(pd.unique(df[a.truth].dropna())) <= {0, 1} else None
    out: dict[str, Any] = {"truth": a.truth, "positive": pos, "direction": a.direction, "auc": {}}
    for s in a.score:
        out["auc"][s] = auc_delong(df[a.truth], df[s], positive=pos, direction=a.direction,
                                   conf_level=a.conf_level).to_dict()
    if len(a.score) == 2:
        out["paired_test"] = delong_paired_test(df[a.truth], df[a.score[0]], df[a.score[1]], positive=pos,
                                                direction=a.direction, conf_level=a.conf_level).to_dict()
    return out


def _cmd_power(a: argparse.Namespace) -> dict[str, Any]:
    sc = TrialScenario(design=a.design, n_cases=a.n_cases, n_readers=a.n_readers, n_centers=a.n_centers,
                       n_experts=a.n_experts, majority_k=a.majority, quality_effect=a.effect,
                       time_ratio=a.time_ratio)
    try:
        sc = sc.validate()
        if a.preference_share is not None:
            sc = sc.with_preference_share(a.preference_share)
    except ValueError as exc:
        raise SystemExit(f"power: {exc}") from exc
    res = simulate_power(sc, sims=a.sims, alpha=a.alpha, seed=a.seed, n_permutations=a.permutations, jobs=a.jobs)
    return res.to_dict()


def _cmd_trial(a: argparse.Namespace) -> dict[str, Any]:
    return analyse_export_dir(a.export_dir, design=a.design, assisted_arm=a.assisted, control_arm=a.control,
                              majority_k=a.majority, threshold=a.threshold, n_permutations=a.permutations,
                              seed=a.seed, df_method=a.df_method)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("mrmc", help="Obuchowski-Rockette and DBM MRMC analysis of a long ratings CSV")
    m.add_argument("csv", help="CSV with columns reader, modality, case, truth, rating")
    m.add_argument("--modalities", help="comma-separated order (differences are first - second)")
    m.add_argument("--positive", default="1", help="truth value of diseased cases (default 1)")
    m.add_argument("--conf-level", type=float, default=0.95)
    m.set_defaults(func=_cmd_mrmc)

    u = sub.add_parser("auc", help="AUC with DeLong variance/CI; paired DeLong test for two scores")
    u.add_argument("csv")
    u.add_argument("--truth", required=True, help="truth column")
    u.add_argument("--score", required=True, action="append", help="score column (give twice for a paired test)")
    u.add_argument("--positive", help="truth value of positives (default 1 for 0/1 truth)")
    u.add_argument("--direction", choices=["<", ">", "auto"], default="<",
                   help="'<': higher score = positive (default); 'auto': pROC's median rule")
    u.add_argument("--conf-level", type=float, default=0.95)
    u.set_defaults(func=_cmd_auc)

    w = sub.add_parser("power", help="power of each primary test (quality LMM, time LMM, preference) by simulation")
    w.add_argument("--design", choices=DESIGNS, default="paired_by_case")
    w.add_argument("--n-cases", type=int, default=296)
    w.add_argument("--n-readers", type=int, default=20, help="all used; counts that do not fit the design are refused")
    w.add_argument("--n-centers", type=int, default=3)
    w.add_argument("--n-experts", type=int, default=5)
    w.add_argument("--majority", type=int, default=None,
                   help="experts needed for 'assisted preferred' (default 3 of 5)")
    w.add_argument("--effect", type=float, default=0.24, help="quality difference, assisted - control (1-5 scale)")
    w.add_argument("--time-ratio", type=float, default=0.82, help="ratio of geometric mean reading times")
    w.add_argument("--preference-share", type=float, default=None,
                   help="share of cases with a panel majority for assisted (sets the tie band; default 54.3%% at the "
                        "published size)")
    w.add_argument("--sims", type=int, default=200)
    w.add_argument("--alpha", type=float, default=0.05)
    w.add_argument("--seed", type=int, default=20250101)
    w.add_argument("--permutations", type=int, default=0,
                   help="reader randomisation test permutations (a sensitivity analysis; 0 = off)")
    w.add_argument("--jobs", type=int, default=1, help="worker processes")
    w.set_defaults(func=_cmd_power)

    t = sub.add_parser("trial", help="the docs/design.md section 7 analysis of an export directory (the declared "
                                     "primary analysis first, under 'primary')")
    t.add_argument("export_dir", help="directory with reads.csv, ratings.csv, drafts.csv, cases.csv")
    t.add_argument("--design", choices=DESIGNS, default="paired_by_case")
    t.add_argument("--assisted", default="ai_assisted", help="arm code of the assisted arm (X or Y when masked)")
    t.add_argument("--control", default=None, help="arm code of the control arm (default: the other arm)")
    t.add_argument("--majority", type=int, default=None, help="experts needed for 'assisted preferred' per case")
    t.add_argument("--threshold", type=float, default=0.5, help="AI operating point on the probabilities")
    t.add_argument("--permutations", type=int, default=0,
                   help="permutations of the preference randomisation test (opt-in sensitivity analysis, not "
                        "calibrated; default 0 skips it)")
    t.add_argument("--seed", type=int, default=20250101, help="seed of that randomisation test")
    t.add_argument("--df-method", choices=["satterthwaite", "kenward-roger"], default="satterthwaite",
                   help="denominator df of the primary mixed-model tests (declared: Satterthwaite)")
    t.set_defaults(func=_cmd_trial)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = args.func(args)
    json.dump(jsonable(result), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
    return 0
