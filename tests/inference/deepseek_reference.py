"""A small reference of DeepSeek's Janus understanding path, computed straight from a DeepSeek-format state dict.

Written from DeepSeek's ``janus`` package (MIT): ``VLMImageProcessor`` (``int()`` resize, ``expand2square``,
rescale, normalise), ``VLChatProcessor`` (tokenise with BOS, one image tag -> ``<begin_of_image>`` + N image
tokens + ``<end_of_image>``), the SigLIP ViT of ``siglip_vit.py`` (fused qkv, final norm, no pooling head),
``MlpProjector`` (Linear, GELU, Linear) and ``LlamaForCausalLM`` with the language model's own ``lm_head``. It
shares no code with the converter, so it checks the converter's key mapping, the un-tied lm_head and the image
resizing independently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def deepseek_pixels(image: Image.Image, folder: Path) -> torch.Tensor:
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    size, min_size = int(pre["image_size"]), int(pre["min_size"])
    mean, std = np.array(pre["image_mean"]), np.array(pre["image_std"])
    image = image.convert("RGB")
    width, height = image.size
    longest = max(width, height)
    h = max(int(height / longest * size), min_size)
    w = max(int(width / longest * size), min_size)
    image = image.resize((w, h), Image.Resampling.BICUBIC)
    if w != h:
        side = max(w, h)
        square = Image.new("RGB", (side, side), tuple(int(x * 255) for x in pre["image_mean"]))
        square.paste(image, ((side - w) // 2, (side - h) // 2))
        image = square
    arr = np.asarray(image, dtype=np.float64).transpose(2, 0, 1) * float(pre["rescale_factor"])
    arr = (arr - mean[:, None, None]) / std[:, None, None]
    return torch.from_numpy(arr).float()[None]


def deepseek_input_ids(text: str, folder: Path) -> torch.Tensor:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    n = json.loads((folder / "processor_config.json").read_text())["num_image_tokens"]
    image, boi, eoi, bos = (
        tok.token_to_id(t)
        for t in ("<image_placeholder>", "<begin_of_image>", "<end_of_image>", "<｜begin▁of▁sentence｜>")
    )
    ids = [bos] + tok.encode(text, add_special_tokens=False).ids  # LlamaTokenizerFast add_bos_token=True
    out: list[int] = []
    for i in ids:
        out += [boi] + [image] * n + [eoi] if i == image else [i]
    return torch.tensor([out])


def _vit(state: dict, pixels: torch.Tensor, heads: int) -> torch.Tensor:
    p = "vision_model.vision_tower."
    w = state[p + "patch_embed.proj.weight"]
    x = F.conv2d(pixels, w, state[p + "patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    x = x + state[p + "pos_embed"]
    width = x.shape[-1]
    layers = sorted({int(k.split(".")[3]) for k in state if k.startswith(p + "blocks.")})
    for i in layers:
        b = f"{p}blocks.{i}."
        h = F.layer_norm(x, (width,), state[b + "norm1.weight"], state[b + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, state[b + "attn.qkv.weight"], state[b + "attn.qkv.bias"])
        qkv = qkv.reshape(x.shape[0], x.shape[1], 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(x.shape)
        x = x + F.linear(a, state[b + "attn.proj.weight"], state[b + "attn.proj.bias"])
        h = F.layer_norm(x, (width,), state[b + "norm2.weight"], state[b + "norm2.bias"], eps=1e-6)
        h = F.gelu(F.linear(h, state[b + "mlp.fc1.weight"], state[b + "mlp.fc1.bias"]))
        x = x + F.linear(h, state[b + "mlp.fc2.weight"], state[b + "mlp.fc2.bias"])
    return F.layer_norm(x, (width,), state[p + "norm.weight"], state[p + "norm.bias"], eps=1e-6)


def _aligner(state: dict, x: torch.Tensor) -> torch.Tensor:
    x = F.linear(x, state["aligner.layers.0.weight"], state["aligner.layers.0.bias"])
    return F.linear(F.gelu(x), state["aligner.layers.2.weight"], state["aligner.layers.2.bias"])


@torch.no_grad()
def deepseek_logits(folder: Path, input_ids: torch.Tensor, pixels: torch.Tensor, vision_heads: int) -> torch.Tensor:
    from transformers import LlamaConfig, LlamaForCausalLM

    state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    config = json.loads((folder / "config.json").read_text())
    language = {k: v for k, v in config["language_config"].items() if k not in ("model_type", "torch_dtype")}
    lm = LlamaForCausalLM(LlamaConfig(**language)).eval()  # DeepSeek: LlamaForCausalLM(language_config)
    lm.load_state_dict(
        {k.removeprefix("language_model."): v for k, v in state.items() if k.startswith("language_model.")}, strict=True
    )
    embeds = lm.get_input_embeddings()(input_ids).clone()
    mask = input_ids == _image_id(folder)
    embeds[mask] = _aligner(state, _vit(state, pixels, vision_heads)).reshape(-1, embeds.shape[-1])
    return lm(inputs_embeds=embeds).logits


def _image_id(folder: Path) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).token_to_id("<image_placeholder>")
