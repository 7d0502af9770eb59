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

import re
from collections.abc import Iterable
from pathlib import Path

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
    from .backends.base import DEFAULT_PROMPT_TEMPLATE, DEFAULT_REPORT_STYLE, FINDING_NAMES

    texts = [DEFAULT_PROMPT_TEMPLATE, DEFAULT_REPORT_STYLE, " ".join(FINDING_NAMES.values()), _FALLBACK_WORDS]
    texts.extend(extra)
    try:
        from .reportbank import IU_TGZ, parse_iu_tgz

        if IU_TGZ.exists():
            for report in parse_iu_tgz(IU_TGZ)[:max_reports]:
                texts.append(f"Findings: {report['findings']} Impression: {report['impression']}")
    except Exception:  # noqa: BLE001 - the fallback words are enough for a random model
        pass
    return [re.sub(r"\{[a-z_]+\}", " ", t) for t in texts]


def build_tiny_tokenizer(vocab_size: int = 512, corpus: Iterable[str] | None = None):
    """A ``PreTrainedTokenizerFast`` with Janus' special tokens, trained offline on radiology words."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=1)
    tok.train_from_iterator(list(corpus) if corpus is not None else _corpus(), trainer=trainer)
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
    )


def build_tiny_janus(path: str | Path, seed: int = 0, corpus: Iterable[str] | None = None) -> Path:
    """Write a tiny random Janus model + processor to ``path`` (created if needed) and return it."""
    import torch
    from transformers import JanusForConditionalGeneration, JanusProcessor
    from transformers.models.janus import JanusImageProcessorPil

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(corpus=corpus)
    image_processor = JanusImageProcessorPil(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    config = tiny_janus_config(tokenizer)
    processor = JanusProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        use_default_system_prompt=False,
        num_image_tokens=config.vision_config.num_image_tokens,
    )
    torch.manual_seed(seed)
    model = JanusForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.boi_token_id = tokenizer.convert_tokens_to_ids(BOI)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
