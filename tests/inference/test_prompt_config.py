"""A model version's prompt template: a name (default: the published one), JSON fields, or an older format string."""
from __future__ import annotations

import pytest

from inference.backends import BackendConfig
from inference.backends.prompts import DEEPSEEK_SYSTEM_PROMPT, PUBLISHED_INSTRUCTION, get_template
from inference.models import ModelVersion
from inference.runner import backend_config


def _config(prompt_template: str) -> BackendConfig:
    mv = ModelVersion(name="v", backend=ModelVersion.Backend.JANUS, weights_path="/w", prompt_template=prompt_template)
    return BackendConfig.from_dict(backend_config(mv, []))


def test_default_is_the_published_template():
    cfg = _config("")
    assert cfg.prompt == "janus-pro-cxr" and cfg.generation.max_new_tokens == 512
    template = get_template(cfg.prompt)
    assert template.render(1, template.user_text(None)) == (
        f"{DEEPSEEK_SYSTEM_PROMPT}\n\nUser: <image_placeholder>\n{PUBLISHED_INSTRUCTION}\n\nAssistant:"
    )


def test_named_json_and_legacy_templates():
    assert _config("cxr-trial-v1").prompt == "cxr-trial-v1"
    custom = _config('{"instruction": "Describe.", "user_role": "Doctor"}')
    template = get_template(custom.prompt)
    assert template.render(2, template.user_text(None)).endswith(
        "Doctor: <image_placeholder>\n<image_placeholder>\nDescribe.\n\nAssistant:"
    )
    legacy = _config("{style} Probabilities: {probabilities}")
    assert legacy.prompt == "cxr-trial-v1" and legacy.prompt_template == "{style} Probabilities: {probabilities}"
    broken = _config("{not json")
    with pytest.raises(ValueError, match="neither a template name"):
        get_template(broken.prompt, legacy_format=broken.prompt_template)
    with pytest.raises(ValueError, match="Unknown prompt template fields"):
        get_template({"colour": "blue"})
