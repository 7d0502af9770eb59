"""What an attacker can infer about the next allocation of a permuted-block list from what they see (issue 14).

Pure functions. `certain_next` walks the revealed history of one stratum with every block layout consistent with
it (block sizes from a known set; per slot, a known size when the export gives it) and marks the positions whose
next allocation is certain: every consistent layout leaves only one arm possible next. The share of such
positions is the design's predictability for that attacker; with block sizes hidden it can only fall.
"""
from __future__ import annotations

from collections.abc import Sequence

BOUNDARY = ("B",)


def _quota(ratio: dict[str, int], size: int) -> dict[str, int]:
    unit = sum(ratio.values())
    return {arm: w * size // unit for arm, w in ratio.items()}


def _step(states: set, arm: str, ratio: dict[str, int], sizes: Sequence[int]) -> set:
    """States are BOUNDARY or (size, counts-tuple in sorted arm order)."""
    arms = sorted(ratio)
    out = set()
    for st in states:
        options = [(s, (0,) * len(arms)) for s in sizes] if st == BOUNDARY else [st]
        for size, counts in options:
            if size not in sizes:
                continue
            q = _quota(ratio, size)
            i = arms.index(arm)
            if counts[i] >= q[arm]:
                continue
            new = tuple(c + (j == i) for j, c in enumerate(counts))
            out.add(BOUNDARY if sum(new) == size else (size, new))
    return out


def _possible_next(states: set, ratio: dict[str, int], sizes: Sequence[int]) -> set[str]:
    arms = sorted(ratio)
    nxt: set[str] = set()
    for st in states:
        if st == BOUNDARY:
            nxt |= {a for s in sizes for a, n in _quota(ratio, s).items() if n > 0}
        else:
            size, counts = st
            q = _quota(ratio, size)
            nxt |= {a for j, a in enumerate(arms) if counts[j] < q[a]}
    return nxt


def certain_next(arms_seen: Sequence[str], ratio: dict[str, int], block_sizes: Sequence[int],
                 known_sizes: Sequence[int | None] | None = None) -> list[bool]:
    """For each position t, whether allocation t was certain given allocations 0..t-1. `known_sizes[t]`, when
    given, is the block size of slot t as the attacker sees it (the pre-issue-14 export had it for every revealed
    slot); the size of a slot not yet revealed is never known."""
    states: set = {BOUNDARY}
    out = []
    for t, arm in enumerate(arms_seen):
        out.append(len(_possible_next(states, ratio, block_sizes)) == 1)
        sizes_t = [known_sizes[t]] if known_sizes is not None and known_sizes[t] else list(block_sizes)
        states = _step(states, arm, ratio, sizes_t)
        if not states:
            raise ValueError(f"history inconsistent with block sizes {block_sizes} at position {t}")
    return out


def share_certain(arms_seen: Sequence[str], ratio: dict[str, int], block_sizes: Sequence[int],
                  known_sizes: Sequence[int | None] | None = None) -> float:
    flags = certain_next(arms_seen, ratio, block_sizes, known_sizes)
    return sum(flags) / len(flags) if flags else 0.0
