from django.core.management.base import BaseCommand, CommandError

from inference.backends.deepseek_janus import ConversionError, convert_deepseek_janus


class Command(BaseCommand):
    help = (
        "Convert a Janus checkpoint in DeepSeek's own format (the published Janus-Pro-CXR weights, config "
        "model_type 'multi_modality') into transformers' Janus layout, offline (docs/janus.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("src", help="folder with DeepSeek's config.json, weights, tokenizer and processor files")
        parser.add_argument("dst", help="output folder (set it as the model version's weights_path)")
        parser.add_argument(
            "--vision-heads", type=int, default=None,
            help="attention heads of the vision tower, only for a model_name outside DeepSeek's SigLIP table",
        )
        parser.add_argument("--overwrite", action="store_true", help="replace a non-empty dst")

    def handle(self, *args, src, dst, vision_heads, overwrite, **options):
        try:
            report = convert_deepseek_janus(src, dst, vision_heads=vision_heads, overwrite=overwrite)
        except ConversionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Converted {report.n_tensors} tensors into {report.output} "
                f"(dropped {len(report.dropped)} unused, lm_head {'tied' if report.tie_word_embeddings else 'kept'}; "
                f"vision {report.vision['num_hidden_layers']} layers x {report.vision['hidden_size']}, "
                f"{report.vision['num_attention_heads']} heads). Manifest: conversion_manifest.json"
            )
        )
