"""The cross-process sync lease (`sync_lease`), as `catalogue/src/lock.rs` keeps it.

At most one sync per catalogue at a time, across this host, the Rust CLI
and any MCP server: the lease is taken in the same `BEGIN IMMEDIATE`
transaction as `begin-run`, renewed with every page (and between pages at
least every 15 s), and released when the run is closed. It expires 60 s
after the last renewal. A holder killed on this machine blocks no one: its
lease names its host and pid, and a process that finds that pid gone takes
the lease over at once, closing the history runs it left `running`.

The holder text must stay `pid <pid> on <hostname> #<16 hex>`: the Rust
host parses it the same way to tell a dead holder.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
from dataclasses import dataclass
from typing import Optional

from . import clock
from .statements import Statements

LEASE_TTL_MS = 60_000
RENEW_EVERY_MS = 15_000

INTERRUPTED_MESSAGE = (
    "interrupted: the process running this sync stopped before it finished (killed or crashed); "
    "the next sync resumes from the last committed page"
)


def new_holder() -> str:
    """A fresh holder id for this process."""
    return f"pid {os.getpid()} on {socket.gethostname()} #{secrets.randbits(64):016x}"


@dataclass(frozen=True)
class Held:
    """An unexpired lease of someone else's."""

    holder: str
    pid: int
    acquired_at: str


def _holder_host(holder: str) -> Optional[str]:
    _, on, rest = holder.partition(" on ")
    if not on:
        return None
    host, hash_sign, _ = rest.rpartition(" #")
    return host if hash_sign else None


def _process_is_gone(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        # Another user's process, or no way to ask: it may be alive.
        return False
    return False


def holder_is_gone(held: Held) -> bool:
    """Whether the holder is a process of this machine that no longer exists.

    Anything uncertain (another host, an older holder format) counts as
    alive: the lease then frees itself at expiry.
    """
    return (
        _holder_host(held.holder) == socket.gethostname()
        and held.pid != os.getpid()
        and _process_is_gone(held.pid)
    )


def live_holder(conn: sqlite3.Connection, sql: Statements, now_ms: int) -> Optional[Held]:
    """The lease of a process that may still be running, if any (in the caller's transaction)."""
    row = conn.execute(sql.lease_current, {"now_ms": now_ms}).fetchone()
    if row is None:
        return None
    held = Held(holder=row["holder"], pid=int(row["pid"] or 0), acquired_at=row["acquired_at"])
    return None if holder_is_gone(held) else held


def take(conn: sqlite3.Connection, sql: Statements, holder: str, now_ms: int) -> None:
    """Takes the lease and closes the runs a dead holder left (in the caller's transaction)."""
    now_text = clock.format_ms(now_ms)
    conn.execute(
        sql.lease_take,
        {
            "holder": holder,
            "pid": os.getpid(),
            "acquired_at": now_text,
            "expires_at": now_ms + LEASE_TTL_MS,
        },
    )
    conn.execute(sql.runs_close_interrupted, {"now": now_text, "message": INTERRUPTED_MESSAGE})


def renew(conn: sqlite3.Connection, sql: Statements, holder: str, now_ms: int) -> bool:
    """Extends the lease; False when `holder` no longer holds it."""
    cursor = conn.execute(sql.lease_renew, {"holder": holder, "expires_at": now_ms + LEASE_TTL_MS})
    return cursor.rowcount == 1


def release(conn: sqlite3.Connection, sql: Statements, holder: str) -> None:
    conn.execute(sql.lease_release, {"holder": holder})
