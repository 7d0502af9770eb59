"""CheXbert, the report labeler of Smit et al. 2020 (github.com/stanfordmlgroup/CheXbert), from local files only.

Why our own loader and not the ``f1chexbert`` package (PyPI 0.0.2): its ``F1CheXbert()`` takes no path; it downloads
``chexbert.pth`` from the Hugging Face hub repo ``StanfordAIMI/RRG_scorers`` into a user cache and the tokenizer and
config of ``bert-base-uncased`` from the hub, and loads the weights with ``strict=False`` (a wrong or partial
checkpoint silently gives random heads). It also pins scikit-learn and appdirs. The architecture is small, so
this module rebuilds it exactly (``bert_labeler`` in ``f1chexbert/f1chexbert.py``, as CheXbert's
``src/models/bert_labeler.py``):

- ``bert``: a ``transformers.BertModel`` (bert-base-uncased: ``BertConfig()``'s defaults), pooler included;
- ``dropout`` (p 0.1; inactive in eval);
- ``linear_heads``: 13 ``Linear(hidden, 4)`` (blank, positive, negative, uncertain) for the first 13 conditions and
  one ``Linear(hidden, 2)`` (blank, positive) for No Finding, each on the [CLS] vector of the last layer.

The published checkpoint is a ``torch.save`` dict whose ``model_state_dict`` holds those keys behind DataParallel's
``module.`` prefix (``module.bert.embeddings.word_embeddings.weight``, ``module.linear_heads.13.bias``, ...). We load
it with ``weights_only=True`` (no pickled code runs) and strictly: a missing, unexpected or mis-shaped key is a
:class:`ChexbertLoadError` naming it. One exception: ``bert.embeddings.position_ids``, a buffer that older
transformers saved and newer ones do not keep, is ignored when unexpected.

The folder the user supplies (``load_chexbert(path)``)::

    chexbert.pth    the checkpoint (StanfordAIMI/RRG_scorers or CheXbert's release)
    vocab.txt       bert-base-uncased's WordPiece vocabulary (with its tokenizer_config.json, optional)
    config.json     optional; without it BertConfig() = bert-base-uncased's architecture

Tokenisation as f1chexbert's ``tokenize``: whitespace collapsed, WordPiece tokens, [CLS] ... [SEP], cut at 512
tokens (511 + [SEP]); an empty report is [CLS] [SEP]. Labels as CheXbert's ``label.py``: per head the argmax class
0 blank -> None, 1 positive -> 1, 2 negative -> 0, 3 uncertain -> -1.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONDITIONS = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices", "No Finding")
CHECKPOINT = "chexbert.pth"
#: head class -> CheXbert label (``label.py``): blank, positive, negative, uncertain
CLASS_LABELS = (None, 1, 0, -1)
MAX_TOKENS = 512
_IGNORABLE_UNEXPECTED = {"bert.embeddings.position_ids"}
_SPACES = re.compile(r"\s+")


class ChexbertLoadError(ValueError):
    """The folder is not a usable CheXbert checkpoint (missing file, wrong format, mismatched keys or shapes)."""


def _torch():
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import torch

    return torch


def _transformers():
    # Lazy: heavy optional dependency (the demo installs no torch/transformers).
    import transformers

    return transformers


def build_labeler(config: Any):
    """CheXbert's ``bert_labeler`` module on ``config`` (a ``BertConfig``), randomly initialised."""
    torch = _torch()
    nn = torch.nn
    tf = _transformers()

    class BertLabeler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = tf.BertModel(config)
            self.dropout = nn.Dropout(0.1)
            hidden = config.hidden_size
            self.linear_heads = nn.ModuleList([nn.Linear(hidden, 4, bias=True) for _ in range(13)])
            self.linear_heads.append(nn.Linear(hidden, 2, bias=True))

        def forward(self, input_ids, attention_mask):
            cls = self.dropout(self.bert(input_ids, attention_mask=attention_mask)[0][:, 0, :])
            return [head(cls) for head in self.linear_heads]

    return BertLabeler()


