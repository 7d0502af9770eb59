"""CheXbert labelling speed (issue 20 item 4): a random bert-base-sized CheXbert written in the published
``chexbert.pth`` layout (no config.json: the loader's bert-base default), loaded through
``inference.backends.chexbert.load_chexbert`` and timed on N reports.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/chexbert.py [--reports 64] [--device cpu] [--threads 2]
        [--weights DIR]

``--weights DIR`` times a real local CheXbert folder instead (docs/ai-evaluation.md). Needs torch and transformers.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

# The repository first: benchmarks/inference.py would shadow the inference app.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.backends.chexbert import load_chexbert  # noqa: E402

WORDS = ("no pleural effusion or pneumothorax . heart size is normal enlarged cardiomegaly mild edema lungs are "
         "clear focal consolidation atelectasis at the bases right left lung opacity support devices tube line "
         "fracture , stable unchanged there small large moderate bilateral").split()


def random_bert_base_chexbert(folder: Path) -> Path:
    torch.manual_seed(0)
    state = {f"module.bert.{k}": v for k, v in BertModel(BertConfig()).state_dict().items()}
    for i in range(14):
        head = torch.nn.Linear(768, 4 if i < 13 else 2)
        state[f"module.linear_heads.{i}.weight"] = head.weight.detach()
        state[f"module.linear_heads.{i}.bias"] = head.bias.detach()
    torch.save({"model_state_dict": state}, folder / "chexbert.pth")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp(prefix="chexbert-bench"))
    try:
        folder = Path(a.weights) if a.weights else random_bert_base_chexbert(tmp)
        t = time.perf_counter()
        lab = load_chexbert(folder, device=a.device)
        load_s = time.perf_counter() - t
        texts = [" ".join(WORDS[i % 7:i % 7 + 40]) for i in range(a.reports)]
        t = time.perf_counter()
        lab.label(texts)
        dt = time.perf_counter() - t
        print(f"load {load_s:.2f} s; {a.reports} reports of ~40 words in {dt:.2f} s "
              f"({1000 * dt / a.reports:.0f} ms/report) on {a.device}, {a.threads} threads")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
