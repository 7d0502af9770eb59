"""CheXbert from a local folder (inference/backends/chexbert.py), with a tiny random stand-in written in the
published checkpoint's format (tests/factories/chexbert.py): labels, determinism, that the weights loaded are
the file's (an independent forward pass), and a clear error for each bad folder. No network (HF_HUB_OFFLINE)."""
from __future__ import annotations

import shutil

import pytest
import torch
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertModel

from analysis.stats import chexbert_f1
from inference.backends.chexbert import CONDITIONS, ChexbertLoadError, load_chexbert
from tests.factories.chexbert import build_tiny_chexbert

TEXTS = ["No pleural effusion or pneumothorax. Heart size is normal.",
         "Mild cardiomegaly and edema.",
         "",
         "Right lung opacity, atelectasis at the bases. Support devices: tube and line.",
         "Lungs are clear."]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_chexbert(tmp_path_factory.mktemp("chexbert"))


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_labels_shape_values_and_determinism(tiny_dir):
    lab = load_chexbert(tiny_dir)
    out = lab.label(TEXTS, batch_size=2)
    assert len(out) == len(TEXTS) and all(len(row) == 14 for row in out)
    assert all(v in {1, 0, -1, None} for row in out for v in row[:13])
    assert all(row[13] in {1, None} for row in out)  # the No Finding head has 2 classes: blank, positive
    assert len(set(out)) > 1  # the stand-in's labels depend on the text
    assert lab.label(TEXTS, batch_size=16) == out  # padding is masked: batching does not change a label
    assert [lab.label([t])[0] for t in TEXTS] == out
    assert load_chexbert(tiny_dir).label(TEXTS) == out  # a second load gives the same labels
    assert lab.describe()["checkpoint_sha256"] == load_chexbert(tiny_dir).checkpoint_sha256
    assert chexbert_f1.CONDITIONS == CONDITIONS  # the pure package's copy (it imports no app)


def test_tokenisation_as_f1chexbert(tiny_dir):
    lab = load_chexbert(tiny_dir)
    tok = lab.tokenizer
    assert lab.encode("") == lab.encode("  \n ") == [tok.cls_token_id, tok.sep_token_id]
    assert lab.encode("Heart\n  size") == [tok.cls_token_id, *tok.convert_tokens_to_ids(["heart", "size"]),
                                           tok.sep_token_id]
    long = lab.encode("heart " * 200)  # the stand-in allows 64 positions: 63 tokens + [SEP]
    assert len(long) == lab.max_tokens == 64 and long[-1] == tok.sep_token_id and long[0] == tok.cls_token_id


def test_the_checkpoint_weights_are_the_ones_used(tiny_dir):
    """Labels recomputed without our loader: a BertModel and 14 heads filled from chexbert.pth by hand, one text
    at a time (no padding), tokenised by the tokenizers library's BertWordPiece."""
    state = torch.load(tiny_dir / "chexbert.pth", weights_only=True)["model_state_dict"]
    bert = BertModel(BertConfig.from_pretrained(tiny_dir)).eval()
    bert.load_state_dict({k[len("module.bert."):]: v for k, v in state.items() if k.startswith("module.bert.")})
    tok = BertWordPieceTokenizer(str(tiny_dir / "vocab.txt"), lowercase=True)  # the tokenizers library's own
    expected = []
    for text in TEXTS:
        ids = torch.tensor([tok.encode(text).ids])
        with torch.no_grad():
            cls = bert(ids, attention_mask=torch.ones_like(ids))[0][:, 0, :]
        row = []
        for i in range(14):
            logits = cls @ state[f"module.linear_heads.{i}.weight"].T + state[f"module.linear_heads.{i}.bias"]
            row.append((None, 1, 0, -1)[int(logits.argmax())])
        expected.append(tuple(row))
    assert load_chexbert(tiny_dir).label(TEXTS) == expected


def test_position_ids_buffer_of_older_checkpoints_is_accepted(tiny_dir, tmp_path):
    d = _copy(tiny_dir, tmp_path / "old")
    ckpt = torch.load(d / "chexbert.pth", weights_only=True)
    ckpt["model_state_dict"]["module.bert.embeddings.position_ids"] = torch.arange(64)[None]
    torch.save(ckpt, d / "chexbert.pth")
    assert load_chexbert(d).label(TEXTS) == load_chexbert(tiny_dir).label(TEXTS)


def _edit_state(d, edit):
    ckpt = torch.load(d / "chexbert.pth", weights_only=True)
    edit(ckpt["model_state_dict"])
    torch.save(ckpt, d / "chexbert.pth")


def test_bad_folders_give_clear_errors(tiny_dir, tmp_path):
    with pytest.raises(ChexbertLoadError, match="does not exist"):
        load_chexbert(tmp_path / "nowhere")
    d = _copy(tiny_dir, tmp_path / "nockpt")
    (d / "chexbert.pth").unlink()
    with pytest.raises(ChexbertLoadError, match="has no chexbert.pth"):
        load_chexbert(d)
    d = _copy(tiny_dir, tmp_path / "novocab")
    (d / "vocab.txt").unlink()
    with pytest.raises(ChexbertLoadError, match="has no vocab.txt"):
        load_chexbert(d)
    d = _copy(tiny_dir, tmp_path / "garbage")
    (d / "chexbert.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ChexbertLoadError, match="not a readable torch checkpoint"):
        load_chexbert(d)
    d = _copy(tiny_dir, tmp_path / "nodict")
    torch.save({"model_state_dict": {}}, d / "chexbert.pth")
    with pytest.raises(ChexbertLoadError, match="holds no state dict"):
        load_chexbert(d)
    d = _copy(tiny_dir, tmp_path / "nohead")
    _edit_state(d, lambda s: s.pop("module.linear_heads.13.weight"))
    with pytest.raises(ChexbertLoadError, match=r"missing keys \['linear_heads.13.weight'\]"):
        load_chexbert(d)
    d = _copy(tiny_dir, tmp_path / "extra")
    _edit_state(d, lambda s: s.__setitem__("module.classifier.weight", torch.zeros(2, 2)))
    with pytest.raises(ChexbertLoadError, match=r"unexpected keys \['classifier.weight'\]"):
        load_chexbert(d)
    d = _copy(tiny_dir, tmp_path / "noconfig")  # no config.json: bert-base's shapes, not the tiny checkpoint's
    (d / "config.json").unlink()
    with pytest.raises(ChexbertLoadError, match="mismatched shapes"):
        load_chexbert(d)
    d = _copy(tiny_dir, tmp_path / "badconfig")
    (d / "config.json").write_text("{not json")
    with pytest.raises(ChexbertLoadError, match="is not a BERT config"):
        load_chexbert(d)
    with pytest.raises(ChexbertLoadError, match="'cuda:99' is not available"):
        load_chexbert(tiny_dir, device="cuda:99")
    with pytest.raises(ChexbertLoadError, match="'gpu' is not a torch device"):
        load_chexbert(tiny_dir, device="gpu")
