"""``retrieval``: the weight-free default backend (the demo's), a nearest-neighbour report-retrieval baseline.

It embeds the case's image(s) (:mod:`inference.backends.embedding`: histogram-equalised tiny image + two-scale
HOG, deterministic, no weights), finds the most similar entries of a report bank
(:mod:`inference.reportbank`) and returns the nearest entry's report verbatim, the six findings' probabilities
from the k nearest neighbours' labels (distance-weighted, shrunk to the bank prevalence; labelled in
``parameters['probabilities_from']`` as the baseline's, not a classifier's) and the neighbours' ids.
Its label is ``"retrieval baseline"``, which the UI shows.

Bank: ``config.bank_path`` (an IU-style ``.tgz`` or a ``.npz`` saved by :meth:`ReportBank.save_npz`), else the
bundled IU X-ray reports; or set programmatically with :meth:`RetrievalBackend.set_bank` (a trial's reference
cases, or IU reports paired with images). If the bank has no image embeddings (the IU reports alone), the report
is chosen by a deterministic hash of the image embedding and ``parameters['retrieval_mode']`` is ``'hash'``:
reproducible, but carrying no information from the image, so the draft then has text only and **no**
probabilities (docs/design.md section 6: nothing is ever derived from a hash).

Several images of one case (PA + lateral): the first ``config.max_images`` embeddings are averaged.
No torch import: works in the demo install.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..reportbank import ReportBank, load_iu_bank
from .base import Backend, BackendConfig, DraftResult, clamp_probability
from .embedding import EMBEDDING_VERSION, embed_image

LABEL = "retrieval baseline"


def load_bank(path: str | None) -> ReportBank:
    if not path:
        return load_iu_bank()
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return ReportBank.load_npz(path)
    return load_iu_bank(str(path))


class RetrievalBackend(Backend):
    name = "retrieval"
    label = LABEL

    def __init__(self, bank: ReportBank | None = None) -> None:
        super().__init__()
        self.bank: ReportBank | None = bank

    def set_bank(self, bank: ReportBank) -> None:
        self.bank = bank

    def _load(self, config: BackendConfig) -> None:
        if self.bank is None or config.bank_path:
            self.bank = load_bank(config.bank_path)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        views = list(images)[: max(1, self.config.max_images)]
        return np.mean([embed_image(im) for im in views], axis=0)

    def retrieve(self, images: Sequence[Image.Image], findings: Sequence[str], exclude: Sequence[str] = ()):
        assert self.bank is not None
        return self.bank.query(self.embed(images), k=self.config.k, codes=findings, exclude=exclude)

    def _generate(
        self, images: Sequence[Image.Image], findings: Sequence[str], context: Mapping[str, Any]
    ) -> DraftResult:
        start = time.perf_counter()
        result = self.retrieve(images, findings, exclude=tuple(context.get("exclude_ids", ())))
        # Hash mode carries no image information: no probabilities then (never made-up expert findings).
        probs = (
            {}
            if result.mode == "hash"
            else {
                code: clamp_probability(result.probabilities[code])
                for code in findings
                if code in result.probabilities
            }
        )
        entry = result.entry
        return DraftResult(
            findings=entry.findings,
            impression=entry.impression,
            text=entry.text,
            probabilities=probs,
            backend=LABEL,
            prompt="",
            parameters={
                "backend": self.name,
                "embedding": EMBEDDING_VERSION,
                "bank": self.bank.name if self.bank else None,
                "bank_size": len(self.bank) if self.bank else 0,
                "k": self.config.k,
                "retrieval_mode": result.mode,
                "nearest_id": entry.id,
                "nearest_source": entry.source,
                "similarities": [
                    None if s != s else round(s, 6) for s in (n.similarity for n in result.neighbours)
                ],
                "unknown_findings": [c for c in findings if c not in result.probabilities],
                "probabilities_from": (
                    None if result.mode == "hash"
                    else "retrieval baseline: label frequencies of the k nearest bank images"
                ),
                "note": (
                    "report picked by a hash of the image embedding: the bank has no images, so no probabilities"
                    if result.mode == "hash"
                    else "report of the most similar bank image"
                ),
            },
            seed=None,
            generate_s=time.perf_counter() - start,
            neighbours=[n.entry.id for n in result.neighbours],
        )

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(
            {
                "embedding": EMBEDDING_VERSION,
                "bank": self.bank.name if self.bank else None,
                "bank_size": len(self.bank) if self.bank else 0,
            }
        )
        return info
