"""Which catalogue files this host may use, and creating a fresh one.

The catalogue is shared with the Rust CLI (`skillsmith`) and the upstream
tools, so this host never migrates anything. It accepts exactly two kinds of
file (`catalogue/src/schema.rs` is the authority on layouts):

- an empty one (no tables; also a missing or zero-byte file), to which it
  applies `migrations/shared/catalogue.sql` as it is, in one transaction;
- one in the current shared layout: `PRAGMA user_version` = 10, version 10
  in `skillsmith_migrations`, and the columns and tables the store uses.

Anything else (an upstream catalogue, an older or newer layout, a
stranger's file, not SQLite at all) is refused before anything is written,
not even the switch to WAL, which persists in the file's header.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .checkout import shared_sql
from .errors import CatalogueError, FailureKind

SHARED_LAYOUT_VERSION = 10

# What the store reads and writes beyond upstream's own columns.
REQUIRED_COLUMNS = ("sync_origin", "registry_tier", "registry_repo_url", "categories", "stars")
REQUIRED_TABLES = (
    "skills",
    "skills_fts",
    "skillsmith_migrations",
    "sync_config",
    "sync_history",
    "sync_state",
    "sync_lease",
    "sync_run",
    "sync_schedule",
    "deferred_index",
)

# SQLite's primary result codes (the low byte of an extended code).
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_CONSTRAINT = 19
SQLITE_NOTADB = 26
# Extended codes of a WAL shared-memory file that cannot be mapped
# (`SQLITE_IOERR_SHMOPEN`, `_SHMSIZE`, `_SHMMAP`): on Linux a full disk
# (the file cannot grow) or a read-only folder.
SHM_FAILURES = frozenset({4618, 4874, 5386})

# Upstream 0.4.3's CHECK list on `skills.trust_tier` (`schema.rs`
# UPSTREAM_TIERS), for a file whose declaration has none to read.
UPSTREAM_TIERS = ("verified", "community", "experimental", "unknown")

BUSY_TIMEOUT_S = 5.0

MIGRATE_WITH_SKILLSMITH = (
    "run `skillsmith sync --db {path}` once: it brings an upstream or older catalogue to the "
    "shared layout, which this host then syncs"
)


def primary_code(e: sqlite3.Error) -> Optional[int]:
    """SQLite's primary result code of `e`, when it carries one."""
    code = getattr(e, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def io_kind(e: OSError) -> FailureKind:
    """The kind of a failure of the file system around the catalogue
    (`connection.rs` `io_kind`), by its errno."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return FailureKind.NO_SPACE
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return FailureKind.READ_ONLY
    return FailureKind.STORE_CORRUPT


def _folder_is_writable(path: Path) -> bool:
    """Whether a file can be created beside `path` (`connection.rs` probes alike)."""
    probe = (path.parent if str(path.parent) else Path(".")) / f".skillsmith-write-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return False
    try:
        os.unlink(probe)
    except OSError:
        pass
    return True


def catalogue_error(path: Path, e: sqlite3.Error) -> CatalogueError:
    """A failure to open or prepare `path`, as the user can act on it
    (`connection.rs` `DbError::from_sqlite`), by SQLite's result codes."""
    code = primary_code(e)
    if path.is_dir():
        return CatalogueError(
            f"the catalogue path {path} is a directory, not a database file",
            FailureKind.USAGE,
            "pass --db with the path of a catalogue file, or of a file to create",
        )
    if code == SQLITE_IOERR and getattr(e, "sqlite_errorcode", None) in SHM_FAILURES:
        code = SQLITE_FULL if _folder_is_writable(path) else SQLITE_READONLY
    if code == SQLITE_NOTADB:
        return CatalogueError(
            f"{path} is not a Skillsmith database (not SQLite, or encrypted), and is left untouched",
            FailureKind.STORE_CORRUPT,
            "pass --db with the path of a catalogue, or of a file to create",
        )
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return CatalogueError(
            f"the database {path} stayed locked by another process for {BUSY_TIMEOUT_S:.0f} s",
            FailureKind.STORE_BUSY,
        )
    if code == SQLITE_FULL:
        return CatalogueError(f"cannot write the database {path}: the disk is full", FailureKind.NO_SPACE)
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN):
        return CatalogueError(
            f"cannot write the database {path}: the file or its folder is read-only",
            FailureKind.READ_ONLY,
        )
    if code == SQLITE_CORRUPT:
        return CatalogueError(f"the database {path} is damaged ({e})", FailureKind.STORE_CORRUPT)
    return CatalogueError(f"database error on {path}: {e}", FailureKind.STORE_CORRUPT)


@dataclass(frozen=True)
class Layout:
    """What a file holds, read before anything is written."""

    empty: bool
    refusal: Optional[CatalogueError] = None


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def allowed_tiers(conn: sqlite3.Connection) -> list[str]:
    """The tiers `skills.trust_tier`'s CHECK accepts, read from the table's
    declaration (`schema.rs` `allowed_tiers`): upstream's later schemas list
    more than `catalogue.sql`. UPSTREAM_TIERS when it declares none."""
    row = conn.execute("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'skills'").fetchone()
    declared = _tier_check(row[0]) if row is not None and row[0] else None
    return declared if declared is not None else list(UPSTREAM_TIERS)


