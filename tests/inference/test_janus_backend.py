"""The janus backend through the real from_pretrained path, on a tiny random model built offline."""

from __future__ import annotations

import hashlib
import json
import shutil
import time

import pytest
import torch  # noqa: F401  (make test installs the inference extra: a missing torch fails, never skips)

from inference.backends import (
    DEFAULT_FINDINGS,
    BackendConfig,
    BackendNotLoaded,
    DraftResult,
    GenerationRequest,
    ModelLoadError,
    get_backend,
    weights_sha256,
)
from inference.backends.janus import build_prompt_text
from inference.backends.text import parse_report


@pytest.fixture(scope="module")
def janus(tiny_janus_path):
    backend = get_backend("janus")
    backend.load({"weights_path": str(tiny_janus_path), "max_new_tokens": 16, "device": "cpu"})
    return backend


def test_tiny_folder_loads_with_transformers_classes(tiny_janus_path):
    from transformers import JanusForConditionalGeneration, JanusProcessor
    from transformers.models.janus import JanusImageProcessorPil

    processor = JanusProcessor.from_pretrained(tiny_janus_path, local_files_only=True)
    model = JanusForConditionalGeneration.from_pretrained(tiny_janus_path, local_files_only=True)
    assert isinstance(processor.image_processor, JanusImageProcessorPil)
    assert processor.tokenizer.convert_tokens_to_ids(processor.image_token) == model.config.image_token_id
    assert processor.num_image_tokens == model.config.vision_config.num_image_tokens
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_generate_from_grayscale_image(janus, tiny_janus_path, make_cxr):
    image = make_cxr(1)
    assert image.mode == "L"
    draft = janus.generate([image], DEFAULT_FINDINGS, {"case_id": "C001"})
    assert isinstance(draft, DraftResult)
    assert draft.backend == "janus"
    assert isinstance(draft.text, str) and draft.text.strip()
    assert set(draft.probabilities) == set(DEFAULT_FINDINGS)
    assert all(0.0 <= p <= 1.0 for p in draft.probabilities.values())
    assert draft.load_s > 0 and draft.generate_s > 0
    assert draft.timings == {"load_s": draft.load_s, "generate_s": draft.generate_s}
    assert 1 <= draft.parameters["new_tokens"] <= 16
    assert draft.seed == 0
    # the prompt carries the classifier's probabilities and the report style
    assert "<image_placeholder>" in draft.prompt and "pleural effusion:" in draft.prompt
    assert "Findings:" in draft.prompt
    sha = hashlib.sha256((tiny_janus_path / "model.safetensors").read_bytes()).hexdigest()
    assert draft.parameters["weights_sha256"] == {"model.safetensors": sha}
    assert weights_sha256(tiny_janus_path) == {"model.safetensors": sha}
    json.dumps(draft.to_dict())  # storable as is


def test_greedy_is_deterministic_and_batch_matches(janus, make_cxr):
    image = make_cxr(2)
    first = janus.generate([image])
    second = janus.generate([image])
    assert first.text == second.text
    batch = janus.generate_batch([GenerationRequest(images=[make_cxr(s)]) for s in (2, 3, 4)])
    assert len(batch) == 3 and all(d.parameters["batch_size"] == 3 for d in batch)
    assert batch[0].text == first.text


def test_sampling_is_reproducible_with_a_seed(tiny_janus_path, make_cxr):
    backend = get_backend("janus")
    backend.load(
        {
            "weights_path": str(tiny_janus_path),
            "max_new_tokens": 12,
            "do_sample": True,
            "temperature": 1.5,
            "top_p": 0.95,
            "seed": 7,
        }
    )
    image = make_cxr(5)
    a, b = backend.generate([image]), backend.generate([image])
    assert a.text == b.text and a.seed == 7
    c = backend.generate([image], context={"seed": 8})
    assert c.seed == 8


def test_sixteen_tokens_on_cpu_is_fast(janus, make_cxr):
    start = time.perf_counter()
    janus.generate([make_cxr(6)])
    assert time.perf_counter() - start < 3.0


def test_probabilities_from_context_go_into_the_prompt(janus, make_cxr):
    probs = {code: 0.5 for code in DEFAULT_FINDINGS} | {"pneumothorax": 0.93}
    draft = janus.generate([make_cxr(7)], context={"finding_probabilities": probs, "indication": "Dyspnea."})
    assert "pneumothorax: 0.93" in draft.prompt and "Dyspnea." in draft.prompt
    assert draft.probabilities["pneumothorax"] == pytest.approx(0.93)
    assert draft.parameters["probabilities_from"] == {"source": "context"}


def test_generate_before_load_is_refused(make_cxr):
    with pytest.raises(BackendNotLoaded):
        get_backend("janus").generate([make_cxr(0)])


def _load_error(path) -> str:
    with pytest.raises(ModelLoadError) as info:
        get_backend("janus").load(BackendConfig(weights_path=str(path)))
    assert info.value.path == str(path)
    return str(info.value)


def test_truncated_safetensors(tiny_janus_path, tmp_path):
    bad = tmp_path / "truncated"
    shutil.copytree(tiny_janus_path, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50_000])
    message = _load_error(bad)
    assert str(bad) in message and "safetensor" in message.lower()


def test_missing_config(tiny_janus_path, tmp_path):
    bad = tmp_path / "noconfig"
    shutil.copytree(tiny_janus_path, bad)
    (bad / "config.json").unlink()
    assert "config.json is missing" in _load_error(bad)


def test_missing_folder_weights_tokenizer_and_wrong_model_type(tiny_janus_path, tmp_path):
    assert "does not exist" in _load_error(tmp_path / "nowhere")
    no_weights = tmp_path / "noweights"
    shutil.copytree(tiny_janus_path, no_weights)
    (no_weights / "model.safetensors").unlink()
    assert "no weight files" in _load_error(no_weights)
    no_tok = tmp_path / "notokenizer"
    shutil.copytree(tiny_janus_path, no_tok)
    (no_tok / "tokenizer.json").unlink()
    _load_error(no_tok)
    wrong = tmp_path / "wrongtype"
    shutil.copytree(tiny_janus_path, wrong)
    (wrong / "config.json").write_text('{"model_type": "llama"}')
    assert "expected 'janus'" in _load_error(wrong)
    garbage = tmp_path / "garbage"
    shutil.copytree(tiny_janus_path, garbage)
    (garbage / "config.json").write_text("{not json")
    assert "unreadable" in _load_error(garbage)
    with pytest.raises(ModelLoadError, match="weights_path"):
        get_backend("janus").load({})


@pytest.mark.parametrize(
    "text, findings, impression",
    [
        ("Findings: Clear lungs.\nImpression: Normal.", "Clear lungs.", "Normal."),
        ("FINDINGS: a b\nIMPRESSION: c", "a b", "c"),
        ("findings: x impression: y", "x", "y"),
        ("no headings at all", "no headings at all", ""),
        ("Impression: only this", "", "only this"),
        (": : : \x00\x07 <unk> ::", ": : : <unk> ::", ""),
        ("", "", ""),
    ],
)
def test_report_parsing_is_robust(text, findings, impression):
    assert parse_report(text) == (findings, impression)


def test_prompt_template_lists_probabilities_in_finding_order():
    text = build_prompt_text(
        "{style}|{findings}|{probabilities}{context}", "S", ["pneumothorax", "x_y"], {"pneumothorax": 0.126}
    )
    assert text == "S|pneumothorax, x y|- pneumothorax: 0.13"
