"""A tiny random CheXbert stand-in in the published checkpoint's format, for tests (no hub, no real weights).

Written without our loader's code: a ``BertModel`` of a tiny ``BertConfig`` and CheXbert's 14 heads (13 x 4
classes, 1 x 2), saved as ``torch.save({'model_state_dict': ...})`` with DataParallel's ``module.`` prefix and the
key names of the released ``chexbert.pth`` (``module.bert.*``, ``module.linear_heads.<i>.weight/bias``), plus a
WordPiece ``vocab.txt`` and the ``config.json`` (inference/backends/chexbert.py describes the layout)."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertModel

WORDS = ("no pleural effusion or pneumothorax . heart size is normal enlarged cardiomegaly mild edema lungs are "
         "clear focal consolidation atelectasis at the bases right left lung opacity support devices tube line "
         "fracture , stable unchanged there small large moderate bilateral").split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_state_dict(seed: int = 0, hidden: int = 32, vocab_size: int = 96, max_positions: int = 64):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=max_positions,
                        initializer_range=1.0)  # large weights: the [CLS] vector then depends on the words
    bert = BertModel(config)
    state = {f"module.bert.{k}": v for k, v in bert.state_dict().items()}
    for i in range(14):
        head = torch.nn.Linear(hidden, 4 if i < 13 else 2)
        # Scaled up so the argmax differs between reports (random heads on a tiny encoder are near-constant).
        state[f"module.linear_heads.{i}.weight"] = head.weight.detach() * 10
        state[f"module.linear_heads.{i}.bias"] = head.bias.detach()
    return config, state


def build_tiny_chexbert(folder: Path, seed: int = 0) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + sorted(set(WORDS)) + ["##s", "##ed", "##al"]
    config, state = tiny_state_dict(seed, vocab_size=max(96, len(vocab)))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config.save_pretrained(folder)
    torch.save({"model_state_dict": state, "epoch": 1}, folder / "chexbert.pth")
    return folder
