"""Which arm is compared with which: the one place the assisted and control arms are resolved (docs/architecture.md).

An export names its arms by code after lock and as X/Y before (masked); the manifest says which arm is assisted
when it may. :func:`arms_from_manifest` turns the manifest into the labels asked for, :func:`resolve_arms` checks
them against the arms seen in the data and applies the control-arm rule: the only other arm, else 'unassisted'.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MASKED_ARMS = ("X", "Y")
CONTROL_DEFAULT = "unassisted"
MASKED_WARNING = ("Arms are masked as X and Y until the trial is locked: differences are X - Y and ratios X / Y; "
                  "which arm is AI-assisted is not known to this analysis.")


@dataclass(frozen=True)
class ArmChoice:
    """The arms of one analysis.

    ``assisted`` and ``control`` are the labels compared (differences assisted - control, ratios assisted /
    control); ``control`` is None when no other arm was found. ``warnings`` say what was guessed; ``problem`` is set
    when the arms could not be resolved (the named assisted arm is absent, or the control arm is ambiguous under
    ``lenient=False``), and then ``assisted`` / ``control`` are the labels as asked for.
    """

    assisted: Any
    control: Any | None
    warnings: tuple[str, ...] = ()
    problem: str | None = None


def resolve_arms(observed: Sequence[Any], assisted: Any, control: Any | None = None, *,
                 lenient: bool = True) -> ArmChoice:
    """Resolve the assisted and control arms among the ``observed`` labels (in the order given).

    Control rule when ``control`` is None: the only other arm; else 'unassisted' if present; else (``lenient``)
    the first other arm with a warning, or (strict) a problem. ``lenient`` also lets a missing ``assisted`` label
    fall back to the first of exactly two observed arms (a masked export), with a warning.
    """
    observed = list(observed)
    warnings: list[str] = []
    if assisted not in observed:
        if not (lenient and len(observed) == 2):
            return ArmChoice(assisted, control, problem=f"assisted arm {assisted!r} not in data (arms: {observed})")
        warnings.append(f"assisted arm {assisted!r} not in data; treating {observed[0]!r} as 'assisted' and "
                        f"{observed[1]!r} as control (masked export?)")
        assisted = observed[0]
    if control is None:
        others = [a for a in observed if a != assisted]
        if len(others) == 1:
            control = others[0]
        elif CONTROL_DEFAULT in others:
            control = CONTROL_DEFAULT
        elif others and lenient:
            warnings.append(f"several control candidates {others}; using {others[0]!r} (pass control_arm)")
            control = others[0]
        elif others:
            return ArmChoice(assisted, None, tuple(warnings),
                             problem=f"cannot tell the control arm among {others}; pass control_arm")
    return ArmChoice(assisted, control, tuple(warnings))


def arms_from_manifest(manifest: Mapping[str, Any]) -> ArmChoice:
    """The arm labels an export's manifest asks for: X against Y while masked (direction unknown), else its
    assisted arm against the control found by :func:`resolve_arms` (``control`` None here)."""
    if manifest.get("arms_masked") or not manifest.get("assisted_arm"):
        return ArmChoice(MASKED_ARMS[0], MASKED_ARMS[1], (MASKED_WARNING,))
    return ArmChoice(str(manifest["assisted_arm"]), None)
