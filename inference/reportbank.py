"""Report banks for the retrieval baseline.

A bank is a list of :class:`BankEntry` (id, findings, impression, labels, and an image embedding when one is
known). Two sources:

- the Indiana University chest X-ray reports (Open-i, NLM; CC BY-NC-ND 4.0:
  ``fixtures/reports/iu_chest_xray_reports_3955.tgz``), parsed by :meth:`ReportBank.from_iu_tgz`, with the corpus's
  "XXXX" de-identification tokens cleaned as the bank loads (``remove_redactions``: drafts never carry them);
  labels come from the reports' MeSH major terms (:mod:`inference.backends.labels`). These reports come
  **without images**, so their entries have no embedding until images are paired with them
  (:meth:`ReportBank.with_images`, used by the demo to pair its fixture images with bank reports);
- a trial's own reference cases, as (image or embedding, report, labels) tuples:
  :meth:`ReportBank.from_entries`.

:meth:`ReportBank.query` returns the nearest entry (cosine similarity of embeddings) and the k nearest
neighbours. When no entry has an embedding it falls back to a **text-only** mode: entries are picked by a
deterministic hash of the query embedding (the same image always gets the same report, but the choice carries no
image information) and the result says ``mode='hash'``.
"""

from __future__ import annotations

import functools
import io
import json
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .backends.embedding import EMBEDDING_DIM, embed_image, embedding_digest
from .backends.labels import labels_from_mesh
from .backends.text import format_report, parse_report, remove_redactions

IU_TGZ = Path(__file__).resolve().parent.parent / "fixtures" / "reports" / "iu_chest_xray_reports_3955.tgz"
IU_ATTRIBUTION = (
    "Indiana University Chest X-ray Collection (Demner-Fushman et al., JAMIA 2016; Open-i, National Library "
    "of Medicine), CC BY-NC-ND 4.0, reports used verbatim."
)

#: Softmax temperature on cosine distance for the neighbours' weights (see :meth:`ReportBank.query`).
DEFAULT_TAU = 0.05
#: Pseudo-count of the bank prevalence mixed into the k-NN probabilities (shrinkage).
DEFAULT_PRIOR_WEIGHT = 0.5


@dataclass
class BankEntry:
    id: str
    findings: str
    impression: str
    labels: dict[str, int]
    embedding: np.ndarray | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return format_report(self.findings, self.impression)


@dataclass
class Neighbour:
    entry: BankEntry
    similarity: float  # cosine similarity; NaN in hash mode
    weight: float


@dataclass
class RetrievalResult:
    entry: BankEntry
    neighbours: list[Neighbour]
    probabilities: dict[str, float]
    mode: str  # 'nearest' (image embeddings) or 'hash' (text-only fallback, no image information)


def _xml_report(data: bytes, default_id: str) -> dict[str, Any]:
    root = ET.fromstring(data)
    uid = root.find("uId")
    report_id = uid.get("id") if uid is not None and uid.get("id") else default_id
    sections = {}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().upper()
        sections[label] = " ".join((node.text or "").split())
    majors = [(m.text or "").strip() for m in root.iter("major") if (m.text or "").strip()]
    images = [p.get("id") for p in root.iter("parentImage") if p.get("id")]
    return {
        "id": report_id,
        "findings": remove_redactions(sections.get("FINDINGS", "")),
        "impression": remove_redactions(sections.get("IMPRESSION", "")),
        "indication": remove_redactions(sections.get("INDICATION", "")),
        "comparison": remove_redactions(sections.get("COMPARISON", "")),
        "mesh": majors,
        "images": images,
    }


def _numeric_key(name: str) -> tuple[int, str]:
    match = re.search(r"(\d+)", name.rsplit("/", 1)[-1])
    return (int(match.group(1)) if match else 1 << 62, name)


