"""Stratified permuted blocks with randomly varying block sizes, from a recorded seed.

Pure functions (no database): `generate_stratum` gives one stratum's sequence of arms. The same seed and
stratum key always give the same sequence, so a sealed list can be regenerated and checked after lock.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    sequence: int
    block_index: int
    block_size: int
    arm: str


def validate_blocks(ratio: dict[str, int], block_sizes: list[int]) -> None:
    if len(ratio) < 2:
        raise ValueError("Randomisation needs at least two arms.")
    if any(w < 1 for w in ratio.values()):
        raise ValueError("Allocation ratio weights must be positive integers.")
    unit = sum(ratio.values())
    if not block_sizes:
        raise ValueError("Give at least one block size.")
    bad = [b for b in block_sizes if b <= 0 or b % unit]
    if bad:
        raise ValueError(f"Block sizes {bad} are not multiples of the ratio total {unit}.")


def default_block_sizes(ratio: dict[str, int]) -> list[int]:
    unit = sum(ratio.values())
    return [unit, 2 * unit]


def generate_stratum(seed: str, stratum: str, ratio: dict[str, int], block_sizes: list[int], n: int) -> list[Slot]:
    """Blocks are drawn until at least n slots exist; block size is chosen at random per block."""
    validate_blocks(ratio, block_sizes)
    rng = random.Random(f"{seed}|{stratum}")
    unit = sum(ratio.values())
    arms = sorted(ratio)
    slots: list[Slot] = []
    block_index = 0
    while len(slots) < n:
        size = rng.choice(block_sizes)
        block = [arm for arm in arms for _ in range(ratio[arm] * size // unit)]
        rng.shuffle(block)
        for arm in block:
            slots.append(Slot(len(slots), block_index, size, arm))
        block_index += 1
    return slots


def list_commitment(seed: str, strata: dict[str, list[Slot]]) -> str:
    """A hash that commits to the whole list (and its seed) without revealing it."""
    payload = {
        "seed": seed,
        "strata": {k: [(s.sequence, s.block_size, s.arm) for s in v] for k, v in sorted(strata.items())},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
