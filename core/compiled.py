"""Queries whose SQL is built once per process (issue 19; docs/performance.md, "Compiled queries").

Django builds a query's SQL anew on every call: for the reading room's small hot selects (the next read's image,
the read's availability, the case's images) that costs more CPU than PostgreSQL takes to run them, prepared
(core.db.postgresql). A ``CompiledQuery`` builds its queryset twice with two sets of sample values, keeps the SQL
(the same both times, or it refuses), finds which parameter each value became, and on a call binds the call's
values in their places: the very SQL and parameters the ORM would send, so the rules stay in the selector that
builds the queryset. Only for scalar answers (exists, first value, a column), read without Django's converters:
use it for integers, strings and booleans.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet

KINDS = ("exists", "first", "row", "column")


def _samples(kinds: dict[str, type], shift: int) -> dict[str, Any]:
    """Values no query holds as a constant, different for each name and each ``shift``."""
    out = {}
    for i, (name, kind) in enumerate(sorted(kinds.items())):
        if kind is int:
            out[name] = 1_900_000_000 + 1000 * shift + i
        elif kind is datetime:
            out[name] = datetime(1901 + shift, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
        elif kind is str:
            out[name] = f"~compiled-sample-{shift}-{i}~"
        else:
            raise ImproperlyConfigured(f"CompiledQuery: no sample for a {kind.__name__} ({name})")
    return out


def _bound(conn, value: Any) -> Any:
    """A value as the ORM passes it to this connection (datetimes are text on SQLite)."""
    if isinstance(value, datetime):
        return conn.ops.adapt_datetimefield_value(value)
    return value


class CompiledQuery:
    """``build(**values) -> QuerySet`` compiled once per database connection kind. ``kind``: "exists" (a bool),
    "first" (the first row's first column, or None) or "column" (the first column of every row). ``params``: each
    value's name and type (int, str or datetime). A call with a None value is refused: None changes the SQL."""

    def __init__(self, build: Callable[..., QuerySet], *, kind: str, params: dict[str, type]):
        if kind not in KINDS:
            raise ImproperlyConfigured(f"CompiledQuery kind must be one of {KINDS}")
        self.build, self.kind, self.params = build, kind, params
        self._compiled: dict[tuple[str, str], tuple[str, list[tuple[str | None, Any]]]] = {}
        self._lock = threading.Lock()

    def _sql(self, alias: str, values: dict) -> tuple[str, tuple]:
        query = self.build(**values).query
        if self.kind == "exists":
            query = query.exists()
        return query.get_compiler(using=alias).as_sql()

    def _compile(self, alias: str, conn) -> tuple[str, list[tuple[str | None, Any]]]:
        a, b = _samples(self.params, 0), _samples(self.params, 1)
        (sql, pa), (sql_b, pb) = self._sql(alias, a), self._sql(alias, b)
        if sql != sql_b or len(pa) != len(pb):
            raise ImproperlyConfigured("CompiledQuery: the SQL depends on the values; use the ORM for this query")
        by_sample = {(0, _bound(conn, v)): k for k, v in a.items()} | {(1, _bound(conn, v)): k for k, v in b.items()}
        slots, seen = [], set()
        for x, y in zip(pa, pb, strict=True):
            if x == y:
                slots.append((None, x))  # a constant of the query (a status, a flag)
                continue
            name = by_sample.get((0, x))
            if name is None or by_sample.get((1, y)) != name:
                raise ImproperlyConfigured("CompiledQuery: a parameter is derived from a value; pass it as one")
            slots.append((name, None))
            seen.add(name)
        if seen != set(self.params):
            raise ImproperlyConfigured(f"CompiledQuery: unused values {sorted(set(self.params) - seen)}")
        return sql, slots

    def __call__(self, using: str = DEFAULT_DB_ALIAS, **values: Any) -> Any:
        if set(values) != set(self.params) or any(v is None for v in values.values()):
            raise ValueError(f"CompiledQuery takes {sorted(self.params)}, none of them None")
        conn = connections[using]
        key = (using, conn.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or self._compiled.setdefault(key, self._compile(using, conn))
        sql, slots = compiled
        params = [const if name is None else _bound(conn, values[name]) for name, const in slots]
        with conn.cursor() as cur:
            cur.execute(sql, params)
            if self.kind == "column":
                return [row[0] for row in cur.fetchall()]
            row = cur.fetchone()
        if self.kind == "exists":
            return row is not None
        if self.kind == "row":
            return tuple(row) if row is not None else None
        return row[0] if row is not None else None
