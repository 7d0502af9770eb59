"""DeepSeek's own ``janus`` checkpoint format -> transformers' native Janus layout (docs/janus.md).

The published Janus-Pro-CXR weights (like DeepSeek's Janus-Pro-1B/7B) are saved by DeepSeek's ``janus`` package:
``config.json`` with ``model_type: multi_modality`` and the sub-configs ``language_config``, ``vision_config``,
``aligner_config``, ``gen_vision_config``, ``gen_aligner_config``, ``gen_head_config``; weights as
``pytorch_model.bin`` (or ``.bin`` shards with an index, or safetensors) with DeepSeek's parameter names;
``tokenizer.json``; ``preprocessor_config.json`` (``VLMImageProcessor``) and ``processor_config.json``.

:func:`convert_deepseek_janus` writes a folder that ``JanusForConditionalGeneration.from_pretrained`` and
``JanusProcessor.from_pretrained`` load offline. It follows the key mapping of transformers' own converter
(``src/transformers/models/janus/convert_janus_weights_to_hf.py``, not shipped in the wheel, needs accelerate and
the hub), written here as explicit rules, without accelerate or any download, and it differs where that converter
is wrong for Janus-Pro:

- **lm_head is kept.** Janus-Pro has its own output layer. transformers 5.x ``JanusConfig`` defaults to
  ``tie_word_embeddings=True`` and its converter calls ``tie_weights()``, which replaces ``lm_head`` by the input
  embedding: wrong logits. Here ``tie_word_embeddings`` is False unless the source has no ``lm_head``.
- **Vision sizes come from the tensors.** DeepSeek's vision tower takes its sizes from a table keyed by
  ``vision_config.params.model_name`` (``siglip_large_patch16_384``: width 1024, 24 layers, 16 heads, patch 16,
  MLP ratio 4). Width, depth, patch, MLP ratio, number of positions and the aligner come from tensor shapes
  here; only the number of attention heads cannot be read from shapes: it comes from the table, or from
  ``vision_heads`` (required for a model name outside the table, e.g. a tiny test model).
- **Every tensor is accounted for.** Unknown source keys, keys the model expects but does not get, and shape
  mismatches raise :class:`ConversionError`; the only tensors dropped on purpose are the vision tower's
  attention-pooling head (DeepSeek builds it but never runs it: ``ignore_head=True``) and the VQ codebook usage
  counter (a training statistic).
- **Image resizing.** DeepSeek's ``VLMImageProcessor`` sizes a non-square image with ``int()``, transformers'
  with ``round()``; the ``janus`` backend therefore resizes and pads the DeepSeek way itself
  (:func:`deepseek_resize`) and hands the processor an image that is already square at the target size.

A manifest (``conversion_manifest.json``) records the source and output files' SHA-256, the dropped keys, the
sizes read and the library versions. Pure functions: no Django import.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .base import weights_sha256

CONVERTER_VERSION = "cxr-trial-janus-convert/1"
MANIFEST = "conversion_manifest.json"

#: DeepSeek's SigLIP table (``janus/models/siglip_vit.py``, ``SigLIP_MODEL_CONFIG``): heads per model name.
SIGLIP_HEADS: dict[str, int] = {
    "siglip_so400m_patch14_384": 16,
    "siglip_so400m_patch14_224": 16,
    "siglip_large_patch16_384": 16,
}

#: Dropped on purpose (see module docstring).
_DROPPED = (
    re.compile(r"^vision_model\.vision_tower\.attn_pool\."),
    re.compile(r"^gen_vision_model\.quantize\.codebook_used$"),
)

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
IMAGE_TOKEN, BOI_TOKEN, EOI_TOKEN = "<image_placeholder>", "<begin_of_image>", "<end_of_image>"


class ConversionError(ValueError):
    """The source folder cannot be converted; the message says what is wrong."""


@dataclass
class ConversionReport:
    """What :func:`convert_deepseek_janus` did."""

    source: str
    output: str
    n_tensors: int
    dropped: list[str]
    tie_word_embeddings: bool
    vision: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)


# --- detection ------------------------------------------------------------------------------------------------
def read_config(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_deepseek_janus(path: str | Path) -> bool:
    """True for a folder in DeepSeek's format (``model_type: multi_modality`` with a ``language_config``)."""
    config = read_config(path)
    return config.get("model_type") == "multi_modality" and "language_config" in config


# --- key mapping ----------------------------------------------------------------------------------------------
def _aligner_index(index: int) -> str:
    # DeepSeek's MlpProjector is Sequential(Linear, GELU, Linear, ...): Linear j sits at index 2j.
    if index % 2:
        raise KeyError(index)
    return "fc1" if index == 0 else f"hidden_layers.{index // 2 - 1}"


