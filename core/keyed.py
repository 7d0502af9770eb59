"""The one keyed-HMAC helper: ids, orders and pseudonyms derived from a trial's secret.

The message is the parts joined by "|", the first part naming the purpose where there is one, so one secret gives
independent values per use and none can be computed without the secret (docs/design.md section 5).
"""
from __future__ import annotations

import hashlib
import hmac


def keyed_digest(secret: str, *parts: object) -> bytes:
    """HMAC-SHA256 of ``"|".join(parts)`` under the secret."""
    return hmac.new(secret.encode(), "|".join(str(p) for p in parts).encode(), hashlib.sha256).digest()


def keyed_hex(secret: str, *parts: object) -> str:
    return keyed_digest(secret, *parts).hex()


def keyed_int(secret: str, *parts: object, nbytes: int = 7) -> int:
    """A non-negative integer from the first `nbytes` of the digest (7 bytes: fits a signed 64-bit column)."""
    return int.from_bytes(keyed_digest(secret, *parts)[:nbytes], "big")
