"""DeepSeek's own janus format (the published Janus-Pro-CXR weights) -> transformers' Janus, on a tiny random model.

The "published" folder is written in DeepSeek's layout (config schema, parameter names, fused qkv, pooling head,
tokenizer and processor files); the converted folder is loaded through the janus backend's real path, and its
logits are compared with a reference of DeepSeek's architecture computed from the DeepSeek state dict itself
(tests/inference/deepseek_reference.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from django.core.management import call_command
from PIL import Image

from inference.backends import ModelLoadError, get_backend
from inference.backends.deepseek_janus import (
    MANIFEST,
    ConversionError,
    convert_deepseek_janus,
    convert_state_dict,
    is_deepseek_janus,
)
from inference.backends.prompts import PUBLISHED_INSTRUCTION, get_template
from inference.tiny import TINY_VISION_HEADS, build_tiny_deepseek_janus, tiny_native_model
from tests.inference.deepseek_reference import deepseek_input_ids, deepseek_logits, deepseek_pixels


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return build_tiny_deepseek_janus(tmp_path_factory.mktemp("deepseek") / "Janus-Pro-CXR-tiny")


@pytest.fixture(scope="module")
def converted(published, tmp_path_factory):
    dst = tmp_path_factory.mktemp("converted") / "janus-hf"
    report = convert_deepseek_janus(published, dst, vision_heads=TINY_VISION_HEADS)
    return dst, report


@pytest.fixture(scope="module")
def backend(converted):
    janus = get_backend("janus")
    janus.load({"weights_path": str(converted[0]), "max_new_tokens": 8, "device": "cpu"})
    return janus


def test_the_published_folder_is_in_deepseeks_format(published):
    config = json.loads((published / "config.json").read_text())
    assert config["model_type"] == "multi_modality" and config["architectures"] == ["MultiModalityCausalLM"]
    assert is_deepseek_janus(published)
    state = torch.load(published / "pytorch_model.bin", weights_only=True)
    assert "vision_model.vision_tower.blocks.0.attn.qkv.weight" in state
    assert "language_model.lm_head.weight" in state and "gen_vision_model.quantize.codebook_used" in state


def test_every_tensor_is_mapped_and_equal_to_the_original(converted, published):
    dst, report = converted
    from safetensors.torch import load_file

    written = load_file(dst / "model.safetensors")
    _tok, _config, original = tiny_native_model(0)  # the model that was exported to DeepSeek's names
    expected = original.state_dict()
    assert set(written) == set(expected) and report.n_tensors == len(expected)
    for key, tensor in expected.items():
        assert torch.equal(written[key], tensor), key
    assert report.dropped == sorted(
        [k for k in torch.load(published / "pytorch_model.bin", weights_only=True) if ".attn_pool." in k]
        + ["gen_vision_model.quantize.codebook_used"]
    )


def test_lm_head_is_not_tied(converted, backend):
    dst, report = converted
    config = json.loads((dst / "config.json").read_text())
    assert report.tie_word_embeddings is False and config["tie_word_embeddings"] is False
    model = backend.model
    assert not torch.equal(model.lm_head.weight, model.model.language_model.embed_tokens.weight)
    assert model.lm_head.weight.data_ptr() != model.model.language_model.embed_tokens.weight.data_ptr()


def test_manifest_records_source_and_output_hashes(converted, published):
    dst, report = converted
    manifest = json.loads((dst / MANIFEST).read_text())
    source = hashlib.sha256((published / "pytorch_model.bin").read_bytes()).hexdigest()
    output = hashlib.sha256((dst / "model.safetensors").read_bytes()).hexdigest()
    assert manifest["source_sha256"] == {"pytorch_model.bin": source}
    assert manifest["output_sha256"] == {"model.safetensors": output}
    assert manifest["vision"]["num_attention_heads"] == TINY_VISION_HEADS
    assert manifest["versions"]["transformers"]


@pytest.mark.parametrize("size", [(32, 32), (50, 37), (29, 61)])
def test_logits_equal_deepseeks_reference(backend, published, make_cxr, size):
    image = make_cxr(3, size=size).convert("RGB")
    template = get_template("janus-pro-cxr")
    conversation = template.render(1, PUBLISHED_INSTRUCTION)
    inputs = backend.processor(text=[conversation], images=backend._views([image]), return_tensors="pt")
    ref_ids = deepseek_input_ids(conversation, published)
    ref_pixels = deepseek_pixels(image, published)
    assert torch.equal(inputs["input_ids"], ref_ids)
    assert torch.allclose(inputs["pixel_values"], ref_pixels, atol=1e-6)
    with torch.no_grad():
        logits = backend.model(**inputs).logits
    reference = deepseek_logits(published, ref_ids, ref_pixels, TINY_VISION_HEADS)
    assert logits.shape == reference.shape
    assert torch.allclose(logits, reference, atol=1e-4, rtol=1e-4)


def test_transformers_own_resizing_differs_on_non_square_images(backend, published, make_cxr):
    # 50 x 37 -> DeepSeek int(37 / 50 * 32) = 23 rows, transformers round() = 24: why the backend resizes itself
    image = make_cxr(4, size=(50, 37)).convert("RGB")
    raw = backend.processor.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    assert not torch.allclose(raw, deepseek_pixels(image, published), atol=1e-3)
    square = make_cxr(4, size=(64, 64)).convert("RGB")
    raw_square = backend.processor.image_processor(images=[square], return_tensors="pt")["pixel_values"]
    assert torch.allclose(raw_square, deepseek_pixels(square, published), atol=1e-6)


def test_converted_model_generates_a_draft_with_the_published_prompt(backend, make_cxr):
    draft = backend.generate([make_cxr(5)])
    assert draft.backend == "janus" and draft.parameters["new_tokens"] >= 1
    assert draft.prompt.startswith("<｜begin▁of▁sentence｜>You are a helpful language and vision assistant.")
    assert draft.prompt.endswith(f"<end_of_image>\n{PUBLISHED_INSTRUCTION}\n\nAssistant:")
    assert draft.probabilities == {}


def test_unknown_missing_and_misshapen_tensors_are_refused(published, tmp_path):
    state = torch.load(published / "pytorch_model.bin", weights_only=True)
    with pytest.raises(ConversionError, match="unknown DeepSeek tensor"):
        convert_state_dict({**state, "vision_model.vision_tower.extra.weight": torch.zeros(1)})

    def broken(name: str, change) -> str:
        folder = tmp_path / name
        shutil.copytree(published, folder)
        changed = dict(state)
        change(changed)
        torch.save(changed, folder / "pytorch_model.bin")
        with pytest.raises(ConversionError) as info:
            convert_deepseek_janus(folder, tmp_path / f"{name}-out", vision_heads=TINY_VISION_HEADS)
        return str(info.value)

    assert "missing 1: model.language_model.layers.1.mlp.up_proj.weight" in broken(
        "missing", lambda s: s.pop("language_model.model.layers.1.mlp.up_proj.weight")
    )
    assert "shape mismatch" in broken(
        "shape", lambda s: s.__setitem__("gen_embed.weight", torch.zeros(3, 3))
    )


def test_vision_heads_are_required_outside_deepseeks_table(published, tmp_path):
    with pytest.raises(ConversionError, match="--vision-heads"):
        convert_deepseek_janus(published, tmp_path / "out")
    with pytest.raises(ConversionError, match="not empty"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        convert_deepseek_janus(published, tmp_path / "full", vision_heads=TINY_VISION_HEADS)


def test_backend_names_the_command_for_a_deepseek_folder(published):
    with pytest.raises(ModelLoadError) as info:
        get_backend("janus").load({"weights_path": str(published), "device": "cpu"})
    message = str(info.value)
    assert "DeepSeek's own janus format" in message
    assert f"python manage.py convert_janus {published} " in message and "docs/janus.md" in message


def test_backend_converts_on_the_fly_into_a_cache(published, tmp_path, make_cxr):
    options = {"convert_cache": str(tmp_path / "cache"), "vision_heads": TINY_VISION_HEADS}
    first = get_backend("janus")
    first.load({"weights_path": str(published), "max_new_tokens": 4, "device": "cpu", "options": options})
    made = list((tmp_path / "cache").iterdir())
    assert len(made) == 1 and (made[0] / MANIFEST).is_file()
    stamp = (made[0] / "model.safetensors").stat().st_mtime_ns
    second = get_backend("janus")
    second.load({"weights_path": str(published), "max_new_tokens": 4, "device": "cpu", "options": options})
    assert (made[0] / "model.safetensors").stat().st_mtime_ns == stamp  # converted once
    draft = second.generate([make_cxr(6)])
    assert draft.parameters["weights_dir"] == str(made[0])


def test_management_command(published, tmp_path):
    from io import StringIO

    out = StringIO()
    call_command(
        "convert_janus", str(published), str(tmp_path / "cmd"), "--vision-heads", str(TINY_VISION_HEADS), stdout=out
    )
    assert "lm_head kept" in out.getvalue() and (tmp_path / "cmd" / "model.safetensors").is_file()
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--vision-heads"):
        call_command("convert_janus", str(published), str(tmp_path / "cmd2"))


def test_a_grey_image_is_accepted(backend):
    draft = backend.generate([Image.new("L", (40, 20), 90)])
    assert draft.text is not None