_VIT_BLOCK = {
    "norm1": "layer_norm1",
    "norm2": "layer_norm2",
    "attn.proj": "self_attn.projection_layer",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}


def _map_vision(rest: str) -> list[str]:
    fixed = {
        "pos_embed": "model.vision_model.embeddings.position_embedding.weight",
        "patch_embed.proj.weight": "model.vision_model.embeddings.patch_embedding.weight",
        "patch_embed.proj.bias": "model.vision_model.embeddings.patch_embedding.bias",
        "norm.weight": "model.vision_model.post_layernorm.weight",
        "norm.bias": "model.vision_model.post_layernorm.bias",
    }
    if rest in fixed:
        return [fixed[rest]]
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", rest)
    if not match:
        raise KeyError(rest)
    layer, module, kind = match.groups()
    prefix = f"model.vision_model.encoder.layers.{layer}."
    if module == "attn.qkv":  # fused q, k, v (in this order along dim 0)
        return [f"{prefix}self_attn.{p}_proj.{kind}" for p in ("q", "k", "v")]
    return [f"{prefix}{_VIT_BLOCK[module]}.{kind}"]


def _map_vq(rest: str) -> str:
    rest = re.sub(r"^encoder\.conv_blocks\.", "encoder.down.", rest)
    rest = re.sub(r"^decoder\.conv_blocks\.", "decoder.up.", rest)
    rest = re.sub(r"\.res\.(\d+)\.", r".block.\1.", rest)
    rest = re.sub(r"\.mid\.0\.", ".mid.block_1.", rest)
    rest = re.sub(r"\.mid\.1\.", ".mid.attn_1.", rest)
    rest = re.sub(r"\.mid\.2\.", ".mid.block_2.", rest)
    return f"model.vqmodel.{rest}"


def map_deepseek_key(key: str) -> list[str] | None:
    """transformers name(s) of a DeepSeek parameter; None for a dropped one; ``KeyError`` for an unknown one.

    A fused ``attn.qkv`` maps to three names (q, k, v).
    """
    if any(p.search(key) for p in _DROPPED):
        return None
    head, _, rest = key.partition(".")
    if key.startswith("vision_model.vision_tower."):
        return _map_vision(key.removeprefix("vision_model.vision_tower."))
    if key.startswith("language_model.model."):
        return ["model.language_model." + key.removeprefix("language_model.model.")]
    if key == "language_model.lm_head.weight":
        return ["lm_head.weight"]
    if head in ("aligner", "gen_aligner"):
        match = re.fullmatch(r"layers\.(\d+)\.(weight|bias)", rest)
        if not match:
            raise KeyError(key)
        target = "model.aligner" if head == "aligner" else "model.generation_aligner"
        return [f"{target}.{_aligner_index(int(match.group(1)))}.{match.group(2)}"]
    if head == "gen_head":
        module, _, kind = rest.partition(".")
        names = {"output_mlp_projector": "proj_out", "vision_head": "vision_head"}
        return [f"model.generation_head.{names[module]}.{kind}"]
    if key == "gen_embed.weight":
        return ["model.generation_embeddings.weight"]
    if head == "gen_vision_model":
        return [_map_vq(rest)]
    raise KeyError(key)


