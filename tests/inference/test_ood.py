"""The pure out-of-distribution checks (inference/backends/ood.py): image statistics on real chest radiographs
(fixtures/cxr-png, NIH ChestX-ray14) and on blank, white, constant and noise pictures; the import's flags; the
Ledoit-Wolf-shrunk Mahalanobis distance against the same quantities computed directly in feature space."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from inference.backends import ood
from inference.backends.embedding import embed_image

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CHESTS = sorted((FIXTURES / "cxr-png").glob("*.png"))


def _chest(i: int) -> Image.Image:
    with Image.open(CHESTS[i]) as im:
        return im.convert("L")


def _noise(seed: int = 0, size: int = 512) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size)).astype(np.uint8))


@pytest.mark.parametrize("i", range(len(CHESTS)))
def test_a_real_chest_radiograph_passes_every_image_check(i):
    stats = ood.image_statistics(_chest(i))
    assert stats.dynamic_range > 200 and stats.entropy > 7 and stats.autocorrelation > 0.95
    result = ood.assess([_chest(i)])
    assert result.reasons == [] and result.score < 0.3, result  # entropy 2 bits of about 7.5


@pytest.mark.parametrize(("image", "reason"), [
    (Image.new("L", (512, 512), 0), "blank"),
    (Image.new("L", (512, 512), 255), "all_white"),
    (Image.new("L", (512, 512), 128), "constant"),
    (Image.new("RGB", (300, 400), (3, 3, 3)), "blank"),
    (_noise(), "noise"),
    (Image.fromarray(np.clip(np.random.default_rng(1).normal(128, 40, (400, 400)), 0, 255).astype(np.uint8)), "noise"),
])
def test_blank_white_constant_and_noise_pictures_are_out_of_distribution(image, reason):
    result = ood.assess([image])
    assert reason in result.reasons
    assert result.score > 1.0 and result.out_of_distribution


def test_statistics_match_their_definitions_on_a_small_array():
    # A 4 x 4 two-level image: half 0, half 100 (left and right): histogram entropy exactly 1 bit; lag-1
    # autocorrelation: horizontally 3 pairs per row, 1 of which crosses (products -2500 vs +2500), vertically all
    # pairs agree: ((2*2500 - 2500)/3 per row -> mean (2500*2 - 2500)/3 = 833.3) and 2500; variance 2500.
    arr = np.zeros((4, 4), dtype=np.uint8)
    arr[:, 2:] = 100
    stats = ood.image_statistics(Image.fromarray(arr))
    assert stats.entropy == pytest.approx(1.0)
    assert stats.dynamic_range == pytest.approx(100.0 * (0.995 - 0.005) / 1.0, abs=50)  # percentiles interpolate
    assert stats.autocorrelation == pytest.approx(((2500 - 2500 + 2500) / 3 / 2500 + 1.0) / 2)
    # White noise: the 4-neighbour Laplacian / 4 has variance (16 + 4) / 16 = 1.25 of the pixels'.
    assert ood.image_statistics(_noise(3)).high_frequency == pytest.approx(1.25, abs=0.03)


def test_several_views_are_judged_by_the_worst():
    result = ood.assess([_chest(0), Image.new("L", (256, 256), 0)])
    assert result.reasons == ["blank"] and len(result.views) == 2


def test_a_higher_threshold_is_more_lenient():
    dim = Image.fromarray(np.tile(np.linspace(100, 110, 256), (256, 1)).astype(np.uint8))  # range 10 < 16
    assert "constant" in ood.assess([dim]).reasons
    assert ood.assess([dim], threshold=2.0).reasons == []


@pytest.mark.parametrize(("facts", "reasons"), [
    ([ood.ViewFacts(view_position="PA")], []),
    ([ood.ViewFacts(flags=("body_part:EXTREMITY",), view_position="PA")], ["non_chest"]),
    ([ood.ViewFacts(flags=("body_part:CHEST",), view_position="PA")], []),
    ([ood.ViewFacts(flags=("non_human",), view_position="AP")], ["non_human"]),
    ([ood.ViewFacts(view_position="LL")], ["lateral_only"]),
    ([ood.ViewFacts(flags=("view:LATERAL",))], ["lateral_only"]),
    ([ood.ViewFacts(view_position="LL"), ood.ViewFacts(view_position="PA")], []),
    ([ood.ViewFacts(view_position="")], []),
    ([ood.ViewFacts(view_position="PA", age="012Y")], ["paediatric"]),
    ([ood.ViewFacts(view_position="PA", age="018Y")], []),
    ([ood.ViewFacts(view_position="PA", age="006M")], ["paediatric"]),
    ([ood.ViewFacts(view_position="PA", age="bad")], []),
])
def test_the_imports_flags(facts, reasons):
    assert ood.flag_reasons(facts) == reasons


def test_flags_apply_whatever_the_threshold():
    result = ood.assess([_chest(0)], [ood.ViewFacts(flags=("body_part:SKULL",), view_position="PA")], threshold=50.0)
    assert result.reasons == ["non_chest"]


@pytest.mark.parametrize(("value", "years"), [("045Y", 45.0), ("006M", 0.5), ("014D", 14 / 365.25),
                                             ("002W", 14 / 365.25), ("", None), ("45", None)])
def test_age_strings(value, years):
    assert ood.age_years(value) == (pytest.approx(years) if years is not None else None)


def _primal(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ledoit-Wolf (2004) in feature space, as written in the paper: S, mu = tr(S)/d, delta^2 = ||S - mu I||^2,
    beta^2 = (1/n^2) sum_k ||x_k x_k' - S||^2, shrinkage = min(beta^2, delta^2)/delta^2; then the Mahalanobis
    distance of y with the explicitly inverted shrunk covariance."""
    n, d = x.shape
    m = x.mean(axis=0)
    xc = x - m
    s = xc.T @ xc / n
    mu = np.trace(s) / d
    delta2 = np.sum((s - mu * np.eye(d)) ** 2)
    beta2 = sum(np.sum((np.outer(r, r) - s) ** 2) for r in xc) / n**2
    lam = min(beta2, delta2) / delta2
    sigma = (1 - lam) * s + lam * mu * np.eye(d)
    v = y - m
    return lam, float(np.sqrt(v @ np.linalg.solve(sigma, v)))


