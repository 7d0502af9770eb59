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
from inference.backends.prompts import (
    DEEPSEEK_SYSTEM_PROMPT,
    PUBLISHED_EXPERT_INSTRUCTION,
    PUBLISHED_INSTRUCTION,
    get_template,
)
from inference.backends.text import parse_report
from inference.tiny import BOI, BOS, EOI, IMAGE_TOKEN


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
    assert draft.load_s > 0 and draft.generate_s > 0
    assert draft.timings == {"load_s": draft.load_s, "generate_s": draft.generate_s}
    assert 1 <= draft.parameters["new_tokens"] <= 16
    assert draft.seed == 0
    # no expert model configured: no probabilities, no expert sentence (nothing made up)
    assert draft.probabilities == {}
    assert draft.parameters["expert"]["source"] is None and "Expert analysis" not in draft.prompt
    assert draft.parameters["prompt_template"] == "janus-pro-cxr"
    sha = hashlib.sha256((tiny_janus_path / "model.safetensors").read_bytes()).hexdigest()
    assert draft.parameters["weights_sha256"] == {"model.safetensors": sha}
    assert weights_sha256(tiny_janus_path) == {"model.safetensors": sha}
    json.dumps(draft.to_dict())  # storable as is


def _published_input(n_image_tokens: int, text: str) -> str:
    """The published model input, written out by hand from DeepSeek's template (janus/utils/conversation.py)."""
    image = BOI + IMAGE_TOKEN * n_image_tokens + EOI
    return f"{BOS}{DEEPSEEK_SYSTEM_PROMPT}\n\nUser: {image}\n{text}\n\nAssistant:"


def test_stored_prompt_is_exactly_the_model_input(janus, make_cxr):
    draft = janus.generate([make_cxr(8, size=(70, 50))])
    n = janus.processor.num_image_tokens
    assert draft.prompt == _published_input(n, PUBLISHED_INSTRUCTION)
    assert draft.parameters["prompt_sha256"] == hashlib.sha256(draft.prompt.encode()).hexdigest()
    # byte for byte what the model received: the stored text tokenises back to the processor's input ids
    conversation = get_template("janus-pro-cxr").render(1, PUBLISHED_INSTRUCTION)
    inputs = janus.processor(text=[conversation], images=janus._views([make_cxr(8)]), return_tensors="pt")
    again = janus.processor.tokenizer(draft.prompt, add_special_tokens=False)["input_ids"]
    assert again == inputs["input_ids"][0].tolist()
    assert janus.processor.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=False) == draft.prompt


def test_batch_prompts_are_stored_without_padding(janus, make_cxr):
    probs = {"pleural_effusion": 0.9, "lung_opacity": 0.7, "pneumothorax": 0.1}
    short, long = janus.generate_batch(
        [
            GenerationRequest(images=[make_cxr(9)]),
            GenerationRequest(images=[make_cxr(10)], context={"finding_probabilities": probs}),
        ]
    )
    n = janus.processor.num_image_tokens
    assert short.prompt == _published_input(n, PUBLISHED_INSTRUCTION)
    expert = "Expert analysis: Pleural Effusion, Lung Opacity present." + PUBLISHED_EXPERT_INSTRUCTION
    assert long.prompt == _published_input(n, expert)
    assert "<｜▁pad▁｜>" not in short.prompt


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


def test_probabilities_from_context_make_the_expert_sentence(janus, make_cxr):
    probs = {code: 0.2 for code in DEFAULT_FINDINGS} | {"pneumothorax": 0.93, "cardiomegaly": 0.5}
    draft = janus.generate([make_cxr(7)], context={"finding_probabilities": probs})
    assert "Expert analysis: Pneumothorax, Cardiomegaly present.Please examine this X-ray" in draft.prompt
    assert draft.probabilities["pneumothorax"] == pytest.approx(0.93)
    assert draft.parameters["probabilities_from"] == "context"
    assert draft.parameters["expert"]["positive"] == ["pneumothorax", "cardiomegaly"]
    nothing = janus.generate([make_cxr(7)], context={"finding_probabilities": {c: 0.1 for c in DEFAULT_FINDINGS}})
    assert "Expert analysis: No Finding present." in nothing.prompt


