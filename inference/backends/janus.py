"""``janus``: Janus-Pro(-CXR) through transformers' ``JanusForConditionalGeneration`` and ``JanusProcessor``.

- ``load(config)``: ``config.weights_path`` is a local folder written by ``save_pretrained`` (a converted
  Janus-Pro-1B, a Janus-Pro-CXR fine-tune, or :func:`inference.tiny.build_tiny_janus`); loaded with
  ``local_files_only=True`` (nothing is ever downloaded), bf16 on CUDA / float32 on CPU (``config.dtype``
  overrides), on ``config.device`` (``'auto'``: CUDA if available). Any failure -- missing folder, missing
  ``config.json``, no weight files, truncated safetensors, a broken tokenizer -- raises :class:`ModelLoadError`
  naming the path and the cause. The SHA-256 of every weight file is recorded (:func:`weights_sha256`).
- The prompt is ``config.prompt_template`` filled with the trial's report style and the expert classifier's
  probabilities of the findings (the paper's large-small collaboration): from ``context['finding_probabilities']``
  when the caller has them, else from the ``classifier`` backend configured in ``config.classifier`` (default: a
  classifier without weights, i.e. its retrieval fallback). The draft's ``probabilities`` are those classifier
  probabilities (the language model does not score findings).
- Decoding: greedy by default (reproducible); ``do_sample`` with ``temperature``/``top_p`` and a seed
  (``context['seed']`` or ``config.generation.seed``) when configured.
- Output: decoded with special tokens skipped, cleaned of control characters and split into findings/impression
  (:func:`inference.backends.text.parse_report`); text without headings becomes the findings. Never raises on
  garbage output (a random model produces plenty).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from .base import (
    FINDING_NAMES,
    WEIGHT_SUFFIXES,
    Backend,
    BackendConfig,
    DraftResult,
    GenerationRequest,
    ModelLoadError,
    resolve_device,
    resolve_dtype_name,
    to_rgb,
    weights_sha256,
)
from .text import clean_text, parse_report

__all__ = ["JanusBackend", "ModelLoadError", "weights_sha256", "build_prompt_text", "LABEL"]

LABEL = "janus"

# transformers' Janus ``generate`` fills the generation config's defaults (max_length=20, min_length=0) before
# calling ``GenerationMixin.generate``, which then warns on every call that both max_length and max_new_tokens
# are set, and that a generation_config came with extra arguments (guidance_scale=None, which Janus itself adds).
# Both are noise for us; drop exactly these messages.
_NOISE = ("seem to have been set", "Passing `generation_config` together with generation-related arguments")


class _JanusGenerateNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in _NOISE)


def silence_generate_noise() -> None:
    """Install the filter on transformers' generation logger (idempotent)."""
    logger = logging.getLogger("transformers.generation.utils")
    if not any(isinstance(f, _JanusGenerateNoise) for f in logger.filters):
        logger.addFilter(_JanusGenerateNoise())


def build_prompt_text(
    template: str,
    style: str,
    findings: Sequence[str],
    probabilities: Mapping[str, float],
    context_text: str = "",
) -> str:
    """Fill the prompt template (see :data:`inference.backends.base.DEFAULT_PROMPT_TEMPLATE`)."""
    names = [FINDING_NAMES.get(c, c.replace("_", " ")) for c in findings]
    lines = [
        f"- {FINDING_NAMES.get(c, c.replace('_', ' '))}: {probabilities[c]:.2f}"
        for c in findings
        if c in probabilities
    ]
    return template.format(
        style=style.strip(),
        findings=", ".join(names),
        probabilities="\n".join(lines) if lines else "- (not available)",
        context=f"\n{context_text.strip()}" if context_text.strip() else "",
    )


def _check_folder(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(str(path), "folder does not exist")
    if not path.is_dir():
        raise ModelLoadError(str(path), "not a folder (expected the output of save_pretrained)")
    if not (path / "config.json").is_file():
        raise ModelLoadError(str(path), "config.json is missing")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(str(path), f"config.json is unreadable: {exc}") from exc
    if config.get("model_type") != "janus":
        raise ModelLoadError(
            str(path), f"config.json has model_type {config.get('model_type')!r}, expected 'janus'"
        )
    if not any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir() if p.is_file()):
        raise ModelLoadError(str(path), "no weight files (*.safetensors or *.bin)")
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(str(path), f"model.safetensors.index.json is unreadable: {exc}") from exc
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            raise ModelLoadError(str(path), f"missing weight shards: {', '.join(missing)}")