@pytest.mark.parametrize(("n", "d"), [(10, 4), (12, 30), (9, 200)])
def test_shrunk_mahalanobis_matches_the_feature_space_computation(n, d):
    rng = np.random.default_rng(n * d)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + rng.normal(size=d)
    y = rng.normal(size=d)
    ref = ood.fit_reference(x)
    lam, dist = _primal(x, y)
    assert ref.shrinkage == pytest.approx(lam, rel=1e-9)
    assert ref.distance(y) == pytest.approx(dist, rel=1e-7)
    # The fence comes from leave-one-out distances: the first one is the first row against the other rows.
    assert ref.loo_distances[0] == pytest.approx(_primal(x[1:], x[0])[1], rel=1e-7)
    q1, q3 = np.percentile(ref.loo_distances, [25, 75])
    assert ref.fence == pytest.approx(q3 + 3 * (q3 - q1))


def test_too_few_reference_cases_give_no_distance_and_say_so():
    x = np.random.default_rng(0).normal(size=(ood.MIN_REFERENCE - 1, 5))
    assert ood.fit_reference(x) is None
    result = ood.assess([_chest(0)], reference=None, embedding=embed_image(_chest(0)))
    assert result.mahalanobis["computed"] is False and "reference" in result.mahalanobis["why_not"]


def _variants(im: Image.Image, k: int, seed: int) -> list[Image.Image]:
    """Plausible acquisitions of one radiograph: crops, small rotations, gamma, mirrored every other one."""
    out = []
    w, h = im.size
    for i in range(k):
        r = np.random.default_rng(seed * 100 + i)
        c = r.uniform(0, 0.15, 4)
        v = im.crop((int(c[0] * w), int(c[1] * h), int(w - c[2] * w), int(h - c[3] * h)))
        v = v.rotate(r.uniform(-8, 8), resample=Image.Resampling.BILINEAR)
        g = r.uniform(0.7, 1.4)
        v = v.point(lambda x, g=g: 255 * (x / 255) ** g)
        out.append(ImageOps.mirror(v) if i % 2 else v)
    return out


def test_the_embedding_distance_ranks_a_new_chest_below_blank_noise_and_non_chest_images():
    # Reference: variants of one real chest radiograph and of a drawn chest picture; the other real radiograph is
    # the new case. With two sources the distribution is crude, so this checks the ranking, not the threshold.
    import io

    from tests.factories.imaging import png_bytes

    drawn = [Image.open(io.BytesIO(png_bytes(seed=s))).convert("L") for s in range(3)]
    ref_images = _variants(_chest(0), 8, 1) + [v for j, d in enumerate(drawn) for v in _variants(d, 4, 10 + j)]
    ref = ood.fit_reference(np.stack([embed_image(im) for im in ref_images]))
    new_chest = ref.component(embed_image(_chest(1)))
    for other in (Image.new("L", (512, 512), 0), _noise(5)):
        assert ref.component(embed_image(other)) > new_chest
    result = ood.assess([_noise(5)], reference=ref, embedding=embed_image(_noise(5)))
    assert result.mahalanobis["computed"] and result.components["mahalanobis"] > 0
    assert result.mahalanobis["n"] == len(ref_images)


def test_a_given_fence_skips_the_leave_one_out_fit():
    x = np.random.default_rng(2).normal(size=(12, 6))
    full = ood.fit_reference(x)
    rest = ood.fit_reference(x[1:], fence=full.fence)
    assert rest.fence == full.fence and rest.loo_distances.size == 0
    assert rest.distance(x[0]) == pytest.approx(full.loo_distances[0], rel=1e-9)  # row 0 against the others