def parse_iu_tgz(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The IU report XMLs of a tgz as dicts (id, findings, impression, indication, comparison, mesh, images),
    in a stable order (by the file's number)."""
    path = Path(path) if path else IU_TGZ
    reports = []
    with tarfile.open(path, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")]
        for member in sorted(members, key=lambda m: _numeric_key(m.name)):
            handle = tar.extractfile(member)
            if handle is None:
                continue
            stem = member.name.rsplit("/", 1)[-1][:-4]
            reports.append(_xml_report(handle.read(), f"IU{stem}"))
    return reports


def _as_embedding(value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32).ravel()
    if arr.shape != (EMBEDDING_DIM,):
        raise ValueError(f"embedding has {arr.size} dimensions, expected {EMBEDDING_DIM}")
    norm = float(np.linalg.norm(arr))
    return arr / norm if norm > 1e-12 else arr


class ReportBank:
    def __init__(self, entries: Sequence[BankEntry], name: str = "bank"):
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            raise ValueError("bank entry ids must be unique")
        self.entries: list[BankEntry] = list(entries)
        self.name = name
        self._by_id = {e.id: i for i, e in enumerate(self.entries)}
        with_emb = [i for i, e in enumerate(self.entries) if e.embedding is not None]
        self._emb_index = np.asarray(with_emb, dtype=np.int64)
        self._matrix = (
            np.stack([self.entries[i].embedding for i in with_emb]).astype(np.float32)
            if with_emb
            else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        )
        codes = sorted({c for e in self.entries for c in e.labels})
        self.codes: tuple[str, ...] = tuple(codes)
        self._prevalence = {
            c: (sum(e.labels.get(c, 0) for e in self.entries) + 0.5) / (len(self.entries) + 1.0)
            for c in codes
        }
        # hash mode prefers entries with a findings section (530 IU reports have only an impression)
        self._hash_pool = [i for i, e in enumerate(self.entries) if e.findings] or list(
            range(len(self.entries))
        )

    # construction -----------------------------------------------------------------------------------------
    @classmethod
    def from_iu_tgz(
        cls, path: str | Path | None = None, mapping: Mapping[str, Iterable[str]] | None = None
    ) -> ReportBank:
        """All IU reports as entries without embeddings (``source='iu-xray'``)."""
        entries = [
            BankEntry(
                id=r["id"],
                findings=r["findings"],
                impression=r["impression"],
                labels=labels_from_mesh(r["mesh"], mapping),
                source="iu-xray",
                meta={"mesh": r["mesh"], "indication": r["indication"], "images": r["images"]},
            )
            for r in parse_iu_tgz(path)
        ]
        return cls(entries, name="iu-xray")

    @classmethod
    def from_entries(
        cls, entries: Iterable[BankEntry | Mapping[str, Any]], name: str = "reference"
    ) -> ReportBank:
        """A bank from a trial's reference cases.

        Each entry is a :class:`BankEntry` or a mapping with ``id``; ``embedding`` (array) or ``image`` (PIL image,
        embedded here) or ``images`` (list, embeddings averaged) or neither (text-only entry); the report as
        ``report`` (text with ``Findings:``/``Impression:`` headings) or as ``findings`` and ``impression``; and
        ``labels`` (finding code -> 0/1 or bool). Extra keys go to ``meta``.
        """
        built = []
        for raw in entries:
            if isinstance(raw, BankEntry):
                entry = raw if raw.embedding is None else replace(raw, embedding=_as_embedding(raw.embedding))
                built.append(entry)
                continue
            data = dict(raw)
            if "id" not in data:
                raise ValueError("every bank entry needs an 'id'")
            embedding = data.pop("embedding", None)
            image = data.pop("image", None)
            images = data.pop("images", None)
            if embedding is None and image is not None:
                embedding = embed_image(image)
            elif embedding is None and images:
                embedding = np.mean([embed_image(im) for im in images], axis=0)
            if "report" in data:
                findings, impression = parse_report(str(data.pop("report")))
            else:
                findings, impression = str(data.pop("findings", "")), str(data.pop("impression", ""))
            labels = {str(k): int(bool(v)) for k, v in dict(data.pop("labels", {}) or {}).items()}
            built.append(
                BankEntry(
                    id=str(data.pop("id")),
                    findings=findings,
                    impression=impression,
                    labels=labels,
                    embedding=None if embedding is None else _as_embedding(embedding),
                    source=str(data.pop("source", name)),
                    meta=data,
                )
            )
        return cls(built, name=name)

    def with_images(self, images: Mapping[str, Image.Image | Sequence[Image.Image]]) -> ReportBank:
        """A copy in which the entries named in ``images`` (id -> image or list of views) carry that embedding.

        This is how a bank of reports without images (IU) becomes image-searchable: pair known images with
        reports (the demo pairs its fixture radiographs with bank reports)."""
        unknown = set(images) - set(self._by_id)
        if unknown:
            raise KeyError(f"not in the bank: {sorted(unknown)[:5]}")
        entries = []
        for e in self.entries:
            if e.id in images:
                value = images[e.id]
                views = [value] if isinstance(value, Image.Image) else list(value)
                emb = np.mean([embed_image(v) for v in views], axis=0)
                entries.append(replace(e, embedding=_as_embedding(emb)))
            else:
                entries.append(e)
        return ReportBank(entries, name=self.name)

    def only_embedded(self) -> ReportBank:
        """A bank of the entries that have an embedding."""
        return ReportBank([e for e in self.entries if e.embedding is not None], name=self.name)

    def merged(self, other: ReportBank) -> ReportBank:
        return ReportBank(self.entries + other.entries, name=f"{self.name}+{other.name}")

    # persistence (precomputed embeddings) --------------------------------------------------------------------
    def save_npz(self, path: str | Path) -> None:
        """Ids, reports, labels and embeddings in one ``.npz`` (no pickles)."""
        emb = (
            np.stack(
                [
                    e.embedding if e.embedding is not None else np.full(EMBEDDING_DIM, np.nan, np.float32)
                    for e in self.entries
                ]
            )
            if self.entries
            else np.zeros((0, EMBEDDING_DIM), np.float32)
        )
        meta = [
            {
                "id": e.id,
                "findings": e.findings,
                "impression": e.impression,
                "labels": e.labels,
                "source": e.source,
            }
            for e in self.entries
        ]
        buf = io.BytesIO()
        np.savez_compressed(
            buf, embeddings=emb.astype(np.float32), meta=np.frombuffer(json.dumps(meta).encode(), np.uint8)
        )
        Path(path).write_bytes(buf.getvalue())

    @classmethod
    def load_npz(cls, path: str | Path, name: str | None = None) -> ReportBank:
        with np.load(path, allow_pickle=False) as data:
            emb = data["embeddings"]
            meta = json.loads(data["meta"].tobytes().decode())
        entries = [
            BankEntry(
                id=m["id"],
                findings=m["findings"],
                impression=m["impression"],
                labels=m["labels"],
                embedding=None if np.isnan(emb[i]).any() else emb[i].copy(),
                source=m.get("source", ""),
            )
            for i, m in enumerate(meta)
        ]
        return cls(entries, name=name or Path(path).stem)

    # queries --------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, entry_id: str) -> BankEntry:
        return self.entries[self._by_id[entry_id]]

    @property
    def has_embeddings(self) -> bool:
        return len(self._emb_index) > 0

    def prevalence(self, code: str) -> float:
        return self._prevalence.get(code, 0.0)

    def _probabilities(
        self, picks: Sequence[tuple[BankEntry, float]], codes: Sequence[str], prior_weight: float
    ) -> dict[str, float]:
        probs = {}
        for code in codes:
            known = [(e, w) for e, w in picks if code in e.labels]
            if code not in self._prevalence:
                continue
            num = sum(w * e.labels[code] for e, w in known) + prior_weight * self._prevalence[code]
            den = (sum(w for _, w in known) if known else 0.0) + prior_weight
            probs[code] = float(min(1.0, max(0.0, num / den))) if den > 0 else self._prevalence[code]
        return probs

    def query(
        self,
        embedding: np.ndarray,
        k: int = 10,
        codes: Sequence[str] | None = None,
        tau: float = DEFAULT_TAU,
        prior_weight: float = DEFAULT_PRIOR_WEIGHT,
        exclude: Iterable[str] = (),
    ) -> RetrievalResult:
        """The nearest entry and the ``k`` nearest neighbours of ``embedding``.

        Probabilities per finding code: the neighbours' labels averaged with weights
        ``exp(-(d_i - d_min) / tau)`` (``d`` = cosine distance, so the nearest weighs 1 and a neighbour 0.05 further
        away weighs 1/e), shrunk towards the bank's prevalence with ``prior_weight`` pseudo-neighbours; always in
        [0, 1]. Ties in distance are broken by bank order (stable). ``exclude`` drops entries by id (e.g. the query
        case itself in a leave-one-out evaluation).

        Hash mode (no embeddings in the bank): ``k`` entries drawn without replacement by a generator seeded with
        a hash of the quantised embedding, equal weights; the first is the report.
        """
        if not self.entries:
            raise ValueError("the report bank is empty")
        codes = tuple(codes) if codes is not None else self.codes
        query = _as_embedding(embedding)
        excluded = set(exclude)
        k = max(1, int(k))
        if self.has_embeddings:
            sims = self._matrix @ query
            order = np.argsort(-sims, kind="stable")
            chosen = [int(j) for j in order if self.entries[int(self._emb_index[j])].id not in excluded][:k]
            if chosen:
                dists = 1.0 - sims[chosen].astype(np.float64)
                weights = np.exp(-(dists - dists.min()) / max(tau, 1e-6))
                neighbours = [
                    Neighbour(self.entries[int(self._emb_index[j])], float(sims[j]), float(w))
                    for j, w in zip(chosen, weights, strict=True)
                ]
                probs = self._probabilities([(n.entry, n.weight) for n in neighbours], codes, prior_weight)
                return RetrievalResult(neighbours[0].entry, neighbours, probs, "nearest")
        pool = [i for i in self._hash_pool if self.entries[i].id not in excluded]
        if not pool:
            raise ValueError("no bank entry left after exclusions")
        seed = int.from_bytes(embedding_digest(query)[:8], "little")
        rng = np.random.default_rng(seed)
        picks = rng.permutation(len(pool))[: min(k, len(pool))]
        neighbours = [Neighbour(self.entries[pool[int(p)]], float("nan"), 1.0) for p in picks]
        probs = self._probabilities([(n.entry, n.weight) for n in neighbours], codes, prior_weight)
        return RetrievalResult(neighbours[0].entry, neighbours, probs, "hash")


@functools.lru_cache(maxsize=4)
def load_iu_bank(path: str | None = None) -> ReportBank:
    """The IU bank, parsed once per process (about a second)."""
    return ReportBank.from_iu_tgz(path)
