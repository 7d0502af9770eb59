"""Create a synthetic trial with known effects through the real services (see analysis.simulation)."""
from __future__ import annotations

from dataclasses import fields

from django.core.management.base import BaseCommand, CommandError

from core.errors import TrialError
from trial.models import Trial

from ...simulation import SimulationParams, simulate_trial


class Command(BaseCommand):
    help = ("Create a simulated trial (cases, readers, experts, reads, ratings, drafts) with known effects, through "
            "the same services as real use, and lock it unless --no-lock.")

    def add_arguments(self, parser):
        d = SimulationParams()
        parser.add_argument("--code", default=d.code, help="trial code (must not exist)")
        parser.add_argument("--cases", type=int, default=d.cases)
        parser.add_argument("--readers", type=int, default=d.readers)
        parser.add_argument("--centers", type=int, default=d.centers)
        parser.add_argument("--experts", type=int, default=d.experts, help="experts; all rate every case")
        parser.add_argument("--design", choices=Trial.Design.values, default=d.design)
        parser.add_argument("--quality-shift", type=float, default=d.quality_shift,
                            help="true difference of mean quality scores, AI - control, on the 1-5 scale")
        parser.add_argument("--time-ratio", type=float, default=d.time_ratio,
                            help="true ratio of geometric mean reading times, AI / control")
        parser.add_argument("--preference", type=float, default=d.preference,
                            help="share of cases where a panel majority prefers the AI report (sets the experts' "
                                 "tie band; default: the band giving the published 54.3%% with 5 experts)")
        parser.add_argument("--reader-sd", type=float, default=d.reader_sd, help="reader effect SD on quality")
        parser.add_argument("--case-sd", type=float, default=d.case_sd, help="case effect SD on quality")
        parser.add_argument("--report-sd", type=float, default=d.report_sd,
                            help="report (reader x case) effect SD on quality")
        parser.add_argument("--expert-sd", type=float, default=d.expert_sd, help="expert effect SD on quality")
        parser.add_argument("--residual-sd", type=float, default=d.residual_sd,
                            help="SD of an expert's perception of one report (drives scores and preferences)")
        parser.add_argument("--time-reader-sd", type=float, default=d.time_reader_sd,
                            help="reader effect SD on log reading time")
        parser.add_argument("--model-auc", type=float, default=d.model_auc, help="the model's AUC per finding")
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--password", default=None,
                            help="password for the simulated users (default: unusable, no login)")
        parser.add_argument("--no-lock", action="store_true", help="stop in the rating status (arms stay masked)")

    def handle(self, *args, **o):
        if Trial.objects.filter(code=o["code"]).exists():
            raise CommandError(f"A trial with code {o['code']} already exists.")
        names = {f.name for f in fields(SimulationParams)} - {"lock"}
        params = SimulationParams(**{k: v for k, v in o.items() if k in names}, lock=not o["no_lock"])
        try:
            out = simulate_trial(params, log=lambda s: self.stdout.write(s))
        except TrialError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Simulated trial {out['trial'].code}: {out['reads']} reads, {out['ratings']} ratings, status "
            f"{out['trial'].status}. Statistician login: {o['code'].lower()}-stat"))