def _state_dict(path: Path) -> dict[str, Any]:
    torch = _torch()
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the same user-facing error
        raise ChexbertLoadError(f"{path} is not a readable torch checkpoint ({type(e).__name__}: {e})") from e
    state = ckpt.get("model_state_dict") if isinstance(ckpt, dict) and "model_state_dict" in ckpt else ckpt
    if not isinstance(state, dict) or not state or not all(hasattr(v, "shape") for v in state.values()):
        raise ChexbertLoadError(f"{path} holds no state dict (expected CheXbert's {{'model_state_dict': ...}})")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_strict(model: Any, state: dict[str, Any], path: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own) - _IGNORABLE_UNEXPECTED)
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if shapes:
        problems.append(f"mismatched shapes {shapes[:3]}{' ...' if len(shapes) > 3 else ''} "
                        "(a config.json for another architecture, or none for a non-bert-base checkpoint?)")
    if problems:
        raise ChexbertLoadError(f"{path} does not match CheXbert's architecture: " + "; ".join(problems))
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ChexbertLabeler:
    """A loaded CheXbert: :meth:`label` gives each report's 14 labels (``CONDITIONS`` order)."""

    model: Any
    tokenizer: Any
    max_tokens: int
    device: str
    checkpoint_sha256: str
    path: str

    def encode(self, text: str) -> list[int]:
        """f1chexbert's ``tokenize`` of one report."""
        tok = self.tokenizer
        tokens = tok.tokenize(_SPACES.sub(" ", (text or "").strip().replace("\n", " ")).strip())
        if not tokens:
            return [tok.cls_token_id, tok.sep_token_id]
        ids = [tok.cls_token_id, *tok.convert_tokens_to_ids(tokens), tok.sep_token_id]
        return ids[: self.max_tokens - 1] + [tok.sep_token_id] if len(ids) > self.max_tokens else ids

    def label(self, texts: Sequence[str], batch_size: int = 16) -> list[tuple[int | None, ...]]:
        """CheXbert's labels of each text: 1 positive, 0 negative, -1 uncertain, None blank (No Finding: 1/None).
        Batches are padded with an attention mask, as CheXbert's ``label.py`` does."""
        torch = _torch()
        out: list[tuple[int | None, ...]] = []
        for start in range(0, len(texts), batch_size):
            enc = [self.encode(t) for t in texts[start:start + batch_size]]
            width = max(len(e) for e in enc)
            ids = torch.full((len(enc), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
            mask = torch.zeros((len(enc), width), dtype=torch.long)
            for i, e in enumerate(enc):
                ids[i, : len(e)] = torch.tensor(e, dtype=torch.long)
                mask[i, : len(e)] = 1
            with torch.inference_mode():
                heads = self.model(ids.to(self.device), mask.to(self.device))
            classes = torch.stack([h.argmax(dim=1) for h in heads], dim=1).cpu().tolist()
            out.extend(tuple(CLASS_LABELS[c] for c in row) for row in classes)
        return out

    def describe(self) -> dict[str, Any]:
        """What the analysis manifest records about the weights used."""
        return {"model": "CheXbert (Smit et al. 2020)", "path": self.path, "checkpoint_sha256": self.checkpoint_sha256}


def _device(name: str) -> str:
    torch = _torch()
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ChexbertLoadError(f"{name!r} is not a torch device ({e})") from e
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ChexbertLoadError(f"device {name!r} is not available on this machine")
    return str(dev)


def load_chexbert(path: str | Path, device: str = "cpu") -> ChexbertLabeler:
    """Load CheXbert from a local folder (module docstring); never touches the network."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ChexbertLoadError(f"CheXbert weights folder {folder} does not exist")
    ckpt = folder / CHECKPOINT
    if not ckpt.is_file():
        raise ChexbertLoadError(f"{folder} has no {CHECKPOINT} (CheXbert's checkpoint; docs/ai-evaluation.md)")
    if not (folder / "vocab.txt").is_file() and not (folder / "tokenizer.json").is_file():
        raise ChexbertLoadError(f"{folder} has no vocab.txt (bert-base-uncased's WordPiece vocabulary)")
    device = _device(device)
    tf = _transformers()
    if (folder / "config.json").is_file():
        try:
            config = tf.BertConfig.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, json.JSONDecodeError) as e:
            raise ChexbertLoadError(f"{folder / 'config.json'} is not a BERT config ({e})") from e
    else:
        config = tf.BertConfig()  # = bert-base-uncased, what f1chexbert builds (AutoConfig of bert-base-uncased)
    try:
        tokenizer = tf.BertTokenizerFast.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ChexbertLoadError(f"the tokenizer files in {folder} do not load ({e})") from e
    if len(tokenizer) > config.vocab_size:
        raise ChexbertLoadError(f"the vocabulary in {folder} has {len(tokenizer)} tokens, more than the model's "
                                f"{config.vocab_size}: not the checkpoint's tokenizer")
    model = build_labeler(config)
    _load_strict(model, _state_dict(ckpt), ckpt)
    model.eval().to(device)
    return ChexbertLabeler(model=model, tokenizer=tokenizer,
                           max_tokens=min(MAX_TOKENS, int(config.max_position_embeddings)), device=device,
                           checkpoint_sha256=_sha256(ckpt), path=str(folder))
