"""Queries whose SQL is built once per process (issue 19; docs/performance.md, "Compiled queries").

Django builds a query's SQL anew on every call: for the reading room's small hot selects (the next read's image,
the read's availability, the case's images) that costs more CPU than PostgreSQL takes to run them, prepared
(core.db.postgresql). A ``CompiledQuery`` builds its queryset twice with two sets of sample values, keeps the SQL
(the same both times, or it refuses), finds which parameter each value became, and on a call binds the call's
values in their places: the very SQL and parameters the ORM would send, so the rules stay in the selector that
builds the queryset. Scalar answers (exists, first value, a row, a column) are read without Django's converters:
use them for integers, strings and booleans. Model answers ("object", "objects") are built as the ORM's own
iterable builds them (Django's converters, ``select_related`` objects, annotations), from the compiler state kept
with the SQL: the hot per-case selects that load a read or a rating with its case, trial and arm spent more CPU
compiling their SQL than anything else they did (docs/performance.md, "Compiled queries").
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, get_related_populators
from django.db.transaction import TransactionManagementError

KINDS = ("exists", "first", "row", "column", "object", "objects")
MODEL_KINDS = ("object", "objects")


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


class _Rows:
    """How the ORM turns a model query's rows into instances, kept from the compiler that built the SQL."""

    def __init__(self, compiler, alias: str):
        select, klass_info = compiler.select, compiler.klass_info
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in select[self.start:self.end]]
        self.populators = get_related_populators(klass_info, select, alias)
        self.annotations = dict(compiler.annotation_col_map or {})
        self.converters = compiler.get_converters([s[0] for s in select[0:compiler.col_count]])
        self.col_count = compiler.col_count if compiler.has_extra_select else None
        self.for_update = compiler.query.select_for_update

    def build(self, alias: str, conn, rows: list) -> list:
        if self.col_count is not None:
            rows = [r[:self.col_count] for r in rows]
        if self.converters:  # as compiler.apply_converters, with this thread's connection
            rows = [self._convert(list(r), conn) for r in rows]
        out = []
        for row in rows:
            obj = self.model.from_db(alias, self.init_list, row[self.start:self.end])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, pos in self.annotations.items():
                setattr(obj, name, row[pos])
            out.append(obj)
        return out

    def _convert(self, row: list, conn) -> list:
        for pos, (convs, expression) in self.converters.items():
            value = row[pos]
            for convert in convs:
                value = convert(value, expression, conn)
            row[pos] = value
        return row


class CompiledQuery:
    """``build(**values) -> QuerySet`` compiled once per database connection kind. ``kind``: "exists" (a bool),
    "first" (the first row's first column, or None), "row" (the first row, or None), "column" (the first column
    of every row), "object" (the first instance, or None) or "objects" (every instance). ``params``: each value's
    name and type (int, str or datetime). A call with a None value is refused: None changes the SQL. Model kinds
    take a plain model queryset (``select_related``, ``only``, ``select_for_update`` and annotations are kept;
    ``prefetch_related`` is refused: it would be skipped)."""

    def __init__(self, build: Callable[..., QuerySet], *, kind: str, params: dict[str, type]):
        if kind not in KINDS:
            raise ImproperlyConfigured(f"CompiledQuery kind must be one of {KINDS}")
        self.build, self.kind, self.params = build, kind, params
        self._compiled: dict[tuple[str, str], tuple[str, list[tuple[str | None, Any]], _Rows | None]] = {}
        self._lock = threading.Lock()

    def _compiler(self, alias: str, values: dict):
        qs = self.build(**values)
        if self.kind in MODEL_KINDS and (qs._iterable_class is not ModelIterable or qs._prefetch_related_lookups
                                         or qs._known_related_objects):
            raise ImproperlyConfigured("CompiledQuery: a model kind takes a plain model queryset (no values(), "
                                       "prefetch_related or related manager)")
        query = qs.query.exists() if self.kind == "exists" else qs.query
        compiler = query.get_compiler(using=alias)
        return compiler, compiler.as_sql()

    def _compile(self, alias: str, conn) -> tuple[str, list[tuple[str | None, Any]], _Rows | None]:
        a, b = _samples(self.params, 0), _samples(self.params, 1)
        (compiler, (sql, pa)), (_, (sql_b, pb)) = self._compiler(alias, a), self._compiler(alias, b)
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
        return sql, slots, (_Rows(compiler, alias) if self.kind in MODEL_KINDS else None)

    def __call__(self, using: str = DEFAULT_DB_ALIAS, **values: Any) -> Any:
        if set(values) != set(self.params) or any(v is None for v in values.values()):
            raise ValueError(f"CompiledQuery takes {sorted(self.params)}, none of them None")
        conn = connections[using]
        key = (using, conn.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key) or self._compiled.setdefault(key, self._compile(using, conn))
        sql, slots, rows = compiled
        if rows is not None and rows.for_update and conn.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = [const if name is None else _bound(conn, values[name]) for name, const in slots]
        with conn.cursor() as cur:
            cur.execute(sql, params)
            if self.kind in ("column", "objects"):
                found = cur.fetchall()
            else:
                row = cur.fetchone()
                found = [] if row is None else [row]
        if rows is not None:
            objs = rows.build(using, conn, found)
            return objs if self.kind == "objects" else (objs[0] if objs else None)
        if self.kind == "column":
            return [r[0] for r in found]
        if self.kind == "exists":
            return bool(found)
        if self.kind == "row":
            return tuple(found[0]) if found else None
        return found[0][0] if found else None
