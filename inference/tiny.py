"""A tiny, randomly initialised Janus model, built offline, for tests and CPU benchmarks.

``build_tiny_janus(path)`` writes a folder that ``JanusForConditionalGeneration.from_pretrained(path)`` and
``JanusProcessor.from_pretrained(path)`` load exactly like a real Janus-Pro checkpoint, so the ``janus`` backend is
tested through its real code path:

- tokenizer: a ``tokenizers`` WordLevel model (lower-cased, whitespace/punctuation pre-tokenizer) trained on the
  words of the bundled IU X-ray reports and of the prompt template (a built-in word list if the reports are not
  there), wrapped as ``PreTrainedTokenizerFast`` with the special tokens Janus-Pro uses
  (``<｜begin▁of▁sentence｜>``, ``<｜end▁of▁sentence｜>``, ``<｜▁pad▁｜>``, ``<image_placeholder>``,
  ``<begin_of_image>``, ``<end_of_image>``, ``<|User|>``, ``<|Assistant|>``) and the named ``image_token``,
  ``boi_token`` and ``eoi_token`` that ``JanusProcessor`` reads;
- image processor: ``JanusImageProcessorPil`` (no torchvision) at 32 x 32;
- model: ``JanusConfig`` with a 2-layer, 64-wide Llama text model, a 1-layer, 32-wide vision encoder with 8 px
  patches (so 16 image tokens), and a minimal VQ-VAE (32 channels: its GroupNorms need multiples of 32);
- a chat template in Janus-Pro's format (``<|User|>: ...\\n\\n<|Assistant|>:``).

About 0.3 M parameters; ~16 generated tokens on a CPU take well under a second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from .backends.base import DEFAULT_PROMPT_TEMPLATE, DEFAULT_REPORT_STYLE, FINDING_NAMES
from .backends.prompts import (
    CHEXPERT_NAMES,
    DEEPSEEK_SYSTEM_PROMPT,
    PUBLISHED_EXPERT_INSTRUCTION,
    PUBLISHED_INSTRUCTION,
)
from .reportbank import IU_TGZ, parse_iu_tgz

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
UNK = "<unk>"
IMAGE_TOKEN = "<image_placeholder>"
BOI = "<begin_of_image>"
EOI = "<end_of_image>"
USER = "<|User|>"
ASSISTANT = "<|Assistant|>"
SPECIAL_TOKENS = [BOS, EOS, PAD, UNK, IMAGE_TOKEN, BOI, EOI, USER, ASSISTANT]

# Janus-Pro's conversation format: "<|User|>: <image_placeholder>\n{text}\n\n<|Assistant|>:"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] | lower == 'user' %}<|User|>: {% elif message['role'] | lower == 'assistant' %}"
    "<|Assistant|>: {% else %}{{ message['role'] | capitalize }}: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image_placeholder>{{ '\\n' }}{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] | lower == 'user' %}{{ '\\n\\n' }}{% else %}<｜end▁of▁sentence｜>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|>:{% endif %}"
)

_FALLBACK_WORDS = (
    "findings impression the heart size is normal within limits lungs are clear no focal consolidation "
    "pleural effusion pneumothorax atelectasis cardiomegaly lung opacity mild moderate large small right left "
    "bilateral base lobe upper lower middle there stable mediastinum silhouette acute cardiopulmonary disease "
    "abnormality of and with or in a seen evidence probable likely present absent . , : -"
)

TINY_IMAGE_SIZE = 32
TINY_PATCH = 8


def _corpus(extra: Iterable[str] = (), max_reports: int = 600) -> list[str]:
    texts = [DEFAULT_PROMPT_TEMPLATE, DEFAULT_REPORT_STYLE, " ".join(FINDING_NAMES.values()), _FALLBACK_WORDS]
    texts += [DEEPSEEK_SYSTEM_PROMPT, PUBLISHED_INSTRUCTION, PUBLISHED_EXPERT_INSTRUCTION, "User: Assistant:"]
    texts += [f"Expert analysis: {name} present." for name in CHEXPERT_NAMES.values()]
    texts.extend(extra)
    try:
        if IU_TGZ.exists():
            for report in parse_iu_tgz(IU_TGZ)[:max_reports]:
                texts.append(f"Findings: {report['findings']} Impression: {report['impression']}")
    except Exception:  # noqa: BLE001 - the fallback words are enough for a random model
        pass
    return [re.sub(r"\{[a-z_]+\}", " ", t) for t in texts] * 2  # twice: BPE merges need a frequency of 2


def build_tiny_tokenizer(vocab_size: int = 1024, corpus: Iterable[str] | None = None):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with Janus' special tokens, trained offline on radiology words.

    Byte-level like DeepSeek's own tokenizer, so ``decode(encode(text)) == text`` for any text: the stored prompt
    can be checked byte for byte. BOS is added to every encoded text, as DeepSeek's tokenizer does.
    """
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
    )
    tok.train_from_iterator(list(corpus) if corpus is not None else _corpus(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        model_max_length=1024,
        extra_special_tokens={"image_token": IMAGE_TOKEN, "boi_token": BOI, "eoi_token": EOI},
    )


def tiny_janus_config(tokenizer, image_size: int = TINY_IMAGE_SIZE, patch_size: int = TINY_PATCH):
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    from transformers import JanusConfig, JanusVisionConfig, JanusVQVAEConfig, LlamaConfig

    hidden = 64
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    vision = JanusVisionConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        mlp_ratio=2.0,
        projection_dim=hidden,
        depth=2,
        num_image_tokens=(image_size // patch_size) ** 2,
    )
    vq = JanusVQVAEConfig(
        embed_dim=8,
        num_embeddings=64,
        latent_channels=32,
        base_channels=32,
        channel_multiplier=[1, 1],
        num_res_blocks=1,
        projection_dim=hidden,
        image_token_embed_dim=hidden,
    )
    return JanusConfig(
        text_config=text,
        vision_config=vision,
        vq_config=vq,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        tie_word_embeddings=False,  # Janus-Pro has its own lm_head
    )


def build_tiny_janus(path: str | Path, seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Write a tiny random Janus model + processor to ``path`` (created if needed) and return it."""
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    from transformers import JanusProcessor
    from transformers.models.janus import JanusImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer, config, model = tiny_native_model(seed, corpus)
    image_processor = JanusImageProcessorPil(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    processor = JanusProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        use_default_system_prompt=False,
        num_image_tokens=config.vision_config.num_image_tokens,
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.boi_token_id = tokenizer.convert_tokens_to_ids(BOI)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# --- the same tiny model in DeepSeek's own ``janus`` format (what the published Janus-Pro-CXR weights use) -------
TINY_VISION_HEADS = 2  # not readable from tensor shapes; the converter is told (docs/janus.md)


def _deepseek_vision_key(rest: str) -> str:
    # model.vision_model.<rest> -> DeepSeek's timm-style ViT names
    fixed = {
        "embeddings.position_embedding.weight": "pos_embed",
        "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
        "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
        "post_layernorm.weight": "norm.weight",
        "post_layernorm.bias": "norm.bias",
    }
    if rest in fixed:
        return "vision_model.vision_tower." + fixed[rest]
    rest = rest.replace("encoder.layers.", "blocks.")
    rest = rest.replace(".layer_norm1.", ".norm1.").replace(".layer_norm2.", ".norm2.")
    rest = rest.replace(".self_attn.projection_layer.", ".attn.proj.")
    return "vision_model.vision_tower." + rest


def _deepseek_aligner_key(rest: str) -> str:
    # fc1 -> layers.0, hidden_layers.j -> layers.2(j+1) (Sequential of Linear, GELU, Linear, ...)
    if rest.startswith("fc1."):
        return "layers.0." + rest.removeprefix("fc1.")
    index, _, kind = rest.removeprefix("hidden_layers.").partition(".")
    return f"layers.{2 * (int(index) + 1)}.{kind}"


def to_deepseek_state_dict(state: dict, seed: int = 0) -> dict:
    """A transformers Janus state dict renamed to DeepSeek's parameter names, with the tensors DeepSeek has and
    transformers drops (the vision tower's attention-pooling head, the VQ codebook usage) added at random."""
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    out: dict = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        if key == "lm_head.weight":
            out["language_model.lm_head.weight"] = tensor
        elif key.startswith("model.language_model."):
            out["language_model.model." + key.removeprefix("model.language_model.")] = tensor
        elif key.startswith("model.vision_model."):
            name = _deepseek_vision_key(key.removeprefix("model.vision_model."))
            match = re.search(r"\.self_attn\.([qkv])_proj\.(weight|bias)$", name)
            if match:
                fused = name[: match.start()] + f".attn.qkv.{match.group(2)}"
                qkv.setdefault(fused, {})[match.group(1)] = tensor
            elif name.endswith("pos_embed"):
                out[name] = tensor.unsqueeze(0)
            else:
                out[name] = tensor
        elif key.startswith("model.aligner."):
            out["aligner." + _deepseek_aligner_key(key.removeprefix("model.aligner."))] = tensor
        elif key.startswith("model.generation_aligner."):
            out["gen_aligner." + _deepseek_aligner_key(key.removeprefix("model.generation_aligner."))] = tensor
        elif key.startswith("model.generation_head."):
            rest = key.removeprefix("model.generation_head.").replace("proj_out.", "output_mlp_projector.")
            out["gen_head." + rest] = tensor
        elif key == "model.generation_embeddings.weight":
            out["gen_embed.weight"] = tensor
        elif key.startswith("model.vqmodel."):
            rest = key.removeprefix("model.vqmodel.")
            rest = rest.replace("encoder.down.", "encoder.conv_blocks.").replace("decoder.up.", "decoder.conv_blocks.")
            rest = re.sub(r"\.block\.(\d+)\.", r".res.\1.", rest)
            rest = rest.replace(".mid.block_1.", ".mid.0.").replace(".mid.attn_1.", ".mid.1.")
            rest = rest.replace(".mid.block_2.", ".mid.2.")
            out["gen_vision_model." + rest] = tensor
        else:
            raise KeyError(key)
    for name, parts in qkv.items():
        out[name] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    width = state["model.vision_model.embeddings.patch_embedding.weight"].shape[0]
    pool = "vision_model.vision_tower.attn_pool."
    for name, shape in {
        "latent": (1, 1, width), "q.weight": (width, width), "q.bias": (width,), "kv.weight": (2 * width, width),
        "kv.bias": (2 * width,), "proj.weight": (width, width), "proj.bias": (width,), "norm.weight": (width,),
        "norm.bias": (width,), "mlp.fc1.weight": (2 * width, width), "mlp.fc1.bias": (2 * width,),
        "mlp.fc2.weight": (width, 2 * width), "mlp.fc2.bias": (width,),
    }.items():
        out[pool + name] = torch.randn(shape, generator=gen)
    out["gen_vision_model.quantize.codebook_used"] = torch.zeros(65536)
    return out


def tiny_native_model(seed: int = 0, corpus: Iterable[str] | None = None):
    """(tokenizer, config, randomly initialised JanusForConditionalGeneration) of the tiny model."""
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import torch
    from transformers import JanusForConditionalGeneration

    tokenizer = build_tiny_tokenizer(corpus=corpus)
    config = tiny_janus_config(tokenizer)
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(config).eval()
    with torch.no_grad():  # a trained lm_head differs from the input embedding: make sure tying would show
        model.lm_head.weight.normal_(0.0, 0.05)
    return tokenizer, config, model


def build_tiny_deepseek_janus(path: str | Path, seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Write the tiny model in DeepSeek's ``janus`` format: ``config.json`` (``model_type: multi_modality`` with
    the six sub-configs, as in Janus-Pro-1B's), ``pytorch_model.bin`` with DeepSeek's parameter names,
    ``tokenizer.json`` + ``tokenizer_config.json`` + ``special_tokens_map.json``, ``preprocessor_config.json``
    (``VLMImageProcessor``) and ``processor_config.json`` (``VLChatProcessor``).

    Its vision tower is smaller than any in DeepSeek's table (``model_name`` ``siglip_tiny_test``), so the
    converter needs ``vision_heads=TINY_VISION_HEADS``. DeepSeek's own code could not load it (it builds VQ-16 at
    full size whatever the config says); it exists to test the conversion.
    """
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer, config, model = tiny_native_model(seed, corpus)
    state = to_deepseek_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()}, seed)
    torch.save(state, path / "pytorch_model.bin")
    text, vision, vq = config.text_config, config.vision_config, config.vq_config
    hidden = text.hidden_size
    deepseek_config = {
        "architectures": ["MultiModalityCausalLM"],
        "model_type": "multi_modality",
        "torch_dtype": "float32",
        "transformers_version": "4.33.1",
        "language_config": {
            "hidden_size": hidden,
            "intermediate_size": text.intermediate_size,
            "max_position_embeddings": text.max_position_embeddings,
            "model_type": "llama",
            "num_attention_heads": text.num_attention_heads,
            "num_hidden_layers": text.num_hidden_layers,
            "num_key_value_heads": text.num_key_value_heads,
            "torch_dtype": "float32",
            "vocab_size": text.vocab_size,
        },
        "vision_config": {
            "cls": "CLIPVisionTower",
            "model_type": "vision",
            "params": {
                "image_size": vision.image_size,
                "model_name": "siglip_tiny_test",
                "select_feature": "same",
                "select_layer": -1,
            },
        },
        "aligner_config": {
            "cls": "MlpProjector",
            "model_type": "aligner",
            "params": {
                "depth": vision.depth, "input_dim": vision.hidden_size, "n_embed": hidden, "projector_type": "mlp_gelu"
            },
        },
        "gen_vision_config": {
            "cls": "VQ-16",
            "model_type": "gen_vision",
            "params": {"image_token_size": vq.num_embeddings, "n_embed": vq.embed_dim},
        },
        "gen_aligner_config": {
            "cls": "MlpProjector",
            "model_type": "gen_aligner",
            "params": {"depth": 2, "input_dim": vq.embed_dim, "n_embed": hidden, "projector_type": "mlp_gelu"},
        },
        "gen_head_config": {
            "cls": "vision_head",
            "model_type": "gen_head",
            "params": {"image_token_embed": hidden, "image_token_size": vq.num_embeddings, "n_embed": hidden},
        },
    }
    (path / "config.json").write_text(json.dumps(deepseek_config, indent=2), encoding="utf-8")
    tokenizer.backend_tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "add_bos_token": True,
                "add_eos_token": False,
                "bos_token": BOS,
                "eos_token": EOS,
                "pad_token": None,
                "unk_token": None,
                "model_max_length": 16384,
                "tokenizer_class": "LlamaTokenizerFast",
                "legacy": True,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    (path / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": BOS,
                "eos_token": EOS,
                "pad_token": PAD,
                "unk_token": UNK,
                "additional_special_tokens": [USER, ASSISTANT, IMAGE_TOKEN, BOI, EOI],
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    (path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "background_color": [127, 127, 127],
                "do_normalize": True,
                "image_mean": [0.5, 0.5, 0.5],
                "image_processor_type": "VLMImageProcessor",
                "image_size": vision.image_size,
                "image_std": [0.5, 0.5, 0.5],
                "min_size": 14,
                "processor_class": "VLChatProcessor",
                "rescale_factor": 0.00392156862745098,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    (path / "processor_config.json").write_text(
        json.dumps(
            {
                "add_special_token": False,
                "ignore_id": -100,
                "image_tag": IMAGE_TOKEN,
                "mask_prompt": True,
                "num_image_tokens": vision.num_image_tokens,
                "processor_class": "VLChatProcessor",
                "sft_format": "deepseek",
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return path
