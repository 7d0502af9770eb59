"""A model version's backend configuration, read by the runner (to load and generate) and by serving (its
``max_new_tokens`` sets the task's time limit). Its own module so neither imports the other for it."""
from __future__ import annotations

import json

from inference.backends.prompts import TEMPLATE_NAMES

from .models import ModelVersion


def backend_config(mv: ModelVersion, findings: list[str]) -> dict:
    """The backend config of a model version. ``prompt_template`` holds a template name (``janus-pro-cxr``, the
    default, or ``cxr-trial-v1``), a JSON object of template fields, or an older free-text ``cxr-trial-v1``
    format string (inference/backends/prompts.py)."""
    cfg = dict(mv.generation_params or {})
    if mv.weights_path:
        cfg["weights_path"] = mv.weights_path
    text = (mv.prompt_template or "").strip()
    try:
        fields = json.loads(text) if text.startswith("{") else None
    except ValueError:
        fields = None  # an older format string such as "{style} ..."
    if text in TEMPLATE_NAMES:
        cfg["prompt"] = text
    elif isinstance(fields, dict):
        cfg["prompt"] = fields
    elif text:
        cfg["prompt"], cfg["prompt_template"] = "cxr-trial-v1", mv.prompt_template
    return cfg