def convert_state_dict(state_dict: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """DeepSeek state dict -> (transformers state dict, dropped keys). Raises :class:`ConversionError` listing
    every key it does not know."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    unknown: list[str] = []
    for key, tensor in state_dict.items():
        try:
            names = map_deepseek_key(key)
        except KeyError:
            unknown.append(key)
            continue
        if names is None:
            dropped.append(key)
        elif len(names) == 3:
            if tensor.shape[0] % 3:
                raise ConversionError(f"{key}: fused qkv of shape {tuple(tensor.shape)} does not split in 3")
            for name, part in zip(names, tensor.chunk(3, dim=0), strict=True):
                out[name] = part.contiguous().clone()
        elif key.endswith("pos_embed"):
            out[names[0]] = tensor.reshape(tensor.shape[-2], tensor.shape[-1]).contiguous()  # [1, N, D] -> [N, D]
        else:
            out[names[0]] = tensor.contiguous()
    if unknown:
        raise ConversionError(f"{len(unknown)} unknown DeepSeek tensor(s): {', '.join(sorted(unknown)[:20])}")
    return out, sorted(dropped)


# --- loading the source ---------------------------------------------------------------------------------------
def _torch_load(path: Path) -> dict[str, Any]:
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) pickles cannot be memory-mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def load_deepseek_state_dict(src: str | Path) -> tuple[dict[str, Any], list[Path]]:
    """All tensors of a DeepSeek folder (safetensors or ``.bin``, single or sharded) and the files read."""
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    from safetensors.torch import load_file

    src = Path(src)
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = src / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            files = [src / s for s in shards]
            break
    else:
        files = sorted(src.glob("*.safetensors")) or sorted(src.glob("pytorch_model*.bin"))
    if not files:
        raise ConversionError(f"{src}: no weight files (pytorch_model*.bin or *.safetensors)")
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ConversionError(f"{src}: missing weight shards: {', '.join(missing)}")
    state: dict[str, Any] = {}
    for file in files:
        try:
            part = load_file(file) if file.suffix == ".safetensors" else _torch_load(file)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file is a conversion error
            raise ConversionError(f"{file}: cannot be read ({type(exc).__name__}: {exc})") from exc
        state.update(part)
    return state, files


# --- configuration --------------------------------------------------------------------------------------------
def _count(state: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.match(k))})


def vision_sizes(
    config: Mapping[str, Any], state: Mapping[str, Any], vision_heads: int | None = None
) -> dict[str, Any]:
    """JanusVisionConfig keyword arguments from the DeepSeek config and tensor shapes (see module docstring)."""
    params = dict(config.get("vision_config", {}).get("params", {}))
    prefix = "vision_model.vision_tower."
    try:
        patch = state[prefix + "patch_embed.proj.weight"]
        pos = state[prefix + "pos_embed"]
        fc1 = state[prefix + "blocks.0.mlp.fc1.weight"]
        aligner0 = state["aligner.layers.0.weight"]
    except KeyError as exc:
        raise ConversionError(f"vision tower or aligner tensor missing: {exc}") from exc
    hidden, channels, patch_size = int(patch.shape[0]), int(patch.shape[1]), int(patch.shape[-1])
    n_positions = int(pos.shape[-2])
    image_size = int(params.get("image_size") or round(n_positions**0.5) * patch_size)
    if (image_size // patch_size) ** 2 != n_positions:
        raise ConversionError(
            f"vision_config image_size {image_size} with patch {patch_size} gives "
            f"{(image_size // patch_size) ** 2} positions, the weights have {n_positions}"
        )
    model_name = str(params.get("model_name", ""))
    heads = vision_heads or SIGLIP_HEADS.get(model_name)
    if not heads:
        raise ConversionError(
            f"the vision tower {model_name!r} is not in DeepSeek's table; give its number of attention heads "
            "(--vision-heads)"
        )
    if hidden % heads:
        raise ConversionError(f"vision width {hidden} is not divisible by {heads} attention heads")
    return {
        "hidden_size": hidden,
        "num_hidden_layers": _count(state, r"^vision_model\.vision_tower\.blocks\.(\d+)\."),
        "num_attention_heads": int(heads),
        "num_channels": channels,
        "image_size": image_size,
        "patch_size": patch_size,
        "mlp_ratio": int(fc1.shape[0]) / hidden,
        "attention_bias": prefix + "blocks.0.attn.qkv.bias" in state,
        "layer_norm_eps": 1e-6,  # DeepSeek's ViT: partial(nn.LayerNorm, eps=1e-6)
        "hidden_act": "gelu",  # nn.GELU (exact) in the ViT MLP and in MlpProjector
        "projection_dim": int(aligner0.shape[0]),
        "depth": _count(state, r"^aligner\.layers\.(\d+)\.weight"),
        "num_image_tokens": n_positions,
    }


def vq_sizes(state: Mapping[str, Any]) -> dict[str, Any]:
    """JanusVQVAEConfig keyword arguments from tensor shapes (DeepSeek builds its VQ model without a config)."""
    p = "gen_vision_model."
    try:
        conv_in = state[p + "encoder.conv_in.weight"]
        codebook = state[p + "quantize.embedding.weight"]
        levels = _count(state, r"^gen_vision_model\.encoder\.conv_blocks\.(\d+)\.")
        multipliers = [
            int(state[f"{p}encoder.conv_blocks.{i}.res.0.conv1.weight"].shape[0]) // int(conv_in.shape[0])
            for i in range(levels)
        ]
        return {
            "embed_dim": int(codebook.shape[1]),
            "num_embeddings": int(codebook.shape[0]),
            "latent_channels": int(state[p + "encoder.conv_out.weight"].shape[0]),
            "in_channels": int(conv_in.shape[1]),
            "out_channels": int(state[p + "decoder.conv_out.weight"].shape[0]),
            "base_channels": int(conv_in.shape[0]),
            "channel_multiplier": multipliers,
            "num_res_blocks": _count(state, r"^gen_vision_model\.encoder\.conv_blocks\.0\.res\.(\d+)\."),
            "projection_dim": int(state["gen_aligner.layers.0.weight"].shape[0]),
            "num_hidden_layers": _count(state, r"^gen_aligner\.layers\.(\d+)\.weight"),
            "image_token_embed_dim": int(state["gen_head.output_mlp_projector.weight"].shape[0]),
        }
    except KeyError as exc:
        raise ConversionError(f"image-generation tensor missing: {exc}") from exc


_TEXT_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "attention_bias",
    "head_dim",
)


def _tokenizer(src: Path) -> Any:
    """The source tokenizer from its ``tokenizer.json`` (never through the Llama class: transformers 5 rebuilds a
    Llama tokenizer's pre-tokenizer, DeepSeek's is byte-level BPE), BOS added as DeepSeek's tokenizer does."""
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    if not (src / "tokenizer.json").is_file():
        raise ConversionError(f"{src}: tokenizer.json is missing")
    config = read_json(src / "tokenizer_config.json")
    special = read_json(src / "special_tokens_map.json")

    def token(name: str) -> str | None:
        value = special.get(name, config.get(name))
        return value.get("content") if isinstance(value, dict) else value

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(src / "tokenizer.json"),
        bos_token=token("bos_token"),
        eos_token=token("eos_token"),
        pad_token=token("pad_token"),
        unk_token=token("unk_token"),
        padding_side="left",
        model_max_length=int(config.get("model_max_length", 16384)),
        extra_special_tokens={"image_token": IMAGE_TOKEN, "boi_token": BOI_TOKEN, "eoi_token": EOI_TOKEN},
    )
    for tag in (IMAGE_TOKEN, BOI_TOKEN, EOI_TOKEN):
        if tokenizer.convert_tokens_to_ids(tag) in (None, tokenizer.unk_token_id):
            raise ConversionError(f"{src}: the tokenizer has no {tag} token")
    if config.get("add_bos_token", True) and tokenizer.bos_token:
        bos = tokenizer.bos_token
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0",
            pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
            special_tokens=[(bos, tokenizer.bos_token_id)],
        )
    return tokenizer


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _image_processor(src: Path, image_size: int) -> Any:
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    from transformers.models.janus import JanusImageProcessorPil

    pre = read_json(src / "preprocessor_config.json")
    size = int(pre.get("image_size", image_size))
    if size != image_size:
        raise ConversionError(f"preprocessor image_size {size} differs from the vision tower's {image_size}")
    kwargs: dict[str, Any] = {"size": {"height": size, "width": size}}
    for key in ("image_mean", "image_std", "min_size", "rescale_factor", "do_normalize"):
        if key in pre:
            kwargs[key] = pre[key]
    return JanusImageProcessorPil(**kwargs)


