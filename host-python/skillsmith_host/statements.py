"""The store's SQL, loaded from `migrations/shared/host_store.sql`.

The file is shared with the Node host: each `-- name: NAME` line starts one
statement, which runs to the next such line (its header explains the
format and what each statement means). Both hosts read it rather than keep
their own copies of the SQL, so that the two cannot drift apart.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .checkout import shared_sql

_NAME = re.compile(r"^-- name: (\S+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """The named statements of a host_store.sql text."""
    parts = _NAME.split(text)
    # parts: [header, name1, body1, name2, body2, ...]
    statements: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        if name in statements:
            raise ValueError(f"host_store.sql names {name!r} twice")
        statements[name] = body.strip().rstrip(";").strip()
    return statements


@lru_cache(maxsize=1)
def load() -> dict[str, str]:
    """The statements of the shared file, read once per process."""
    return parse(shared_sql("host_store.sql"))


class Statements:
    """Attribute access to the named statements: `sql.skill_insert`."""

    def __init__(self, statements: dict[str, str]) -> None:
        self._statements = statements

    def __getattr__(self, name: str) -> str:
        try:
            return self._statements[name]
        except KeyError:
            raise AttributeError(f"host_store.sql has no statement named {name!r}") from None
