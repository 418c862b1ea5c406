"""SQLite-style statements for psycopg: ``?`` placeholders become ``%s``, a literal ``%`` becomes ``%%``."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1024)
def to_pg_placeholders(sql: str) -> str:
    """Rewrite the placeholders outside quoted literals and identifiers (a ``?`` in ``'...'`` stays)."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    return "".join(out)
