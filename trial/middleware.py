"""pghistory's request context (user and URL on the row-history events, trial.models.history), on PostgreSQL only:
it prefixes each write with `set_config`, which SQLite (the demo's default database) does not have."""
from __future__ import annotations

from django.db import connection
from pghistory.middleware import HistoryMiddleware as _PgHistoryMiddleware


class HistoryMiddleware(_PgHistoryMiddleware):
    def __call__(self, request):
        if connection.vendor != "postgresql":
            return self.get_response(request)
        return super().__call__(request)
