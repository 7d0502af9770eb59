import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import TrialError
from inference.models import ModelVersion
from inference.services import new_model_version_from


class Command(BaseCommand):
    help = ("Make a new model version from an existing one with some fields changed. A model version with drafts "
            "cannot change (its drafts must name what made them); this is how a change is made.")

    def add_arguments(self, parser):
        parser.add_argument("source", help="name of the model version to start from")
        parser.add_argument("name", help="name of the new model version")
        parser.add_argument("--weights-path")
        parser.add_argument("--backend", choices=ModelVersion.Backend.values)
        parser.add_argument("--generation-params", help="JSON object; replaces the source's whole")
        parser.add_argument("--prompt-template", help="a template name, a JSON object of template fields, or text")

    def handle(self, *args, source, name, weights_path, backend, generation_params, prompt_template, **options):
        try:
            src = ModelVersion.objects.get(name=source)
        except ModelVersion.DoesNotExist as exc:
            raise CommandError(f"No model version named {source!r}.") from exc
        changes = {k: v for k, v in (("weights_path", weights_path), ("backend", backend),
                                     ("prompt_template", prompt_template)) if v is not None}
        if generation_params is not None:
            try:
                changes["generation_params"] = json.loads(generation_params)
            except ValueError as exc:
                raise CommandError(f"--generation-params is not JSON: {exc}") from exc
        try:
            mv = new_model_version_from(source=src, name=name, **changes)
        except TrialError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Made model version {mv.name} (id {mv.pk}) from {src.name}."))
