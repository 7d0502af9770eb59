"""Fit the expert model's per-finding Platt scaling on a trial's reference-standard cases and store it."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from core.errors import TrialError
from trial.models import Trial

from ...expert_calibration import MIN_CASES, calibrate_expert, choose_model_version


class Command(BaseCommand):
    help = ("Fit per-finding Platt scaling of the expert model's probabilities on the trial's reference-standard "
            "cases and store it with the model version (a record of its own: the version itself never changes).")

    def add_arguments(self, parser):
        parser.add_argument("--trial", required=True, help="trial code")
        parser.add_argument("--model-version", help="model version name (default: the one of the trial's AI arms)")
        parser.add_argument("--min-cases", type=int, default=MIN_CASES, help=f"default {MIN_CASES}")
        parser.add_argument("--as-user", help="username of the acting coordinator (default: system)")

    def handle(self, *args, **o):
        trial = Trial.objects.filter(code=o["trial"]).first()
        if trial is None:
            raise CommandError(f"No trial {o['trial']}.")
        actor = None
        if o["as_user"]:
            actor = get_user_model().objects.filter(username=o["as_user"]).first()
            if actor is None:
                raise CommandError(f"No user {o['as_user']}.")
        try:
            mv = choose_model_version(trial, o["model_version"])
            cal = calibrate_expert(actor=actor, trial=trial, model_version=mv, min_cases=o["min_cases"])
        except (TrialError, PermissionDenied) as exc:
            raise CommandError(f"Not calibrated, nothing stored: {getattr(exc, 'message', exc)}") from exc
        w = self.stdout.write
        w(self.style.SUCCESS(f"Calibrated {mv.name} on trial {trial.code}: {cal.n_cases} reference cases "
                             f"(calibration {cal.pk})."))
        for code, fit in cal.findings.items():
            if "a" not in fit:
                w(f"  {code}: not fitted, {fit['note']}")
                continue
            w(f"  {code}: a {fit['a']:.4f}, b {fit['b']:.4f}; ECE {fit['before']['ece']:.4f} -> "
              f"{fit['after']['ece']:.4f} (out of fold {fit['after_cross_fitted']['ece']:.4f}); Brier "
              f"{fit['before']['brier']:.4f} -> {fit['after']['brier']:.4f}")
