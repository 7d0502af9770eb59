"""The small result type every statistics function returns, and JSON helpers."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers into plain JSON types; NaN and inf become None."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, StatResult):
        return value.to_dict()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [jsonable(v) for v in value]
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return str(value)


def _num(x: Any) -> float | None:
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None


class _Unset:
    """Default of a result class's detail field the method did not compute (left out of ``to_dict``)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "UNSET"

    # One instance: a copy or a pickled round trip (a worker process) must still be ``UNSET`` by identity.
    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: dict) -> _Unset:
        return self

    def __reduce__(self) -> str:
        return "UNSET"


#: a detail a result class defines but this result does not have (an empty result, a method variant)
UNSET: Any = _Unset()

_BASE_KEYS = ("method", "estimate", "ci", "statistic", "df", "p", "n", "conf_level")
_OWN = frozenset((*_BASE_KEYS, "note", "label", "raw"))


@dataclass
class StatResult:
    """One estimate with its interval and test.

    ``estimate`` is the headline quantity, ``ci`` its (low, high) interval at ``conf_level``, ``statistic``/``df``/``p``
    the test (``df`` may be a float for Satterthwaite-type degrees of freedom), ``n`` the number of units that went in,
    ``method`` a human-readable name. ``note`` says why the estimate is missing (or what to watch), ``label`` how to
    read it (e.g. descriptive only). Each test returns its own subclass whose documented fields hold the
    method-specific numbers (statsmodels-style result classes, e.g. :class:`analysis.stats.roc.AUCResult`); a
    field left :data:`UNSET` is left out of ``to_dict``.
    """

    method: str
    estimate: float | None = None
    ci: tuple[float | None, float | None] | None = None
    statistic: float | None = None
    df: float | None = None
    p: float | None = None
    n: int = 0
    conf_level: float = 0.95
    note: str | None = None
    label: str | None = None
    raw: Any = field(default=None, repr=False, compare=False)  # the underlying library result; never serialised

    def __post_init__(self) -> None:
        self.estimate = _num(self.estimate)
        self.statistic = _num(self.statistic)
        self.df = _num(self.df)
        self.p = _num(self.p)
        if self.ci is not None:
            self.ci = (_num(self.ci[0]), _num(self.ci[1]))
        self.n = int(self.n)

    def details(self) -> dict[str, Any]:
        """The subclass's own fields that are set, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in _OWN and getattr(self, f.name) is not UNSET}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "estimate": self.estimate,
            "ci": list(self.ci) if self.ci is not None else None,
            "statistic": self.statistic,
            "df": self.df,
            "p": self.p,
            "n": self.n,
            "conf_level": self.conf_level,
        }
        out.update({k: jsonable(v) for k, v in self.details().items()})
        for key in ("note", "label"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def __getitem__(self, key: str) -> Any:
        """Dictionary-style access to any field, for notebook convenience."""
        value = getattr(self, key)
        if value is UNSET:
            raise KeyError(key)
        return value


#: field metadata: leave the key out of ``Section.to_dict`` while the value is None (the dict left the key out)
OPTIONAL = {"optional": True}
#: field metadata: merge the value's own keys into the parent's dict (the sections were built with ``dict.update``)
FLATTEN = {"flatten": True}


def optional(default: Any = None) -> Any:
    """A dataclass field that ``Section.to_dict`` leaves out while it is None."""
    return field(default=default, metadata=OPTIONAL)


class Section:
    """Mixin for the result dataclasses of one analysis section: ``to_dict`` serialises field by field, in order,
    keyed by field name, JSON-able (fields marked :data:`OPTIONAL` left out while None, :data:`FLATTEN` merged)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.metadata.get("optional"):
                continue
            if f.metadata.get("flatten"):
                out.update(value.to_dict())
            else:
                out[f.name] = jsonable(value)
        return out


def empty_result(method: str, reason: str = "no data", cls: type[StatResult] = StatResult,
                 **details: Any) -> Any:
    """A result of class ``cls`` for an analysis that could not run (n=0 or too few units): null estimates, never an
    exception. ``details`` fill the class's fields (``n`` included)."""
    return cls(method=method, note=reason, **details)


def as_float_array(x: Any) -> np.ndarray:
    return np.asarray(pd.to_numeric(pd.Series(np.asarray(x).ravel()), errors="coerce"), dtype=float)