class JanusBackend(Backend):
    name = "janus"
    label = LABEL

    def __init__(self) -> None:
        super().__init__()
        self.model: Any = None
        self.processor: Any = None
        self.classifier: Backend | None = None
        self.device = "cpu"
        self.dtype_name = "float32"
        self.weights_sha256: dict[str, str] = {}

    # loading ---------------------------------------------------------------------------------------------------
    def _load(self, config: BackendConfig) -> None:
        if not config.weights_path:
            raise ModelLoadError(
                None, "the janus backend needs weights_path (a local save_pretrained folder)"
            )
        path = Path(config.weights_path).expanduser()
        _check_folder(path)
        try:
            import torch
            from transformers import JanusForConditionalGeneration, JanusProcessor
        except ImportError as exc:
            raise ModelLoadError(str(path), f"torch/transformers not installed ({exc})") from exc
        device = resolve_device(config.device)
        dtype_name = resolve_dtype_name(device, config.dtype)
        try:
            dtype = getattr(torch, dtype_name)
            processor = JanusProcessor.from_pretrained(path, local_files_only=True)
            model = JanusForConditionalGeneration.from_pretrained(path, dtype=dtype, local_files_only=True)
            model = model.to(device).eval()
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure of a corrupt folder becomes one clear error
            raise ModelLoadError(str(path), exc) from exc
        image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
        if image_token_id != model.config.image_token_id:
            raise ModelLoadError(
                str(path),
                f"tokenizer's {processor.image_token!r} is id {image_token_id}, model expects {model.config.image_token_id}",
            )
        silence_generate_noise()
        self.processor, self.model = processor, model
        self.device, self.dtype_name = device, dtype_name
        if config.options.get("hash_weights", True):
            self.weights_sha256 = weights_sha256(path)
        if config.options.get("compile"):
            self.model.forward = torch.compile(self.model.forward, mode="reduce-overhead")
        from . import get_backend

        self.classifier = get_backend("classifier")
        classifier_cfg = config.classifier or BackendConfig(bank_path=config.bank_path, k=config.k)
        self.classifier.load(classifier_cfg)

    # prompting -------------------------------------------------------------------------------------------------
    def _probabilities(
        self, images: Sequence[Image.Image], findings: Sequence[str], context: Mapping[str, Any]
    ) -> tuple[dict[str, float], dict[str, Any]]:
        given = context.get("finding_probabilities")
        if given:
            return {c: float(given[c]) for c in findings if c in given}, {"source": "context"}
        assert self.classifier is not None
        result = self.classifier.generate(images, findings, {})
        return dict(result.probabilities), {
            "source": result.backend,
            **{k: v for k, v in result.parameters.items() if k in ("classifier_mode", "retrieval_mode")},
        }

    def build_prompt(self, n_images: int, user_text: str) -> str:
        processor = self.processor
        content: list[dict[str, str]] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": user_text})
        if getattr(processor, "chat_template", None):
            return processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        images = "".join(f"{processor.image_token}\n" for _ in range(n_images))
        return f"<|User|>: {images}{user_text}\n\n<|Assistant|>:"

    # generation ------------------------------------------------------------------------------------------------
    def _generation_kwargs(self) -> dict[str, Any]:
        gen = self.config.generation
        tok = self.processor.tokenizer
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(gen.max_new_tokens),
            "do_sample": bool(gen.do_sample),
            "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            "eos_token_id": tok.eos_token_id,
        }
        if gen.do_sample:
            kwargs.update(temperature=float(gen.temperature), top_p=float(gen.top_p))
        if gen.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = float(gen.repetition_penalty)
        if self.config.options.get("static_cache"):
            kwargs["cache_implementation"] = "static"
        if self.config.options.get("min_new_tokens"):
            # a site may force a minimum report length (also used by tests to make generation take a while)
            kwargs["min_new_tokens"] = int(self.config.options["min_new_tokens"])
        return kwargs

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[DraftResult]:
        """One padded ``model.generate`` call for all requests (left padding; same seed for the batch)."""
        if not self.loaded:
            return super().generate_batch(requests)  # raises BackendNotLoaded
        if not requests:
            return []
        import torch

        prepared = []
        for req in requests:
            if not req.images:
                raise ValueError("every request needs at least one image")
            findings = tuple(req.findings or self.config.findings)
            context = dict(req.context or {})
            views = [to_rgb(im) for im in list(req.images)[: max(1, self.config.max_images)]]
            probs, prob_info = self._probabilities(views, findings, context)
            user_text = build_prompt_text(
                self.config.prompt_template,
                str(context.get("report_style") or self.config.report_style),
                findings,
                probs,
                str(context.get("indication") or ""),
            )
            prepared.append(
                (views, findings, probs, prob_info, user_text, self.build_prompt(len(views), user_text))
            )
        seed = int((requests[0].context or {}).get("seed", self.config.generation.seed))

        start = time.perf_counter()
        inputs = self.processor(
            text=[p[5] for p in prepared],
            images=[im for p in prepared for im in p[0]],
            padding=True,
            return_tensors="pt",
        )
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        torch.manual_seed(seed)
        if self.device.startswith("cuda"):
            torch.cuda.manual_seed_all(seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self._generation_kwargs())
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start

        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_len:].cpu()
        eos = self.processor.tokenizer.eos_token_id
        pad = self.processor.tokenizer.pad_token_id
        texts = self.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        results = []
        for row, text, (_views, _findings, probs, prob_info, user_text, prompt) in zip(
            new_tokens.tolist(), texts, prepared, strict=True
        ):
            n_new = next((i + 1 for i, t in enumerate(row) if t == eos), len([t for t in row if t != pad]))
            cleaned = clean_text(text)
            findings_text, impression = parse_report(cleaned)
            results.append(
                DraftResult(
                    findings=findings_text,
                    impression=impression,
                    text=cleaned,
                    probabilities=probs,
                    backend=LABEL,
                    prompt=prompt,
                    parameters={
                        "backend": self.name,
                        "weights_path": str(self.config.weights_path),
                        "weights_sha256": self.weights_sha256,
                        "device": self.device,
                        "dtype": self.dtype_name,
                        "generation": self._generation_kwargs(),
                        "new_tokens": n_new,
                        "batch_size": len(requests),
                        "probabilities_from": prob_info,
                        "user_text": user_text,
                    },
                    seed=seed,
                    load_s=self.load_s,
                    generate_s=elapsed,
                )
            )
        return results

    def _generate(
        self, images: Sequence[Image.Image], findings: Sequence[str], context: Mapping[str, Any]
    ) -> DraftResult:
        return self.generate_batch([GenerationRequest(images=images, findings=findings, context=context)])[0]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update({"weights_sha256": self.weights_sha256, "device": self.device, "dtype": self.dtype_name})
        return info
