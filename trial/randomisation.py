"""Stratified permuted blocks with randomly varying block sizes, from a sealed seed (docs/design.md section 5).

Pure functions (no database). `generate_stratum` gives one stratum's sequence of arms; the same seed and stratum key
always give the same sequence, so the list can be regenerated and checked after lock (`verify_allocation`).

Concealment: the randomness is HMAC-SHA256 keyed by the seed (a deterministic CSPRNG), so revealed allocations say
nothing about later ones beyond what the block design itself implies; the seed always carries a secret random part
(`sealed_seed`); the commitment is sha256 over a secret 256-bit salt, the seed and the list (`list_commitment`), so
it cannot be used to test guessed seeds. Seed, salt and block sizes are disclosed only after lock.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
from dataclasses import dataclass

SCHEME = "v2"  # HMAC-SHA256 stream, salted commitment
LEGACY_SCHEME = "legacy-v1"  # lists sealed before issue 14: random.Random, unsalted commitment
SECRET_PART_BYTES = 32  # 256 bits joined to every seed
MAX_PROTOCOL_SEED = 100


@dataclass(frozen=True)
class Slot:
    sequence: int
    block_index: int
    block_size: int
    arm: str


def validate_blocks(ratio: dict[str, int], block_sizes: list[int]) -> None:
    """At least two arms and at least two different block sizes, each a multiple of the ratio total: with one
    size the end of every block is known and its last allocations are certain."""
    if len(ratio) < 2:
        raise ValueError("Randomisation needs at least two arms.")
    if any(w < 1 for w in ratio.values()):
        raise ValueError("Allocation ratio weights must be positive integers.")
    unit = sum(ratio.values())
    bad = [b for b in block_sizes if b <= 0 or b % unit]
    if bad:
        raise ValueError(f"Block sizes {bad} are not multiples of the ratio total {unit}.")
    if len(set(block_sizes)) < 2:
        raise ValueError(
            f"Give at least two different block sizes, each a multiple of the ratio total {unit} (e.g. {unit}, "
            f"{2 * unit}): with a single size the end of every block is known and its last allocation is certain."
        )


def default_block_sizes(ratio: dict[str, int]) -> list[int]:
    unit = sum(ratio.values())
    return [unit, 2 * unit, 3 * unit]


def sealed_seed(protocol_seed: str | None = None) -> str:
    """The seed the list is generated from: a protocol-supplied seed (often a date: a few thousand guesses) is
    joined to a secret random part of 256 bits, so knowing the protocol never allows a brute force."""
    secret = secrets.token_hex(SECRET_PART_BYTES)
    if protocol_seed is None or protocol_seed == "":
        return secret
    if len(protocol_seed) > MAX_PROTOCOL_SEED or "+" in protocol_seed:
        raise ValueError(f"A protocol seed is at most {MAX_PROTOCOL_SEED} characters, without '+'.")
    return f"{protocol_seed}+{secret}"


def new_salt() -> str:
    return secrets.token_hex(32)


class _Stream:
    """Uniform integers from HMAC-SHA256(seed, stratum | counter): deterministic, and unpredictable without the
    seed however many outputs are seen (unlike the Mersenne Twister, whose state its outputs reveal)."""

    def __init__(self, seed: str, stratum: str) -> None:
        self._key = seed.encode()
        self._label = stratum.encode() + b"|"
        self._counter = 0
        self._buf = b""

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            msg = self._label + self._counter.to_bytes(8, "big")
            self._buf += hmac.new(self._key, msg, hashlib.sha256).digest()
            self._counter += 1
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def below(self, n: int) -> int:
        """Uniform in [0, n) by rejection sampling (no modulo bias)."""
        limit = (1 << 64) - (1 << 64) % n
        while True:
            x = int.from_bytes(self._take(8), "big")
            if x < limit:
                return x % n


def _block(arms: list[str], ratio: dict[str, int], size: int, unit: int) -> list[str]:
    return [arm for arm in arms for _ in range(ratio[arm] * size // unit)]


def generate_stratum(seed: str, stratum: str, ratio: dict[str, int], block_sizes: list[int], n: int,
                     scheme: str = SCHEME) -> list[Slot]:
    """Blocks are drawn until at least n slots exist; block size is chosen at random per block."""
    if scheme == LEGACY_SCHEME:
        return _generate_legacy(seed, stratum, ratio, block_sizes, n)
    validate_blocks(ratio, block_sizes)
    stream = _Stream(seed, stratum)
    unit = sum(ratio.values())
    arms = sorted(ratio)
    sizes = sorted(block_sizes)
    slots: list[Slot] = []
    block_index = 0
    while len(slots) < n:
        size = sizes[stream.below(len(sizes))]
        block = _block(arms, ratio, size, unit)
        for i in range(len(block) - 1, 0, -1):  # Fisher-Yates
            j = stream.below(i + 1)
            block[i], block[j] = block[j], block[i]
        for arm in block:
            slots.append(Slot(len(slots), block_index, size, arm))
        block_index += 1
    return slots


def _generate_legacy(seed: str, stratum: str, ratio: dict[str, int], block_sizes: list[int], n: int) -> list[Slot]:
    """The generator of lists sealed before issue 14, kept only so `verify_allocation` can check them."""
    rng = random.Random(f"{seed}|{stratum}")
    unit = sum(ratio.values())
    arms = sorted(ratio)
    slots: list[Slot] = []
    block_index = 0
    while len(slots) < n:
        size = rng.choice(block_sizes)
        block = _block(arms, ratio, size, unit)
        rng.shuffle(block)
        for arm in block:
            slots.append(Slot(len(slots), block_index, size, arm))
        block_index += 1
    return slots


def list_commitment(salt: str, seed: str, strata: dict[str, list[Slot]], scheme: str = SCHEME) -> str:
    """sha256 over (secret salt, seed, list): commits to the whole list without allowing a guessed seed or list
    to be checked against it before the salt is disclosed."""
    if scheme == LEGACY_SCHEME:
        payload = {"seed": seed,
                   "strata": {k: [(s.sequence, s.block_size, s.arm) for s in v] for k, v in sorted(strata.items())}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    if len(salt) != 64:
        raise ValueError("The commitment needs the 256-bit salt (64 hex digits).")
    payload = {
        "scheme": scheme,
        "seed": seed,
        "strata": {k: [[s.sequence, s.block_index, s.block_size, s.arm] for s in v] for k, v in sorted(strata.items())},
    }
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(bytes.fromhex(salt) + body).hexdigest()
