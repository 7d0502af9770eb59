"""The sign-in backend: Django's ModelBackend, with the user of a signed-in request loaded by one precompiled
SELECT on PostgreSQL (issue 19.2; docs/performance.md "Server CPU per request").

Every request of a signed-in person loads their user from the database (a deactivated user or a changed password
must end the session at once: no cache). Django's ``get_user`` builds and compiles the ORM query each time, which
measured ~20 % of a heartbeat's CPU; the same row read by fixed SQL and turned into a ``User`` by ``Model.from_db``
gives the same object for a fraction. Other databases (the demo's SQLite needs its converters) take Django's path.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.db import connections, router


class ModelBackend(DjangoModelBackend):
    _sql: str | None = None
    _attnames: list[str] = []

    @classmethod
    def _user_sql(cls, model) -> str:
        if cls._sql is None:
            fields = model._meta.concrete_fields
            cols = ", ".join(f'"{f.column}"' for f in fields)
            cls._attnames = [f.attname for f in fields]
            cls._sql = f'SELECT {cols} FROM "{model._meta.db_table}" WHERE "{model._meta.pk.column}" = %s'
        return cls._sql

    def get_user(self, user_id):
        model = get_user_model()
        alias = router.db_for_read(model)
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return super().get_user(user_id)
        try:
            pk = model._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a malformed id in a session is no user, as in Django's backend
            return None
        sql = self._user_sql(model)
        with connection.cursor() as cur:
            cur.execute(sql, [pk])
            row = cur.fetchone()
        if row is None:
            return None
        user = model.from_db(alias, self._attnames, row)
        return user if self.user_can_authenticate(user) else None