def test_other_templates_are_selectable(tiny_janus_path, make_cxr):
    legacy = get_backend("janus")
    legacy.load({"weights_path": str(tiny_janus_path), "max_new_tokens": 4, "device": "cpu", "prompt": "cxr-trial-v1"})
    probs = {code: 0.5 for code in DEFAULT_FINDINGS} | {"pneumothorax": 0.93}
    draft = legacy.generate([make_cxr(7)], context={"finding_probabilities": probs, "indication": "Dyspnea."})
    assert "pneumothorax: 0.93" in draft.prompt and "Dyspnea." in draft.prompt and "<|User|>: " in draft.prompt
    assert draft.parameters["prompt_template"] == "cxr-trial-v1"
    custom = get_backend("janus")
    custom.load(
        {
            "weights_path": str(tiny_janus_path), "max_new_tokens": 4, "device": "cpu",
            "prompt": {"instruction": "Describe the radiograph.", "system_prompt": ""},
        }
    )
    text = custom.generate([make_cxr(7)]).prompt
    assert text.startswith(f"{BOS}User: {BOI}") and text.endswith(f"{EOI}\nDescribe the radiograph.\n\nAssistant:")
    with pytest.raises(ModelLoadError, match="Unknown prompt template"):
        get_backend("janus").load({"weights_path": str(tiny_janus_path), "prompt": "nope"})


def test_expert_classifier_from_local_weights(tiny_janus_path, tmp_path):
    from PIL import Image

    from inference.backends.classifier import build_small_cxr_net, save_checkpoint

    torch.manual_seed(0)
    net = build_small_cxr_net(len(DEFAULT_FINDINGS), width=4, depth=2)
    checkpoint = save_checkpoint(net, tmp_path / "expert.pt", DEFAULT_FINDINGS, image_size=32, width=4, depth=2)
    black, white = Image.new("L", (64, 64), 0), Image.new("L", (64, 64), 255)
    with_expert = get_backend("janus")
    with_expert.load(
        {
            "weights_path": str(tiny_janus_path), "max_new_tokens": 4, "device": "cpu",
            "classifier": {"weights_path": str(checkpoint), "device": "cpu"},
            "options": {"expert_threshold": 0.0},
        }
    )
    a, b = with_expert.generate([black]), with_expert.generate([white])
    assert set(a.probabilities) == set(DEFAULT_FINDINGS) and a.probabilities != b.probabilities  # from the image
    assert a.parameters["probabilities_from"] == "expert classifier"
    assert "Expert analysis: Pleural Effusion, Pneumothorax, Atelectasis" in a.prompt
    without = get_backend("janus")
    without.load({"weights_path": str(tiny_janus_path), "max_new_tokens": 4, "device": "cpu"})
    c, d = without.generate([black]), without.generate([white])
    assert c.probabilities == d.probabilities == {}  # no expert model: nothing presented as expert findings
    assert "Expert analysis" not in c.prompt + d.prompt


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


def test_legacy_template_lists_probabilities_in_finding_order():
    template = get_template("cxr-trial-v1", legacy_format="{style}|{findings}|{probabilities}{context}")
    text = template.user_text(None, findings=["pneumothorax", "x_y"], probabilities={"pneumothorax": 0.126}, style="S")
    assert text == "S|pneumothorax, x y|- pneumothorax: 0.13"


def test_one_copy_per_process_for_versions_that_differ_only_in_generation(tiny_janus_path, make_cxr):
    from inference.backends import clear_cache, load_backend

    clear_cache()
    try:
        base = {"weights_path": str(tiny_janus_path), "device": "cpu"}
        short = load_backend("janus", {**base, "max_new_tokens": 2})
        long = load_backend("janus", {**base, "max_new_tokens": 12, "options": {"min_new_tokens": 12}})
        assert long is not short  # options differ: another model setup
        again = load_backend("janus", {**base, "max_new_tokens": 7})
        assert again is short  # same weights and options: the same loaded copy
        a = again.generate([make_cxr(1)], context={"generation": {"max_new_tokens": 2}})
        b = again.generate([make_cxr(1)], context={"generation": {"max_new_tokens": 5, "seed": 3}})
        assert a.parameters["generation"]["max_new_tokens"] == 2 and a.parameters["new_tokens"] <= 2
        assert b.parameters["generation"]["max_new_tokens"] == 5 and b.seed == 3
    finally:
        clear_cache()
