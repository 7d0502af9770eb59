"""Serving rules of draft tasks (issue 16, docs/janus.md): time limits from the measured speed, out-of-memory
halving, and the provenance every draft records whatever its backend.

Time limits. A draft's worker records its seconds per generated token (the batch's generate time over its longest
output, so a batch's per-step cost is included); the limit of the next task of that model version is
``load + SAFETY x max_new_tokens x seconds per token``, kept between a floor and a cap (settings
``INFERENCE_TIME_LIMIT_FLOOR_S`` / ``INFERENCE_TIME_LIMIT_CAP_S``). Until a model version has a measured draft its
limit is the cap: a fixed 600 s was too short for a CPU worker (about 750 s for 256 tokens of the real model).
The hard limit is the soft one plus ``HARD_MARGIN_S``; the stale sweep re-queues a draft RUNNING past its model
version's hard limit (``requeue_drafts --stale``, and the beat task ``inference.tasks.sweep_stale_drafts``).
"""
from __future__ import annotations

import importlib.metadata
import logging
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from django.conf import settings

from inference.backends.base import BackendConfig, code_version

from .model_config import backend_config
from .models import Draft, ModelVersion

log = logging.getLogger(__name__)

#: Measured time x SAFETY: a slow draft (long prompt, busy host) must not be killed at its median speed.
SAFETY = 3.0
#: Seconds between the soft limit (the task fails the draft cleanly) and the hard one (the process is killed).
HARD_MARGIN_S = 60.0
FLOOR_S = 120.0
#: Below the Redis visibility timeout (3600 s by default, settings.CELERY_BROKER_TRANSPORT_OPTIONS): a task still
#: running then would be delivered a second time.
CAP_S = 3000.0
#: How many recent ready drafts of a model version make its measured speed (their median).
SPEED_SAMPLES = 20


@dataclass(frozen=True)
class TimeLimit:
    soft_s: float
    hard_s: float
    max_new_tokens: int
    seconds_per_token: float | None  # None: not measured yet
    load_s: float
    basis: str  # how it was set, in words (recorded with the draft)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_limit_for(
    *, max_new_tokens: int, seconds_per_token: float | None, load_s: float = 0.0,
    floor_s: float = FLOOR_S, cap_s: float = CAP_S, samples: int = 0,
) -> TimeLimit:
    """The soft and hard limits of one draft task (pure: no database)."""
    if seconds_per_token is None or seconds_per_token <= 0:
        soft, basis = cap_s, "cap: speed not measured yet"
    else:
        wanted = load_s + SAFETY * max_new_tokens * seconds_per_token
        soft = min(cap_s, max(floor_s, wanted))
        where = "floor" if soft == floor_s and wanted < floor_s else "cap" if soft == cap_s and wanted > cap_s else ""
        basis = (f"{SAFETY:g} x {max_new_tokens} tokens x {seconds_per_token:.4g} s/token + load {load_s:.3g} s "
                 f"(median of {samples} drafts)" + (", raised to the floor" if where == "floor" else "")
                 + (", cut to the cap" if where == "cap" else ""))
    return TimeLimit(soft_s=round(soft, 1), hard_s=round(soft + HARD_MARGIN_S, 1), max_new_tokens=max_new_tokens,
                     seconds_per_token=seconds_per_token, load_s=load_s, basis=basis)


def _bounds() -> tuple[float, float]:
    return (float(getattr(settings, "INFERENCE_TIME_LIMIT_FLOOR_S", FLOOR_S)),
            float(getattr(settings, "INFERENCE_TIME_LIMIT_CAP_S", CAP_S)))


def max_new_tokens_of(mv: ModelVersion) -> int:
    return int(BackendConfig.from_dict(backend_config(mv, [])).generation.max_new_tokens)


def measured_speed(mv: ModelVersion) -> tuple[float | None, float, int]:
    """(median seconds per token, largest load seconds, number of drafts) over the model version's last
    ``SPEED_SAMPLES`` ready drafts that recorded a speed."""
    rows = list(
        Draft.objects.filter(model_version=mv, status=Draft.Status.READY, parameters__has_key="serving")
        .order_by("-finished_at").values_list("parameters__serving__seconds_per_token", "load_s")[:SPEED_SAMPLES]
    )
    speeds = [float(s) for s, _load in rows if s]
    if not speeds:
        return None, 0.0, 0
    return statistics.median(speeds), max(float(load or 0.0) for _s, load in rows), len(speeds)


