from collections import Counter

import pytest

from trial.randomisation import generate_stratum, list_commitment, validate_blocks


def test_same_seed_reproduces_the_same_list():
    a = generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 200)
    b = generate_stratum("s1", "c1", {"x": 1, "y": 1}, [2, 4], 200)
    assert a == b
    assert list_commitment("s1", {"c1": a}) == list_commitment("s1", {"c1": b})


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


@pytest.mark.parametrize("ratio,blocks", [({"x": 1}, [2]), ({"x": 1, "y": 1}, [3]), ({"x": 1, "y": 1}, []),
                                          ({"x": 0, "y": 1}, [2])])
def test_invalid_block_settings_refused(ratio, blocks):
    with pytest.raises(ValueError):
        validate_blocks(ratio, blocks)
