"""PostgreSQL with server-side binding, so that psycopg prepares the queries a process repeats (docs/performance.md,
"Prepared statements"): a reading room repeats a few dozen statements, and PostgreSQL's planning of the read's
joins cost more CPU than running them. Writes that pghistory prefixes with its context (two statements in one call,
which a prepared statement cannot hold) are bound on the client and sent as one simple query, as before."""

from __future__ import annotations

from django.db.backends.postgresql import base
from psycopg import ClientCursor

#: What pghistory puts before a tracked write (pghistory.runtime._inject_history_context).
_HISTORY_CONTEXT = "SELECT set_config('pghistory.context_id'"


class PreparingCursor(base.ServerBindingCursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        if params is not None and isinstance(query, str) and query.startswith(_HISTORY_CONTEXT):
            query, params = ClientCursor(self.connection).mogrify(query, params), None
        return super().execute(query, params, prepare=prepare, binary=binary)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if params.get("cursor_factory") is base.ServerBindingCursor:
            params["cursor_factory"] = PreparingCursor
        return params