def time_limit(mv: ModelVersion) -> TimeLimit:
    """The limit of a draft task of ``mv`` now (the same one the sender, the worker and the sweep use)."""
    floor_s, cap_s = _bounds()
    if mv.backend == ModelVersion.Backend.RETRIEVAL:  # no generation: the floor is plenty
        return TimeLimit(soft_s=floor_s, hard_s=floor_s + HARD_MARGIN_S, max_new_tokens=0, seconds_per_token=None,
                         load_s=0.0, basis="floor: retrieval generates no tokens")
    try:
        max_new_tokens = max_new_tokens_of(mv)
    except (ValueError, TypeError):  # misconfigured: the task itself fails the draft with the reason
        return time_limit_for(max_new_tokens=0, seconds_per_token=None, floor_s=floor_s, cap_s=cap_s)
    spt, load_s, n = measured_speed(mv)
    return time_limit_for(max_new_tokens=max_new_tokens, seconds_per_token=spt, load_s=load_s,
                          floor_s=floor_s, cap_s=cap_s, samples=n)


def seconds_per_token(results: Sequence[Any]) -> float | None:
    """Wall time per decode step of one generate call: its generate seconds over its longest output."""
    steps = max((int((r.parameters or {}).get("new_tokens") or 0) for r in results), default=0)
    if not results or steps <= 0:
        return None
    return float(results[0].generate_s or 0.0) / steps or None


def runtime_provenance() -> dict[str, Any]:
    """Library and code versions, for every backend (the janus backend adds its file hashes)."""
    out: dict[str, Any] = {"code_version": code_version(), "python": platform.python_version()}
    for module in ("torch", "transformers"):
        # The installed distribution's version, without importing it (the retrieval worker never loads torch).
        try:
            out[module] = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            out[module] = None
    return out


def serving_record(task, limit: TimeLimit, results: Sequence[Any]) -> dict[str, Any]:
    """What the worker records in each draft of one generate call: the limit it ran under (as Celery applied
    it, when it did) and the speed it measured."""
    applied = getattr(getattr(task, "request", None), "timelimit", None) or (None, None)
    return {
        "time_limit": limit.to_dict(),
        "applied_time_limit": {"hard_s": applied[0], "soft_s": applied[1]},
        "seconds_per_token": seconds_per_token(results),
    }


# Out of memory ------------------------------------------------------------------------------------------------

R = TypeVar("R")


class OutOfMemoryFailure(Exception):
    """Out of memory even after halving the batch: the drafts fail with this reason."""


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError (torch.cuda.OutOfMemoryError is the same class), or an error that says so (MPS and
    older torch raise RuntimeError('... out of memory ...'))."""
    try:
        # Lazy: heavy optional dependency (the demo installs no torch/transformers).
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    return "out of memory" in str(exc).lower()


def generate_halving_on_oom(
    generate: Callable[[list], list[R]], requests: Sequence[Any], *, free: Callable[[], None] = lambda: None,
) -> tuple[list[R], int]:
    """``generate(requests)``; on out-of-memory, ``free()`` then the batch halved (each half once); out of memory
    again, or already at one request, raises :class:`OutOfMemoryFailure` with the reason. Other errors pass
    through. Returns (results in request order, the batch size that succeeded)."""
    requests = list(requests)
    try:
        return generate(requests), len(requests)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        free()
        if len(requests) == 1:
            raise OutOfMemoryFailure(f"Out of memory generating one draft: {exc}") from exc
        first = exc
    half = len(requests) // 2
    log.warning("Out of memory at batch size %d (%s); retrying as %d + %d", len(requests), first, half,
                len(requests) - half)
    try:
        return generate(requests[:half]) + generate(requests[half:]), len(requests) - half
    except Exception as again:
        if not is_out_of_memory(again):
            raise
        free()
        raise OutOfMemoryFailure(
            f"Out of memory at batch size {len(requests)} and again at {len(requests) - half}: {again}"
        ) from again