def _ascii_lower(text: str) -> str:
    # Keeps every offset: `str.lower` may lengthen non-ASCII characters.
    return "".join(c.lower() if c.isascii() else c for c in text)


def _tier_check(sql: str) -> Optional[list[str]]:
    """The list of `trust_tier IN ('a', 'b', ..)` in a table's declaration,
    parsed as `schema.rs` `tier_check` parses it; None if there is none."""
    lower = _ascii_lower(sql)
    start = 0
    while True:
        found = lower.find("trust_tier", start)
        if found < 0:
            return None
        start = found + len("trust_tier")
        rest = sql[start:].lstrip('"`]').lstrip()
        if _ascii_lower(rest[:2]) != "in":
            continue
        rest = rest[2:].lstrip()
        if not rest.startswith("("):
            continue
        rest = rest[1:]
        tiers: list[str] = []
        while True:
            rest = rest.lstrip()
            if not rest.startswith("'"):
                return None
            body, value, i = rest[1:], [], 0
            while True:
                if i >= len(body):
                    return None
                if body[i] != "'":
                    value.append(body[i])
                    i += 1
                elif body[i + 1 : i + 2] == "'":  # a quote inside a literal is doubled
                    value.append("'")
                    i += 2
                else:
                    break
            tiers.append("".join(value))
            rest = body[i + 1 :].lstrip()
            if rest.startswith(","):
                rest = rest[1:]
            elif rest.startswith(")"):
                return tiers
            else:
                return None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[0].lower() for r in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))}


def inspect(conn: sqlite3.Connection, path: Path) -> Layout:
    """Whether `conn`'s file is empty, current, or refused (and why). Reads only."""
    user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = _tables(conn)
    if not tables and user_version == 0:
        return Layout(empty=True)
    migrate = MIGRATE_WITH_SKILLSMITH.format(path=path)
    shared = None
    if "skillsmith_migrations" in tables:
        shared = conn.execute("SELECT max(version) FROM skillsmith_migrations").fetchone()[0] or 0
    found = max(user_version, shared or 0)
    if found > SHARED_LAYOUT_VERSION:
        return Layout(False, CatalogueError(
            f"{path} was written by a newer skillsmith (schema v{found}; this host knows "
            f"v{SHARED_LAYOUT_VERSION}), and is left untouched",
            FailureKind.STORE_CORRUPT,
            "update this host (and its component) to a version that knows that schema",
        ))
    if "skills" not in tables:
        shown = ", ".join(tables[:5])
        return Layout(False, CatalogueError(
            f"{path} is not a Skillsmith catalogue (it has tables ({shown}) but no skills table), "
            "and is left untouched",
            FailureKind.USAGE,
            "pass --db with the path of a catalogue, or of a file to create",
        ))
    if shared is None:
        what = (
            f"an older Skillsmith catalogue (schema v{user_version})"
            if user_version
            else "an upstream Skillsmith catalogue (or another tool's)"
        )
        return Layout(False, CatalogueError(
            f"{path} is {what}, which this host does not migrate; it is left untouched",
            FailureKind.USAGE,
            migrate,
        ))
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    columns = _columns(conn, "skills")
    missing += [f"skills.{c}" for c in REQUIRED_COLUMNS if c not in columns]
    if found < SHARED_LAYOUT_VERSION or user_version != SHARED_LAYOUT_VERSION or missing:
        detail = f"missing {', '.join(missing)}" if missing else f"schema v{found}"
        return Layout(False, CatalogueError(
            f"{path} is not in the current shared layout (v{SHARED_LAYOUT_VERSION}: {detail}), "
            "which this host does not migrate; it is left untouched",
            FailureKind.USAGE,
            migrate,
        ))
    return Layout(empty=False)


def _statements(script: str) -> list[str]:
    """`script` split into whole statements (triggers keep their inner `;`)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                out.append(pending)
            pending = ""
    if pending.strip() and not all(
        line.strip().startswith("--") or not line.strip() for line in pending.splitlines()
    ):
        out.append(pending)
    return out


def create_fresh(conn: sqlite3.Connection, path: Path) -> bool:
    """Applies `catalogue.sql` to `conn`'s file if it is (still) empty, atomically.

    Returns whether it did. Two processes creating one file at once: the
    second finds the first's catalogue once it holds the write lock.
    """
    script = shared_sql("catalogue.sql")
    conn.execute("BEGIN IMMEDIATE")
    try:
        layout = inspect(conn, path)
        if not layout.empty:
            conn.execute("ROLLBACK")
            if layout.refusal is not None:
                raise layout.refusal
            return False
        # `executescript` would commit first; statement by statement keeps
        # the whole schema in this one transaction.
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute("COMMIT")
        return True
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