def _text_config_kwargs(config: Mapping[str, Any], tokenizer: Any) -> dict[str, Any]:
    language = dict(config.get("language_config", {}))
    kwargs = {k: language[k] for k in _TEXT_KEYS if k in language}
    kwargs.update(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    return kwargs


# --- conversion -----------------------------------------------------------------------------------------------
def convert_deepseek_janus(
    src: str | Path, dst: str | Path, *, vision_heads: int | None = None, overwrite: bool = False
) -> ConversionReport:
    """Convert the DeepSeek-format folder ``src`` into a transformers-native Janus folder ``dst``.

    ``vision_heads``: attention heads of the vision tower when its ``model_name`` is not in DeepSeek's table.
    Writes ``model.safetensors`` (source dtype), ``config.json``, ``generation_config.json``, the processor and
    tokenizer files and ``conversion_manifest.json``. Raises :class:`ConversionError` on any inconsistency.
    """
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import tokenizers
    import torch
    import transformers
    from transformers import (
        GenerationConfig,
        JanusConfig,
        JanusForConditionalGeneration,
        JanusProcessor,
        JanusVisionConfig,
        JanusVQVAEConfig,
        LlamaConfig,
    )

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not is_deepseek_janus(src):
        raise ConversionError(f"{src}: not a DeepSeek-format Janus folder (config.json model_type multi_modality)")
    if dst.exists() and any(dst.iterdir()):
        if not overwrite:
            raise ConversionError(f"{dst} exists and is not empty (use overwrite)")
        shutil.rmtree(dst)
    config = read_config(src)
    state, files = load_deepseek_state_dict(src)
    tokenizer = _tokenizer(src)
    vision = vision_sizes(config, state, vision_heads)
    tie = "language_model.lm_head.weight" not in state  # Janus-Pro has its own lm_head: never tie it away
    text_config = LlamaConfig(**_text_config_kwargs(config, tokenizer), tie_word_embeddings=tie)
    janus_config = JanusConfig(
        text_config=text_config,
        vision_config=JanusVisionConfig(**vision),
        vq_config=JanusVQVAEConfig(**vq_sizes(state)),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        tie_word_embeddings=tie,
    )
    converted, dropped = convert_state_dict(state)
    dtypes = {str(t.dtype).removeprefix("torch.") for t in converted.values()}
    janus_config.dtype = "bfloat16" if "bfloat16" in dtypes else sorted(dtypes)[0]
    _check_against_model(converted, janus_config, JanusForConditionalGeneration, torch)

    dst.mkdir(parents=True, exist_ok=True)
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    from safetensors.torch import save_file

    save_file(converted, str(dst / "model.safetensors"), metadata={"format": "pt"})
    janus_config.save_pretrained(dst)
    generation = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        boi_token_id=tokenizer.convert_tokens_to_ids(BOI_TOKEN),
    )
    generation.save_pretrained(dst)
    processor = JanusProcessor(
        image_processor=_image_processor(src, vision["image_size"]),
        tokenizer=tokenizer,
        # the janus backend writes the whole prompt, system prompt included (inference/backends/prompts.py)
        use_default_system_prompt=False,
        num_image_tokens=int(
            read_json(src / "processor_config.json").get("num_image_tokens", vision["num_image_tokens"])
        ),
    )
    if processor.num_image_tokens != vision["num_image_tokens"]:
        raise ConversionError(
            f"processor num_image_tokens {processor.num_image_tokens} != vision positions {vision['num_image_tokens']}"
        )
    processor.save_pretrained(dst)
    manifest = {
        "converter": CONVERTER_VERSION,
        "source": str(src),
        "source_sha256": {f.name: weights_sha256(f)[f.name] for f in files},
        "source_files_sha256": _other_files_sha256(src),
        "output_sha256": weights_sha256(dst),
        "dropped": dropped,
        "n_tensors": len(converted),
        "tie_word_embeddings": tie,
        "vision": vision,
        "versions": {
            "torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__
        },
    }
    (dst / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return ConversionReport(
        source=str(src), output=str(dst), n_tensors=len(converted), dropped=dropped, tie_word_embeddings=tie,
        vision=vision, manifest=manifest,
    )


def _other_files_sha256(src: Path) -> dict[str, str]:
    names = (*_TOKENIZER_FILES, "config.json", "preprocessor_config.json", "processor_config.json")
    return {n: hashlib.sha256((src / n).read_bytes()).hexdigest() for n in names if (src / n).is_file()}


def _check_against_model(converted: Mapping[str, Any], config: Any, model_class: Any, torch: Any) -> None:
    """Every tensor the model expects is there with its shape, and nothing else (built on the meta device: no
    memory, no accelerate)."""
    with torch.device("meta"):
        model = model_class(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    wrong = sorted(k for k in set(expected) & set(converted) if tuple(converted[k].shape) != expected[k])
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing[:10])}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:10])}")
    if wrong:
        problems.append(
            "shape mismatch: "
            + ", ".join(f"{k} {tuple(converted[k].shape)} != {expected[k]}" for k in wrong[:10])
        )
    if problems:
        raise ConversionError("converted weights do not fit JanusForConditionalGeneration: " + "; ".join(problems))


# --- DeepSeek's image resizing --------------------------------------------------------------------------------
def deepseek_resize(
    image: Image.Image, image_size: int, min_size: int = 14, background: tuple[int, ...] = (127, 127, 127)
) -> Image.Image:
    """DeepSeek's ``VLMImageProcessor.resize``: longest side to ``image_size`` with ``int()`` (transformers rounds),
    bicubic, then centred on a square of ``background`` (``expand2square``). RGB in, RGB out."""
    width, height = image.size
    longest = max(width, height)
    new_h = max(int(height / longest * image_size), min_size)
    new_w = max(int(width / longest * image_size), min_size)
    # torchvision's resize of a PIL image (what DeepSeek calls) is PIL's bicubic resize
    resized = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    if new_w == new_h:
        return resized
    side = max(new_w, new_h)
    square = Image.new(resized.mode, (side, side), tuple(background))
    square.paste(resized, ((side - new_w) // 2, (side - new_h) // 2))
    return square


def report_dict(report: ConversionReport) -> dict[str, Any]:
    return dataclasses.asdict(report)
