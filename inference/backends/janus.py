"""``janus``: Janus-Pro(-CXR) through transformers' ``JanusForConditionalGeneration`` and ``JanusProcessor``.

- ``load(config)``: ``config.weights_path`` is a local folder in transformers' layout (``save_pretrained``
  output: a converted Janus-Pro-CXR, or :func:`inference.tiny.build_tiny_janus`); loaded with
  ``local_files_only=True`` (nothing is ever downloaded), bf16 on CUDA / float32 on CPU (``config.dtype``
  overrides), on ``config.device`` (``'auto'``: CUDA if available). A folder in DeepSeek's own format (the
  published weights, ``model_type: multi_modality``) is refused with the command that converts it
  (``manage.py convert_janus``), or converted once into ``config.options['convert_cache']`` when that is set
  (docs/janus.md). Any other failure raises :class:`ModelLoadError` naming the path and the cause. The SHA-256 of
  every weight file is recorded (:func:`weights_sha256`).
- The prompt is the model version's named template (:mod:`inference.backends.prompts`; default
  ``janus-pro-cxr``, the published one: DeepSeek's system prompt, ``User:``/``Assistant:``, the published
  instruction, and the expert sentence naming the expert model's positive labels when an expert model ran).
  The draft's ``prompt`` is the model's input decoded token for token (special tokens, the expanded image
  tokens and the system prompt included), so it is exactly what the model received.
- Expert model: ``context['finding_probabilities']`` when the caller has them, else the ``classifier`` backend
  configured in ``config.classifier``; with neither, the draft has **no** probabilities and the prompt no expert
  sentence (nothing is made up). Positive = probability >= ``config.options['expert_threshold']`` (0.5), or
  the finding's entry of ``config.options['expert_thresholds']``.
- Images are resized and padded the way DeepSeek's ``VLMImageProcessor`` does (``int()`` sizes; transformers
  rounds) before the processor sees them (``config.options['image_resize']``: ``'deepseek'``, or
  ``'transformers'`` to leave it to the processor).
- Decoding: greedy by default (reproducible); ``do_sample`` with ``temperature``/``top_p`` and a seed
  (``context['seed']`` or ``config.generation.seed``) when configured.
- Output: decoded with special tokens skipped, cleaned of control characters and split into findings/impression
  (:func:`inference.backends.text.parse_report`); text without headings becomes the findings. Never raises on
  garbage output (a random model produces plenty).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from . import get_backend
from .base import (
    WEIGHT_SUFFIXES,
    Backend,
    BackendConfig,
    DraftResult,
    GenerationParams,
    GenerationRequest,
    ModelLoadError,
    code_version,
    resolve_device,
    resolve_dtype_name,
    to_rgb,
    weights_sha256,
)
from .deepseek_janus import MANIFEST, ConversionError, convert_deepseek_janus, deepseek_resize, is_deepseek_janus
from .prompts import PromptTemplate, get_template
from .text import clean_text, parse_report

__all__ = ["JanusBackend", "ModelLoadError", "weights_sha256", "LABEL"]

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


def _deepseek_message(path: Path) -> str:
    return (
        "this folder is in DeepSeek's own janus format (config.json model_type 'multi_modality', the published "
        "Janus-Pro-CXR layout); convert it once, offline: "
        f"python manage.py convert_janus {path} {path.parent / (path.name + '-hf')} "
        "and set the model version's weights_path to the new folder (docs/janus.md)"
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
    if config.get("model_type") == "multi_modality":
        raise ModelLoadError(str(path), _deepseek_message(path))
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


_PROVENANCE_FILES = {
    "tokenizer": ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"),
    "processor": ("preprocessor_config.json", "processor_config.json", "chat_template.jinja", "chat_template.json"),
    "conversion": ("conversion_manifest.json",),
}


def _provenance(path: Path, template: PromptTemplate, dtype_name: str) -> dict[str, Any]:
    """What besides the weights decides a draft: tokenizer, processor and template hashes, library and code
    versions (recorded in every draft's parameters)."""
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import torch
    import transformers

    def digest(names: tuple[str, ...]) -> dict[str, str]:
        return {n: hashlib.sha256((path / n).read_bytes()).hexdigest() for n in names if (path / n).is_file()}

    return {
        **{f"{kind}_sha256": digest(names) for kind, names in _PROVENANCE_FILES.items()},
        "template_sha256": hashlib.sha256(
            json.dumps(template.__dict__, sort_keys=True).encode("utf-8")
        ).hexdigest(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "code_version": code_version(),
        "dtype": dtype_name,
    }


def converted_folder(path: Path, options: Mapping[str, Any]) -> Path:
    """``path`` itself, or -- for a DeepSeek-format folder with ``options['convert_cache']`` set -- its conversion
    in that cache (made once, keyed by the source weights' hashes)."""
    cache = options.get("convert_cache")
    if not cache or not path.is_dir() or not is_deepseek_janus(path):
        return path
    digest = hashlib.sha256(json.dumps(weights_sha256(path), sort_keys=True).encode()).hexdigest()[:16]
    target = Path(cache).expanduser() / f"{path.name}-{digest}"
    if (target / MANIFEST).is_file():
        return target
    try:
        convert_deepseek_janus(path, target, vision_heads=options.get("vision_heads"), overwrite=True)
    except ConversionError as exc:
        raise ModelLoadError(str(path), f"conversion failed: {exc}") from exc
    return target


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
        self.template: PromptTemplate = get_template(None)
        self.provenance: dict[str, Any] = {}
        self.weights_dir: Path | None = None

    # loading ---------------------------------------------------------------------------------------------------
    def _load(self, config: BackendConfig) -> None:
        if not config.weights_path:
            raise ModelLoadError(
                None, "the janus backend needs weights_path (a local save_pretrained folder)"
            )
        path = converted_folder(Path(config.weights_path).expanduser(), config.options)
        _check_folder(path)
        try:
            self.template = get_template(config.prompt, legacy_format=config.prompt_template)
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(str(path), f"prompt template: {exc}") from exc
        try:
            # Lazy: heavy optional dependency (the demo installs no torch/transformers).
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
                f"tokenizer's {processor.image_token!r} is id {image_token_id}, "
                f"model expects {model.config.image_token_id}",
            )
        silence_generate_noise()
        # The template writes the whole conversation, system prompt included; the processor must add nothing
        # (a folder converted by transformers' own script would prepend DeepSeek's system prompt a second time).
        processor.use_default_system_prompt = False
        self.processor, self.model = processor, model
        self.weights_dir = path
        self.device, self.dtype_name = device, dtype_name
        if config.options.get("hash_weights", True):
            self.weights_sha256 = weights_sha256(path)
        self.provenance = _provenance(path, self.template, self.dtype_name)
        if config.options.get("compile"):
            self.model.forward = torch.compile(self.model.forward, mode="reduce-overhead")
        self.classifier = None
        if config.classifier is not None:  # the expert model; without one a draft carries no probabilities

            self.classifier = get_backend("classifier")
            self.classifier.load(config.classifier)

    # prompting -------------------------------------------------------------------------------------------------
    def _expert(
        self, images: Sequence[Image.Image], findings: Sequence[str], context: Mapping[str, Any]
    ) -> tuple[dict[str, float], list[str] | None, dict[str, Any]]:
        """(probabilities, positive codes or None when no expert model ran, provenance)."""
        threshold = float(self.config.options.get("expert_threshold", 0.5))
        given = context.get("finding_probabilities")
        if given:
            probs = {c: float(given[c]) for c in findings if c in given}
            info: dict[str, Any] = {"source": "context"}
        elif self.classifier is not None:
            result = self.classifier.generate(images, findings, {})
            probs = dict(result.probabilities)
            info = {
                "source": result.backend,
                **{k: v for k, v in result.parameters.items() if k in ("classifier_mode", "retrieval_mode", "note")},
            }
            if not probs:  # e.g. a retrieval fallback without images: it gives none, and says so
                return {}, None, info
        else:
            return {}, None, {"source": None, "note": "no expert model configured: no probabilities"}
        # Per-finding thresholds override the common one (a torchxrayvision expert's op-normalised outputs put each
        # label's published operating point at 0.5, so 0.5 is already per label there).
        per_finding = {str(k): float(v) for k, v in dict(self.config.options.get("expert_thresholds") or {}).items()}
        info["threshold"] = threshold
        if per_finding:
            info["thresholds"] = per_finding
        return probs, [c for c in findings if probs.get(c, 0.0) >= per_finding.get(c, threshold)], info

    def _cam(self, req: GenerationRequest, positive: Sequence[str] | None) -> list[dict[str, Any]]:
        """Boxes from the expert's class-activation maps of the positive findings (issue 21 item 1; the expert's
        ``options['cam_boxes']``), on the request's first image as given (the stored image the viewer shows), not
        on the padded view the language model sees: the boxes are in that image's pixels."""
        if self.classifier is None or not positive or not hasattr(self.classifier, "cam_boxes"):
            return []
        return self.classifier.cam_boxes(req.images[0], list(positive))

    def prompt_text(
        self,
        n_images: int,
        findings: Sequence[str],
        probabilities: Mapping[str, float],
        positive: Sequence[str] | None,
        context: Mapping[str, Any],
    ) -> tuple[str, str]:
        """(user text, conversation text before tokenisation) for one case."""
        user_text = self.template.user_text(
            positive,
            findings=findings,
            probabilities=probabilities,
            style=str(context.get("report_style") or self.config.report_style),
            context=str(context.get("indication") or ""),
        )
        return user_text, self.template.render(n_images, user_text)

    def _views(self, images: Sequence[Image.Image]) -> list[Image.Image]:
        views = [to_rgb(im) for im in list(images)[: max(1, self.config.max_images)]]
        if self.config.options.get("image_resize", "deepseek") != "deepseek":
            return views

        ip = self.processor.image_processor
        return [
            deepseek_resize(v, int(ip.size["height"]), int(getattr(ip, "min_size", 14)), tuple(ip.background_color))
            for v in views
        ]

    # generation ------------------------------------------------------------------------------------------------
    def generation_params(self, context: Mapping[str, Any] | None) -> GenerationParams:
        """Per call: ``context['generation']`` (a mapping of :class:`GenerationParams` fields), else the config's.
        One loaded model serves model versions that differ only in how they generate."""
        given = (context or {}).get("generation")
        if isinstance(given, GenerationParams):
            return given
        return GenerationParams(**given) if given else self.config.generation

    def _generation_kwargs(self, gen: GenerationParams | None = None) -> dict[str, Any]:
        gen = gen or self.config.generation
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
        # Lazy: heavy optional dependency (the demo installs no torch/transformers).
        import torch

        prepared = []
        for req in requests:
            if not req.images:
                raise ValueError("every request needs at least one image")
            findings = tuple(req.findings or self.config.findings)
            context = dict(req.context or {})
            views = self._views(req.images)
            probs, positive, expert = self._expert(views, findings, context)
            user_text, conversation = self.prompt_text(len(views), findings, probs, positive, context)
            prepared.append((views, probs, positive, expert, user_text, conversation, self._cam(req, positive),
                             req.images[0].size))
        gen = self.generation_params(requests[0].context)  # a batch shares its generation settings
        seed = int((requests[0].context or {}).get("seed", gen.seed))

        start = time.perf_counter()
        inputs = self.processor(
            text=[p[5] for p in prepared],
            images=[im for p in prepared for im in p[0]],
            padding=True,
            return_tensors="pt",
        )
        # what the model receives, token for token (left padding removed)
        prompts = [
            self.processor.tokenizer.decode(ids[mask.bool()].tolist(), skip_special_tokens=False)
            for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True)
        ]
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        torch.manual_seed(seed)
        if self.device.startswith("cuda"):
            torch.cuda.manual_seed_all(seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self._generation_kwargs(gen))
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start

        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[:, prompt_len:].cpu()
        eos = self.processor.tokenizer.eos_token_id
        pad = self.processor.tokenizer.pad_token_id
        texts = self.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        results = []
        for row, text, prompt, (_views, probs, positive, expert, user_text, _conv, cam, size) in zip(
            new_tokens.tolist(), texts, prompts, prepared, strict=True
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
                        "weights_dir": str(self.weights_dir),
                        "weights_sha256": self.weights_sha256,
                        "device": self.device,
                        "dtype": self.dtype_name,
                        "generation": self._generation_kwargs(gen),
                        "new_tokens": n_new,
                        "batch_size": len(requests),
                        "prompt_template": self.template.name,
                        "provenance": {
                            **self.provenance,
                            "expert_weights_sha256": getattr(self.classifier, "weights_sha256", None) or None,
                        },
                        "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                        "image_resize": self.config.options.get("image_resize", "deepseek"),
                        "user_text": user_text,
                        "expert": {**expert, "positive": positive},
                        "probabilities_from": expert.get("source"),
                        **({"boxes_image_size": list(size)} if cam else {}),
                    },
                    boxes=cam,
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
