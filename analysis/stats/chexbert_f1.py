"""CheXbert-F1 of generated reports against reference reports, from CheXbert's labels (no model here: the labels come
from ``inference.backends.chexbert``, run by the export when local weights are given; docs/ai-evaluation.md).

The definitions are those of the ``f1chexbert`` package (PyPI ``f1chexbert`` 0.0.2, ``f1chexbert/f1chexbert.py``,
``F1CheXbert.get_label`` with ``mode="rrg"`` and ``F1CheXbert.forward``), copied exactly:

- each report gets CheXbert's 14 labels (``CONDITIONS``; per head: blank, positive, negative, uncertain); for the
  F1 a label is 1 when positive *or uncertain* and 0 when negative or blank (:func:`rrg_binary`);
- the scores are scikit-learn's ``classification_report`` of the reference labels (``y_true``) against the
  generated report's labels (``y_pred``) as multilabel indicators, over all 14 conditions and over the 5 of
  CheXpert's competition (``CONDITIONS_5``): per condition precision TP/(TP+FP), recall TP/(TP+FN) and
  F1 2TP/(2TP+FP+FN), each 0 when its denominator is 0 (scikit-learn's ``zero_division="warn"`` default); micro
  average from the pooled counts; macro average the unweighted mean over the conditions (those without support
  included); weighted average weighted by support. Published work quotes "CheXbert micro-F1 (14 / 5)" and
  "macro-F1 (14 / 5)";
- ``accuracy_5``: the share of reports whose 5 labels all equal the reference's (``accuracy_score`` on the 5).

The paired comparison of two systems on the same units (cases or reads) is approximate randomisation of a corpus
statistic (Noreen 1989; Yeh 2000 for F1): each unit's pair of label counts is swapped with probability 1/2 and the
F1 difference recomputed from the pooled counts; p as in ``text_metrics.paired_randomisation``.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ._result import jsonable
from .text_metrics import PairedComparison

#: CheXbert's 14 heads in the checkpoint's order (f1chexbert ``target_names``; the same order as
#: ``inference.backends.chexbert.CONDITIONS``, which a test checks: the pure package imports no app).
CONDITIONS = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices", "No Finding")
#: f1chexbert ``target_names_5``, taken in the order of ``CONDITIONS`` (as its ``np.isin`` index does).
CONDITIONS_5 = ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion")
INDEX_5 = tuple(i for i, c in enumerate(CONDITIONS) if c in CONDITIONS_5)
STATISTICS = ("micro", "macro", "weighted")


def slug(condition: str) -> str:
    """Column-name form of a condition: ``Pleural Effusion`` -> ``pleural_effusion``."""
    return condition.lower().replace(" ", "_")


def rrg_binary(label: Any) -> int:
    """f1chexbert ``mode="rrg"``: positive (1) and uncertain (-1) count as 1; negative (0) and blank as 0."""
    if label is None or label == "":
        return 0
    try:
        v = float(label)
    except (TypeError, ValueError):
        return 0
    return int(v == 1 or v == -1)


def binary_matrix(labels: Sequence[Sequence[Any]]) -> np.ndarray:
    """Reports x 14 CheXbert labels (1, 0, -1, blank) -> 0/1 matrix by :func:`rrg_binary`."""
    m = np.array([[rrg_binary(v) for v in row] for row in labels], dtype=int).reshape(-1, len(CONDITIONS))
    return m


def unit_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per report and condition the counts (TP, FP, FN): shape (reports, conditions, 3)."""
    t, p = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    return np.stack([t & p, (1 - t) & p, t & (1 - p)], axis=-1)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def f1_statistics(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Micro, macro and weighted F1 from pooled counts of shape (..., conditions, 3), vectorised over leading
    axes (the randomisation's shuffles)."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    support = tp + fn
    total = support.sum(axis=-1)
    return {
        "micro": _div(2 * tp.sum(axis=-1), (2 * tp + fp + fn).sum(axis=-1)),
        "macro": f1.mean(axis=-1),
        "weighted": _div((f1 * support).sum(axis=-1), total),
    }


@dataclass(frozen=True)
class ConditionScore:
    condition: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class F1Report:
    """scikit-learn's ``classification_report`` (output_dict) over one set of conditions."""

    conditions: list[ConditionScore]
    micro_precision: float
    micro_recall: float
    micro_f1: float
    macro_f1: float
    weighted_f1: float


def _report(counts: np.ndarray, names: Sequence[str]) -> F1Report:
    pooled = counts.sum(axis=0)  # conditions x 3
    tp, fp, fn = pooled[:, 0], pooled[:, 1], pooled[:, 2]
    prec, rec, f1 = _div(tp, tp + fp), _div(tp, tp + fn), _div(2 * tp, 2 * tp + fp + fn)
    stats = f1_statistics(pooled)
    return F1Report(
        conditions=[ConditionScore(n, float(p), float(r), float(f), int(s))
                    for n, p, r, f, s in zip(names, prec, rec, f1, tp + fn, strict=True)],
        micro_precision=float(_div(tp.sum(), (tp + fp).sum())), micro_recall=float(_div(tp.sum(), (tp + fn).sum())),
        micro_f1=float(stats["micro"]), macro_f1=float(stats["macro"]), weighted_f1=float(stats["weighted"]))


@dataclass
class ChexbertF1Result:
    """CheXbert-F1 of ``n`` generated reports against their references: all 14 conditions and the 5."""

    n: int
    all14: F1Report
    top5: F1Report
    accuracy_5: float

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def chexbert_f1(references: Sequence[Sequence[Any]], hypotheses: Sequence[Sequence[Any]]) -> ChexbertF1Result:
    """CheXbert-F1 (f1chexbert's definitions) of aligned reference and generated reports' CheXbert labels (one row
    of 14 labels per report: 1 positive, 0 negative, -1 uncertain, blank)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference label rows but {len(hypotheses)} generated ones")
    if not len(references):
        raise ValueError("no reports to score")
    t, p = binary_matrix(references), binary_matrix(hypotheses)
    counts = unit_counts(t, p)
    idx = list(INDEX_5)
    return ChexbertF1Result(
        n=len(t), all14=_report(counts, CONDITIONS), top5=_report(counts[:, idx], [CONDITIONS[i] for i in idx]),
        accuracy_5=float((t[:, idx] == p[:, idx]).all(axis=1).mean()))


def paired_f1_randomisation(counts_a: np.ndarray, counts_b: np.ndarray, statistic: str = "micro",
                            five: bool = False, label_a: str = "A", label_b: str = "B", n_shuffles: int = 10000,
                            seed: int = 0) -> PairedComparison:
    """Approximate randomisation of F1(A) - F1(B) over paired units; ``counts_*``: (units, 14, 3) counts of
    :func:`unit_counts` (a unit's reads summed). All 2^n swap patterns when that is at most ``n_shuffles``."""
    a, b = np.asarray(counts_a, dtype=float), np.asarray(counts_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired counts differ in shape: {a.shape} vs {b.shape}")
    if five:
        a, b = a[:, list(INDEX_5)], b[:, list(INDEX_5)]
    metric = f"chexbert_{statistic}_f1_{5 if five else 14}"
    n = len(a)
    if n == 0:
        return PairedComparison(metric, label_a, label_b, 0, None, None, None, None, 0, False)
    tot_a, tot_b = a.sum(axis=0), b.sum(axis=0)
    fa, fb = float(f1_statistics(tot_a)[statistic]), float(f1_statistics(tot_b)[statistic])
    obs = abs(fa - fb)
    tol = 1e-12 * max(1.0, obs)
    d = (b - a).reshape(n, -1)  # what a swap moves from B's pool to A's

    def _diffs(swaps: np.ndarray) -> np.ndarray:
        moved = (swaps @ d).reshape(len(swaps), *tot_a.shape)
        return np.abs(f1_statistics(tot_a + moved)[statistic] - f1_statistics(tot_b - moved)[statistic])

    if n <= 20 and 2 ** n <= n_shuffles:
        swaps = np.array(list(itertools.product((0.0, 1.0), repeat=n)))
        p, shuffles, exact = float((_diffs(swaps) >= obs - tol).mean()), len(swaps), True
    else:
        rng = np.random.default_rng(seed)
        hits = 0
        for start in range(0, n_shuffles, 1000):
            m = min(1000, n_shuffles - start)
            hits += int((_diffs(rng.integers(0, 2, size=(m, n)).astype(float)) >= obs - tol).sum())
        p, shuffles, exact = (hits + 1) / (n_shuffles + 1), n_shuffles, False
    return PairedComparison(metric, label_a, label_b, n, fa, fb, fa - fb, p, shuffles, exact)


@dataclass
class ChexbertSummary:
    """CheXbert-F1 per arm (final reports) and of the drafts, and paired comparisons (issue 20 item 4).
    ``computed`` False with ``reason`` when the export carried no CheXbert labels (no local weights)."""

    computed: bool
    reason: str = ""
    weights: dict[str, Any] = field(default_factory=dict)
    final_by_arm: dict[str, ChexbertF1Result] = field(default_factory=dict)
    drafts: ChexbertF1Result | None = None
    comparisons: list[PairedComparison] = field(default_factory=list)
