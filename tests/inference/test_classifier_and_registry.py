"""The expert classifier (weights and fallback), the registry and the configuration."""

from __future__ import annotations

import pytest

from inference.backends import (
    DEFAULT_FINDINGS,
    BackendConfig,
    BackendError,
    ModelLoadError,
    clear_cache,
    get_backend,
    load_backend,
)
from inference.backends.base import resolve_device, resolve_dtype_name, to_rgb


def test_classifier_without_weights_or_bank_images_gives_no_probabilities():
    from PIL import Image

    backend = get_backend("classifier")
    backend.load({})  # no weights; the bundled IU bank has no images
    black, white = (backend.generate([Image.new("L", (64, 64), v)], DEFAULT_FINDINGS) for v in (0, 255))
    for draft in (black, white):
        assert draft.parameters["classifier_mode"] == "retrieval-fallback"
        assert draft.probabilities == {}
        assert "no probabilities" in draft.parameters["note"]
        assert draft.impression == "No expert classifier output."


def test_classifier_with_weights(tmp_path, make_cxr):
    import torch

    from inference.backends.classifier import build_small_cxr_net, save_checkpoint

    torch.manual_seed(0)
    net = build_small_cxr_net(len(DEFAULT_FINDINGS), width=4, depth=2)
    path = save_checkpoint(net, tmp_path / "clf.pt", DEFAULT_FINDINGS, image_size=64, width=4, depth=2)
    backend = get_backend("classifier")
    backend.load({"weights_path": str(path), "device": "cpu"})
    draft = backend.generate([make_cxr(2)], list(DEFAULT_FINDINGS) + ["support_devices"])
    assert draft.parameters["classifier_mode"] == "weights"
    assert set(draft.probabilities) == set(DEFAULT_FINDINGS)
    assert draft.parameters["unknown_findings"] == ["support_devices"]
    assert all(0.0 <= p <= 1.0 for p in draft.probabilities.values())
    assert list(draft.parameters["weights_sha256"]) == ["clf.pt"]
    assert backend.generate([make_cxr(2)]).probabilities == draft.probabilities


def test_classifier_bad_checkpoints(tmp_path):
    import torch
    with pytest.raises(ModelLoadError, match="not found"):
        get_backend("classifier").load({"weights_path": str(tmp_path / "missing.pt")})
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="junk.pt"):
        get_backend("classifier").load({"weights_path": str(junk)})
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ModelLoadError, match="cxr-trial-classifier/1"):
        get_backend("classifier").load({"weights_path": str(other)})


def test_registry_and_process_cache():
    assert get_backend("retrieval").name == "retrieval"
    with pytest.raises(BackendError, match="Unknown backend"):
        get_backend("gpt")
    clear_cache()
    a = load_backend("retrieval", {"k": 3})
    assert load_backend("retrieval", BackendConfig(k=3)) is a
    assert load_backend("retrieval", {"k": 4}) is not a
    clear_cache()


def test_config_round_trip_and_validation():
    cfg = BackendConfig.from_dict(
        {
            "weights_path": "/m",
            "max_new_tokens": 64,
            "temperature": 0.7,
            "classifier": {"weights_path": "/c.pt"},
            "findings": ["pneumothorax"],
        }
    )
    assert cfg.generation.max_new_tokens == 64 and cfg.generation.temperature == 0.7
    assert cfg.classifier is not None and cfg.classifier.weights_path == "/c.pt"
    assert BackendConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="Unknown backend config keys"):
        BackendConfig.from_dict({"weigths_path": "/m"})
    assert resolve_dtype_name("cuda") == "bfloat16" and resolve_dtype_name("cpu") == "float32"
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") in ("cpu", "cuda")


def test_to_rgb_scales_16_bit(make_cxr):
    img = to_rgb(make_cxr(0, mode="I;16"))
    assert img.mode == "RGB" and img.getextrema()[0][1] == 255
