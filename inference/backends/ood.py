"""Out-of-distribution checks of a draft's input (issue 21 item 4): pure functions, numpy + Pillow only.

Three kinds of evidence, each reported as a *component* scaled so that 1.0 is its documented cut-off (a
component above the trial's threshold, default 1.0, is a reason):

1. **Image statistics** of each view (no weights): on the 8-bit grey display rendition, shrunk to at most 256
   pixels a side (box filter, so white noise stays white):

   - ``dynamic_range``: 99.5th minus 0.5th percentile of grey values. Below :data:`MIN_DYNAMIC_RANGE` the image
     is *blank* (all black), *all_white* or *constant* (by its mean). Component: cut-off / range.
   - ``entropy``: Shannon entropy of the 256-bin histogram, bits. Chest radiographs are about 6.5-7.5 bits;
     below :data:`MIN_ENTROPY` the picture carries almost no information (*low_information*).
   - ``autocorrelation``: mean lag-1 spatial autocorrelation (horizontal and vertical). Radiographs are smooth at
     this scale (above 0.9); white noise is near 0. Below :data:`MIN_AUTOCORRELATION` the image is *noise*.
     Component: (1 - r) / (1 - cut-off).
   - ``high_frequency``: variance of the 4-neighbour Laplacian (divided by 4) over the image's variance: 0.001 to
     0.01 on the repository's chest radiographs (fixtures/), 1.25 for white noise ((16 + 4) / 16); above
     :data:`MAX_HIGH_FREQUENCY` it is *noise* too. Component: value / cut-off.

   Measured on fixtures/ (the two NIH PNGs and five chest DICOM renditions): dynamic range 184-255, entropy
   6.8-7.9 bits, autocorrelation 0.975-0.994; white noise: autocorrelation about 0.0. Image components are capped
   at :data:`MAX_COMPONENT`.

2. **The import's flags** (imaging.Image.flags and the views): a body part other than the chest, a non-human
   subject, lateral views only, a paediatric patient (age from the stored header when the trial keeps it). These
   are categorical reasons, not scaled: any one of them applies the trial's action whatever the threshold.

3. **Mahalanobis distance** of the case's embedding (the retrieval baseline's weight-free ``tinyhog`` embedding,
   :mod:`inference.backends.embedding`) from the trial's reference distribution (its reference cases' embeddings).
   With fewer cases than dimensions the sample covariance is singular, so it is shrunk towards a scaled identity
   (Ledoit and Wolf, J Multivar Anal 2004) and inverted through the Woodbury identity in the n x n dual space.
   The distance is scaled by the reference's own *leave-one-out* distances: the component is distance / fence,
   where the fence is Q3 + 3 IQR of those (Tukey's "far out"). Leave-one-out, because in-sample distances of
   the reference are biased low against a new case of the same distribution.

The draft's ``score`` is the largest component; ``reasons`` are the components above the threshold plus the flags.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

#: Cut-offs of the image statistics (the module docstring says why each).
MIN_DYNAMIC_RANGE = 16.0
MIN_ENTROPY = 2.0
MIN_AUTOCORRELATION = 0.5
MAX_HIGH_FREQUENCY = 0.5
#: Image components are capped here: ten times past a cut-off, "how far" carries no more information.
MAX_COMPONENT = 10.0
#: Grey means that name a flat image blank (all black) or all white rather than constant.
BLACK_MEAN, WHITE_MEAN = 32.0, 223.0
#: Largest side of the image the statistics are computed on.
STATS_SIDE = 256
#: Fewest reference embeddings for a Mahalanobis distance (fewer: not computed, and said so).
MIN_REFERENCE = 8
#: Leave-one-out distances computed for the fence, at most (a deterministic, evenly spaced subset beyond that).
MAX_LOO = 100
#: Reference embeddings used for the fit, at most (an evenly spaced subset beyond that): the fit and its
#: leave-one-out fence cost O(n^2 d) each, so this bounds the once-per-process fit to seconds.
MAX_REFERENCE = 400
#: Below this age in years a patient is paediatric (adult-trained models; docs/design.md section 6).
PAEDIATRIC_AGE_YEARS = 18.0
#: View positions that are lateral (DICOM ViewPosition, and what the import writes in ``view:...`` flags).
LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"})
FRONTAL_VIEWS = frozenset({"PA", "AP"})
CHEST_BODY_PARTS = frozenset({"", "CHEST", "THORAX"})

#: The reasons' words, for the reader's warning and the CONSORT flow.
REASON_TEXT: dict[str, str] = {
    "blank": "the image is blank (all black)",
    "all_white": "the image is all white",
    "constant": "the image has no contrast",
    "low_information": "the image carries almost no information",
    "noise": "the image looks like noise, not a radiograph",
    "non_chest": "the image is not of the chest",
    "non_human": "the subject is not human",
    "lateral_only": "only lateral views",
    "paediatric": "a paediatric patient",
    "embedding_outlier": "unlike the trial's reference images",
    "check_failed": "the check could not run",
}


@dataclass(frozen=True)
class ImageStats:
    """Statistics of one image (grey 0-255), see the module docstring."""

    mean: float
    dynamic_range: float
    entropy: float
    autocorrelation: float
    high_frequency: float


def grey_array(image: Image.Image, side: int = STATS_SIDE) -> np.ndarray:
    """8-bit grey values as float64, shrunk (box filter) to at most ``side`` pixels a side; 16-bit and float images
    are scaled to their own range first (as the embedding does)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        image = Image.fromarray(arr.round().astype(np.uint8))
    grey = image.convert("L")
    scale = side / max(grey.size)
    if scale < 1:
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, resample=Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float64)


