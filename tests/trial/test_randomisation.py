from collections import Counter
from dataclasses import replace

import pytest

from trial.randomisation import LEGACY_SCHEME, generate_stratum, list_commitment, sealed_seed, validate_blocks

SALT = "ab" * 32


def test_same_seed_reproduces_the_same_list():
    a = generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 200)
    b = generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 200)
    assert a == b
    assert list_commitment(SALT, "s1", {"c1": a}) == list_commitment(SALT, "s1", {"c1": b})


def test_commitment_depends_on_salt_seed_and_every_slot():
    a = generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 50)
    base = list_commitment(SALT, "s1", {"c1": a})
    assert list_commitment("cd" * 32, "s1", {"c1": a}) != base
    assert list_commitment(SALT, "s2", {"c1": a}) != base
    flipped = [*a[:-1], replace(a[-1], arm="y" if a[-1].arm == "x" else "x")]
    assert list_commitment(SALT, "s1", {"c1": flipped}) != base
    with pytest.raises(ValueError, match="salt"):
        list_commitment("", "s1", {"c1": a})


def test_a_protocol_seed_is_joined_to_a_secret_random_part():
    one, two = sealed_seed("20250801"), sealed_seed("20250801")
    assert one.startswith("20250801+") and two.startswith("20250801+") and one != two
    assert len(one.split("+", 1)[1]) == 64  # 256 bits
    assert len(sealed_seed(None)) == 64
    with pytest.raises(ValueError):
        sealed_seed("x" * 101)


def test_legacy_lists_still_regenerate():
    """Lists sealed before issue 14 keep their generator, so verify_allocation can check them."""
    a = generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 40, scheme=LEGACY_SCHEME)
    assert a == generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 40, scheme=LEGACY_SCHEME)
    assert [s.arm for s in a] != [s.arm for s in generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 40)]
    assert len(list_commitment("", "s1", {"c1": a}, scheme=LEGACY_SCHEME)) == 64


def test_other_seed_or_stratum_gives_another_list():
    base = [s.arm for s in generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 200)]
    assert base != [s.arm for s in generate_stratum("s2", "c1", {"x": 1, "y": 1}, [2, 4], 200)]
    assert base != [s.arm for s in generate_stratum("s1", "c2", {"x": 1, "y": 1}, [2, 4], 200)]


def test_blocks_are_balanced_and_sizes_vary():
    slots = generate_stratum("seed", "c1", {"x": 1, "y": 1}, [2, 4], 1000)
    sizes = Counter(s.block_size for s in slots)
    assert set(sizes) == {2, 4}
    by_block: dict[int, list[str]] = {}
    for s in slots:
        by_block.setdefault(s.block_index, []).append(s.arm)
    for arms in by_block.values():
        assert arms.count("x") == arms.count("y")
    diff, worst = 0, 0
    for s in slots:
        diff += 1 if s.arm == "x" else -1
        worst = max(worst, abs(diff))
    assert worst <= 2  # half the largest block


def test_unequal_ratio_respected_per_block():
    slots = generate_stratum("seed", "c1", {"x": 2, "y": 1}, [3, 6], 300)
    c = Counter(s.arm for s in slots)
    assert c["x"] == 2 * c["y"]


@pytest.mark.parametrize("ratio,blocks", [({"x": 1}, [2, 4]), ({"x": 1, "y": 1}, [3, 4]), ({"x": 1, "y": 1}, []),
                                          ({"x": 0, "y": 1}, [2, 4]), ({"x": 1, "y": 1}, [2]),
                                          ({"x": 1, "y": 1}, [4, 4]), ({"x": 2, "y": 1}, [3, 4])])
def test_invalid_block_settings_refused(ratio, blocks):
    with pytest.raises(ValueError):
        validate_blocks(ratio, blocks)
