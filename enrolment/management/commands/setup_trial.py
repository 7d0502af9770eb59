from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import TrialError
from enrolment.protocol import apply_protocol, load_protocol


class Command(BaseCommand):
    help = "Create a trial from a declarative protocol file (YAML or JSON); see fixtures/protocol.example.yaml."

    def add_arguments(self, parser):
        parser.add_argument("protocol")
        parser.add_argument("--as-user", help="Username of the acting coordinator (default: system)")

    def handle(self, *args, protocol, as_user=None, **options):
        actor = None
        if as_user:
            actor = get_user_model().objects.filter(username=as_user).first()
            if actor is None:
                raise CommandError(f"No user {as_user}.")
        try:
            trial = apply_protocol(actor, load_protocol(protocol))
        except (TrialError, KeyError, ValueError) as exc:
            raise CommandError(f"Protocol refused, nothing written: {getattr(exc, 'message', exc)}") from exc
        self.stdout.write(self.style.SUCCESS(
            f"Trial {trial.code} created: {trial.centers.count()} centers, {trial.arms.count()} arms, "
            f"{trial.memberships.count()} members"
            + (", allocation list sealed." if hasattr(trial, "allocation_list") else ".")))
