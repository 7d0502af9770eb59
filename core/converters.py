"""URL converters. `opaque_id`: the public id of a read, rating task, arena task or image, as `secrets.token_urlsafe`
and `token_hex` write them (letters, digits, `-`, `_`; the columns hold 24). Anything else matches no route and is
Django's 404 before a view runs: a NUL in the path reached the id lookup as a PostgreSQL DataError (a 500) on every
read, rating and arena route (docs/NOTES.md, ninth session, helper attack)."""
from __future__ import annotations


class OpaqueIdConverter:
    regex = "[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
