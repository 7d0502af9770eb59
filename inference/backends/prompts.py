"""Prompt templates of the ``janus`` backend, named and chosen per model version (docs/janus.md).

The default, ``janus-pro-cxr``, is the published one: the Janus-Pro-CXR repository's ``inference.py`` builds its
input with DeepSeek's ``VLChatProcessor`` and conversation template ``deepseek`` (``janus/utils/conversation.py``,
separator style DeepSeek): the processor's system prompt, a blank line, ``User: <image_placeholder>\\n{text}``, a
blank line, ``Assistant:``. Without an expert model the text is the published instruction; with one it is the
sentence of the repository's README, naming the expert model's positive CheXpert labels, followed by the README's
instruction, exactly as written there (no space after ``present.``)::

    Expert analysis: Lung Opacity, Pleural Effusion present.Please examine this X-ray and provide a radiology
    report including FINDINGS and IMPRESSION.

When the expert model ran and found nothing, the sentence names CheXpert's ``No Finding`` (our choice; the
published code shows no such case). ``cxr-trial-v1`` is the project's earlier prompt (a report style and the
expert probabilities as a list), kept for model versions that used it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import DEFAULT_PROMPT_TEMPLATE, FINDING_NAMES

#: DeepSeek's VLChatProcessor.system_prompt (janus/models/processing_vlm.py), word for word.
DEEPSEEK_SYSTEM_PROMPT = (
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)
#: The instruction of Janus-Pro-CXR's inference.py.
PUBLISHED_INSTRUCTION = "Give a radiology report based on the chest x-ray image, including FINDINGS and IMPRESSION."
#: The instruction that follows the expert sentence in Janus-Pro-CXR's README.
PUBLISHED_EXPERT_INSTRUCTION = (
    "Please examine this X-ray and provide a radiology report including FINDINGS and IMPRESSION."
)
IMAGE_TAG = "<image_placeholder>"

#: CheXpert observation names of the trial's finding codes (the published expert labels are CheXpert's).
CHEXPERT_NAMES: dict[str, str] = {
    "no_finding": "No Finding",
    "enlarged_cardiomediastinum": "Enlarged Cardiomediastinum",
    "cardiomegaly": "Cardiomegaly",
    "lung_opacity": "Lung Opacity",
    "lung_lesion": "Lung Lesion",
    "edema": "Edema",
    "consolidation": "Consolidation",
    "pneumonia": "Pneumonia",
    "atelectasis": "Atelectasis",
    "pneumothorax": "Pneumothorax",
    "pleural_effusion": "Pleural Effusion",
    "pleural_other": "Pleural Other",
    "fracture": "Fracture",
    "support_devices": "Support Devices",
}


def chexpert_name(code: str) -> str:
    return CHEXPERT_NAMES.get(code, code.replace("_", " ").title())


@dataclass(frozen=True)
class PromptTemplate:
    """A conversation in DeepSeek's format (separator style ``DeepSeek`` of ``janus/utils/conversation.py``).

    ``render`` gives ``{system}{sep}{user_role}: {images}{text}{sep}{assistant_role}:`` (the system part only when
    ``system_prompt`` is set), where ``images`` is one ``<image_placeholder>\\n`` per view.
    """

    name: str
    system_prompt: str = DEEPSEEK_SYSTEM_PROMPT
    user_role: str = "User"
    assistant_role: str = "Assistant"
    instruction: str = PUBLISHED_INSTRUCTION
    expert_instruction: str = PUBLISHED_EXPERT_INSTRUCTION
    expert_sentence: str = "Expert analysis: {labels} present."
    no_finding_label: str = "No Finding"
    sep: str = "\n\n"
    legacy_format: str = ""  # cxr-trial-v1 only: a str.format template (style, findings, probabilities, context)

    def user_text(
        self,
        expert_positive: Sequence[str] | None,
        *,
        findings: Sequence[str] = (),
        probabilities: Mapping[str, float] | None = None,
        style: str = "",
        context: str = "",
    ) -> str:
        """The user's text. ``expert_positive``: codes the expert model found (``None``: no expert model ran)."""
        if self.legacy_format:
            return _legacy_text(self.legacy_format, style, findings, probabilities or {}, context)
        if expert_positive is None:
            return self.instruction
        labels = ", ".join(chexpert_name(c) for c in expert_positive) or self.no_finding_label
        return self.expert_sentence.format(labels=labels) + self.expert_instruction

    def render(self, n_images: int, user_text: str) -> str:
        content = f"{IMAGE_TAG}\n" * n_images + user_text
        head = f"{self.system_prompt}{self.sep}" if self.system_prompt else ""
        return f"{head}{self.user_role}: {content.strip()}{self.sep}{self.assistant_role}:".strip()


def _legacy_text(
    template: str, style: str, findings: Sequence[str], probabilities: Mapping[str, float], context: str
) -> str:
    names = [FINDING_NAMES.get(c, c.replace("_", " ")) for c in findings]
    lines = [
        f"- {FINDING_NAMES.get(c, c.replace('_', ' '))}: {probabilities[c]:.2f}" for c in findings if c in probabilities
    ]
    return template.format(
        style=style.strip(),
        findings=", ".join(names),
        probabilities="\n".join(lines) if lines else "- (not available)",
        context=f"\n{context.strip()}" if context.strip() else "",
    )


DEFAULT_TEMPLATE = "janus-pro-cxr"


def _registry() -> dict[str, PromptTemplate]:
    return {
        "janus-pro-cxr": PromptTemplate(name="janus-pro-cxr"),
        "cxr-trial-v1": PromptTemplate(
            name="cxr-trial-v1",
            system_prompt=DEEPSEEK_SYSTEM_PROMPT,
            user_role="<|User|>",
            assistant_role="<|Assistant|>",
            legacy_format=DEFAULT_PROMPT_TEMPLATE,
        ),
    }


TEMPLATE_NAMES = ("janus-pro-cxr", "cxr-trial-v1")


def get_template(spec: str | Mapping[str, Any] | None, legacy_format: str = "") -> PromptTemplate:
    """A template by name (default ``janus-pro-cxr``) or from a mapping of :class:`PromptTemplate` fields
    (``{"base": "janus-pro-cxr", "instruction": "..."}`` overrides fields of a named one).

    ``legacy_format``: a ``cxr-trial-v1`` format string stored on an older model version.
    """
    registry = _registry()
    if spec is None or spec == "":
        spec = DEFAULT_TEMPLATE
    if isinstance(spec, str):
        if spec not in registry:
            raise ValueError(f"Unknown prompt template {spec!r}; known: {', '.join(sorted(registry))}")
        template = registry[spec]
    else:
        fields = dict(spec)
        base = registry.get(str(fields.pop("base", DEFAULT_TEMPLATE)))
        if base is None:
            raise ValueError(f"Unknown base prompt template {spec.get('base')!r}")
        known = set(PromptTemplate.__dataclass_fields__)
        unknown = set(fields) - known
        if unknown:
            raise ValueError(f"Unknown prompt template fields: {sorted(unknown)}")
        fields.setdefault("name", f"{base.name}+custom")
        template = PromptTemplate(**{**base.__dict__, **fields})
    if legacy_format and template.legacy_format:
        try:
            legacy_format.format(style="", findings="", probabilities="", context="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                "prompt_template is neither a template name, a JSON object of template fields, nor a valid "
                f"cxr-trial-v1 format string ({type(exc).__name__}: {exc})"
            ) from exc
        template = PromptTemplate(**{**template.__dict__, "legacy_format": legacy_format})
    return template
