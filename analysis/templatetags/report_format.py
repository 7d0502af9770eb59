"""Number formatting for the analysis report templates (formatting only: which numbers go where is decided in
:mod:`analysis.report`). A missing or non-finite number shows as an en dash."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django import template

from analysis.stats._result import UNSET

register = template.Library()

DASH = "–"


def _missing(x: Any) -> bool:
    return x is None or x is UNSET or x == "" or (isinstance(x, float) and not math.isfinite(x))


@register.filter
def num(x: Any, nd: int = 2) -> str:
    """``x`` with ``nd`` decimals."""
    return DASH if _missing(x) else f"{x:.{int(nd)}f}"


@register.filter
def pct(x: Any, nd: int = 1) -> str:
    """A share as a percentage with ``nd`` decimals."""
    return DASH if _missing(x) else f"{100 * x:.{int(nd)}f}%"


@register.filter
def pval(p: Any) -> str:
    """A p-value: three decimals, '<0.001' below that."""
    if _missing(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _ci(ci: Any, fmt: Any) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return DASH
    return f"{fmt(ci[0])} to {fmt(ci[1])}"


@register.filter
def ci(interval: Any, nd: int = 2) -> str:
    """An interval 'low to high' with ``nd`` decimals."""
    return _ci(interval, lambda v: num(v, nd))


@register.filter
def ci_pct(interval: Any) -> str:
    """An interval of shares as percentages."""
    return _ci(interval, pct)


@register.filter
def msd(d: Mapping[str, Any] | None, nd: int = 2) -> str:
    """A :func:`~analysis.stats.comparisons.describe` summary as 'mean ± SD (n=…)'."""
    if not d or not d.get("n"):
        return DASH
    return f"{num(d.get('mean'), nd)} ± {num(d.get('sd'), nd)} (n={d['n']})"


@register.filter
def miqr(d: Mapping[str, Any] | None, nd: int = 1) -> str:
    """A :func:`~analysis.stats.comparisons.describe` summary as 'median (Q1–Q3)'."""
    if not d or not d.get("n"):
        return DASH
    return f"{num(d.get('median'), nd)} ({num(d.get('q1'), nd)}–{num(d.get('q3'), nd)})"


@register.filter
def label(code: Any) -> str:
    """A finding code in words: underscores as spaces."""
    return str(code).replace("_", " ")


@register.filter
def short(text: Any, n: int = 16) -> str:
    """The first ``n`` characters."""
    return str(text or "")[: int(n)]


@register.filter
def dash(x: Any) -> Any:
    """``x``, or an en dash when it is missing (0 stays 0)."""
    return DASH if _missing(x) else x