def _lag1_autocorrelation(arr: np.ndarray) -> float:
    centred = arr - arr.mean()
    var = float(np.mean(centred * centred))
    if var <= 1e-12 or min(arr.shape) < 2:
        return 1.0  # a flat image is perfectly "smooth"; the dynamic-range check names it
    horizontal = float(np.mean(centred[:, 1:] * centred[:, :-1]))
    vertical = float(np.mean(centred[1:, :] * centred[:-1, :]))
    return (horizontal + vertical) / 2.0 / var


def _high_frequency(arr: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian (divided by 4) over the image's variance: ~0 smooth, ~1.25 noise."""
    var = float(arr.var())
    if var <= 1e-12 or min(arr.shape) < 3:
        return 0.0
    lap = (4 * arr[1:-1, 1:-1] - arr[:-2, 1:-1] - arr[2:, 1:-1] - arr[1:-1, :-2] - arr[1:-1, 2:]) / 4.0
    return float(lap.var()) / var


def image_statistics(image: Image.Image) -> ImageStats:
    """The statistics of one view (see the module docstring)."""
    arr = grey_array(image)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    hist = np.bincount(np.clip(arr.round(), 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    return ImageStats(
        mean=float(arr.mean()), dynamic_range=float(hi - lo), entropy=float(-(p * np.log2(p)).sum()) + 0.0,
        autocorrelation=_lag1_autocorrelation(arr), high_frequency=_high_frequency(arr),
    )


def image_components(stats: ImageStats) -> dict[str, tuple[str, float]]:
    """``{check: (reason, component)}`` for one view's statistics; component 1.0 is the cut-off."""
    flat = "blank" if stats.mean < BLACK_MEAN else "all_white" if stats.mean > WHITE_MEAN else "constant"
    noise = max((1.0 - stats.autocorrelation) / (1.0 - MIN_AUTOCORRELATION), stats.high_frequency / MAX_HIGH_FREQUENCY)
    entropy = MIN_ENTROPY / max(stats.entropy, 1e-3)
    if stats.dynamic_range < MIN_DYNAMIC_RANGE:
        noise = entropy = 0.0  # a flat image's autocorrelation and entropy say nothing more: it is named flat
    return {
        "dynamic_range": (flat, min(MIN_DYNAMIC_RANGE / max(stats.dynamic_range, 1e-3), MAX_COMPONENT)),
        "entropy": ("low_information", min(entropy, MAX_COMPONENT)),
        "noise": ("noise", min(noise, MAX_COMPONENT)),
    }


# -- the import's flags --------------------------------------------------------------------------------------
_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def age_years(value: str | None) -> float | None:
    """A DICOM Age String (``nnnD``, ``nnnW``, ``nnnM``, ``nnnY``) in years; None when absent or malformed."""
    match = _AGE.match(str(value or ""))
    if not match:
        return None
    return int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2).upper()]


@dataclass(frozen=True)
class ViewFacts:
    """What the import recorded about one image: its flags, view position and (when kept) the patient's age."""

    flags: Sequence[str] = ()
    view_position: str = ""
    age: str = ""


def flag_reasons(views: Sequence[ViewFacts]) -> list[str]:
    """Categorical reasons from the import (see the module docstring), in a fixed order."""
    reasons: list[str] = []
    flags = [str(f) for v in views for f in v.flags]
    body_parts = {f.split(":", 1)[1].strip().upper() for f in flags if f.startswith("body_part:")}
    if body_parts - CHEST_BODY_PARTS:
        reasons.append("non_chest")
    if "non_human" in flags:
        reasons.append("non_human")
    positions = [(v.view_position or "").strip().upper() for v in views]
    positions += [f.split(":", 1)[1].strip().upper() for f in flags if f.startswith("view:")]
    if positions and not (set(positions) & FRONTAL_VIEWS) and set(positions) & LATERAL_VIEWS:
        reasons.append("lateral_only")
    ages = [a for a in (age_years(v.age) for v in views) if a is not None]
    if ages and min(ages) < PAEDIATRIC_AGE_YEARS:
        reasons.append("paediatric")
    return reasons


# -- Mahalanobis distance from a reference distribution -----------------------------------------------------
@dataclass
class ReferenceDistribution:
    """Mean and Ledoit-Wolf-shrunk covariance of reference embeddings, kept in dual (n x n) form.

    ``sigma = (1 - shrinkage) S + shrinkage * nu * I`` with ``S = Xc' Xc / n`` and ``nu = trace(S) / d``; its
    inverse applied to ``v`` is ``(v - Xc' (c I + Xc Xc')^-1 Xc v) / (shrinkage nu)``, ``c = n shrinkage nu /
    (1 - shrinkage)`` (Woodbury), so nothing d x d is ever formed."""

    mean: np.ndarray
    centred: np.ndarray  # n x d
    shrinkage: float
    nu: float
    gram_inverse: np.ndarray  # (c I + Xc Xc')^-1, n x n
    fence: float
    loo_distances: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        return int(self.centred.shape[0])

    def distance(self, embedding: np.ndarray) -> float:
        v = np.asarray(embedding, dtype=np.float64).ravel() - self.mean
        xv = self.centred @ v
        quad = float(v @ v) - (float(xv @ self.gram_inverse @ xv) if self.shrinkage < 1.0 else 0.0)
        return math.sqrt(max(quad, 0.0) / (self.shrinkage * self.nu))

    def component(self, embedding: np.ndarray) -> float:
        return self.distance(embedding) / self.fence

    def summary(self) -> dict[str, Any]:
        return {"n": self.n, "shrinkage": round(self.shrinkage, 6), "fence": round(self.fence, 6)}


def shrinkage_from_gram(gram: np.ndarray, d: int) -> tuple[float, float]:
    """(shrinkage in [0, 1], nu): the Ledoit-Wolf (2004) optimal weight of ``nu I``, from the centred data's n x n
    Gram matrix ``Xc Xc'`` and the dimension ``d`` (||S||_F^2 = sum of the Gram's squares / n^2, so nothing d x d is
    needed)."""
    n = gram.shape[0]
    trace = float(np.trace(gram))
    nu = trace / n / d
    s_frob2 = float(np.sum(gram * gram)) / n**2  # ||S||_F^2
    delta2 = s_frob2 - 2 * nu * trace / n + d * nu**2  # ||S - nu I||_F^2
    beta2 = float(np.sum(np.diag(gram) ** 2) / n - s_frob2) / n  # mean ||x x' - S||_F^2 / n
    if delta2 <= 1e-18:
        return 1.0, max(nu, 1e-12)
    return float(min(max(beta2, 0.0), delta2) / delta2), max(nu, 1e-12)


def ledoit_wolf_shrinkage(centred: np.ndarray) -> tuple[float, float]:
    """:func:`shrinkage_from_gram` of centred data (n x d)."""
    return shrinkage_from_gram(centred @ centred.T, centred.shape[1])


def _dual_quad(vv: float, xv: np.ndarray, gram: np.ndarray, shrinkage: float, nu: float) -> float:
    """Mahalanobis distance from ``vv = v'v``, ``xv = Xc v`` and the Gram ``Xc Xc'`` (Woodbury, module docstring)."""
    shrinkage = max(shrinkage, 1e-6)  # keep the covariance invertible even when the data say "no shrinkage"
    quad = vv
    if shrinkage < 1.0:
        c = gram.shape[0] * shrinkage * nu / (1.0 - shrinkage)
        quad -= float(xv @ np.linalg.solve(c * np.eye(gram.shape[0]) + gram, xv))
    return math.sqrt(max(quad, 0.0) / (shrinkage * nu))


def _loo_distances(x: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Each picked row's distance from the distribution of the other rows, all from the raw Gram matrix ``X X'``
    (centring by the other rows' mean done on inner products): O(n^3) per row instead of a refit's O(n^2 d)."""
    n, d = x.shape
    k = x @ x.T
    out = []
    for i in picks:
        rest = np.delete(np.arange(n), i)
        krr = k[np.ix_(rest, rest)]
        row_mean = krr.mean(axis=1)
        total = float(row_mean.mean())
        gram = krr - row_mean[:, None] - row_mean[None, :] + total
        shrinkage, nu = shrinkage_from_gram(gram, d)
        k_ir = k[i, rest]
        xv = k_ir - row_mean - float(k_ir.mean()) + total  # (x_j - m)'(x_i - m) for j in rest
        vv = float(k[i, i]) - 2 * float(k_ir.mean()) + total  # |x_i - m|^2
        out.append(_dual_quad(vv, xv, gram, shrinkage, nu))
    return np.asarray(out)


def fit_reference(embeddings: np.ndarray | Sequence[np.ndarray], fence: float | None = None
                  ) -> ReferenceDistribution | None:
    """The reference distribution of at least :data:`MIN_REFERENCE` embeddings (None with fewer). ``fence``: use
    this one instead of computing the leave-one-out fence (a case compared with the reference without itself)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < MIN_REFERENCE:
        return None
    if x.shape[0] > MAX_REFERENCE:
        x = x[np.unique(np.linspace(0, x.shape[0] - 1, MAX_REFERENCE).round().astype(int))]
    n = x.shape[0]
    mean = x.mean(axis=0)
    centred = x - mean
    gram = centred @ centred.T
    shrinkage, nu = shrinkage_from_gram(gram, x.shape[1])
    shrinkage = max(shrinkage, 1e-6)
    gram_inv = np.zeros((n, n)) if shrinkage >= 1.0 else np.linalg.inv(
        n * shrinkage * nu / (1.0 - shrinkage) * np.eye(n) + gram)
    loo = np.zeros(0)
    if fence is None:
        loo = _loo_distances(x, np.unique(np.linspace(0, n - 1, min(n, MAX_LOO)).round().astype(int)))
        q1, q3 = np.percentile(loo, [25, 75])
        fence = float(q3 + 3.0 * (q3 - q1))
    return ReferenceDistribution(mean, centred, shrinkage, nu, gram_inv, max(fence, 1e-9), loo)


# -- the assessment ------------------------------------------------------------------------------------------
@dataclass
class OodAssessment:
    """A draft's out-of-distribution result: ``score`` (largest component; 1.0 = a cut-off), ``reasons`` (codes of
    :data:`REASON_TEXT`), ``components`` and the per-view statistics, for the record."""

    score: float
    reasons: list[str]
    components: dict[str, float]
    views: list[dict[str, float]]
    mahalanobis: dict[str, Any]

    @property
    def out_of_distribution(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assess(
    images: Sequence[Image.Image],
    facts: Sequence[ViewFacts] = (),
    *,
    reference: ReferenceDistribution | None = None,
    embedding: np.ndarray | None = None,
    threshold: float = 1.0,
) -> OodAssessment:
    """Assess a case's views. A case is judged by its worst view for the image checks (the model sees them all);
    ``embedding`` (the case's, e.g. its first view's) is compared with ``reference`` when both are given."""
    components: dict[str, float] = {}
    reasons: list[str] = []
    per_view = []
    for im in images:
        stats = image_statistics(im)
        per_view.append({k: round(v, 6) for k, v in asdict(stats).items()})
        for check, (reason, value) in image_components(stats).items():
            if value > components.get(check, -1.0):
                components[check] = value
                if value > threshold and reason not in reasons:
                    reasons.append(reason)
    maha: dict[str, Any] = {"computed": False}
    if reference is not None and embedding is not None:
        distance = reference.distance(embedding)
        components["mahalanobis"] = distance / reference.fence
        maha = {"computed": True, "distance": round(distance, 6), **reference.summary()}
        if components["mahalanobis"] > threshold:
            reasons.append("embedding_outlier")
    elif embedding is not None:
        maha["why_not"] = f"fewer than {MIN_REFERENCE} reference cases with images"
    reasons += [r for r in flag_reasons(list(facts)) if r not in reasons]
    score = max(components.values(), default=0.0)
    return OodAssessment(round(score, 6), reasons, {k: round(v, 6) for k, v in components.items()}, per_view, maha)


def describe(reasons: Iterable[str]) -> str:
    """The reasons in words, for the reader's warning."""
    return "; ".join(REASON_TEXT.get(r, r) for r in reasons)


def reasons_count(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How often each reason occurs among rows that carry a ``reasons`` list (the CONSORT flow)."""
    out: dict[str, int] = {}
    for row in rows:
        for r in row.get("reasons") or ():
            out[r] = out.get(r, 0) + 1
    return out
