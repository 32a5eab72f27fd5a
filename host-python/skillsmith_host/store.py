"""The `store` imports on the stdlib `sqlite3`, over the catalogue file the
Rust CLI reads.

The SQL is `migrations/shared/host_store.sql` (shared with the Node host);
this module is its driver and mirrors `catalogue/src/store.rs`:

- every write is one `BEGIN IMMEDIATE` transaction: `begin-run` (which
  takes the cross-process lease, `lease.py`), each `apply-page` (removals,
  upserts, checkpoint and lease renewal together; anything failing rolls the
  whole page back), `finish-run` (history, schedule, end of a deferral);
- rows follow `row_policy.rs`: `local` rows are never touched, rows of
  other tools are claimed when listed, tiers the file's own CHECK refuses
  (read from its declaration, as `schema.rs` `allowed_tiers` does) are kept
  in `registry_tier`, a repository held by another row waits in
  `registry_repo_url`;
- the WAL is kept within half the database file (at least 4 MiB) after
  every page, as `store.rs` `bound_wal` keeps it, so that a sync needs at
  most about 1.5 times the catalogue's size on disk;
- SQLite errors map onto the closed `store-error` by result code, never by
  message text.

This host commits each page before `apply-page` returns (no write-behind),
and does not start the first-sync indexing deferral of the Rust store (an
optimisation); it ends one that a killed Rust run left, as the Rust store
would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from . import clock, lease, schema
from .errors import CatalogueError, FailureKind, StoreErrorValue
from .statements import Statements, load
from .values import (
    LocalVersion,
    Page,
    RegistryRow,
    RunCounts,
    RunOutcome,
    ScheduleConfig,
    Skill,
    SyncState,
)

KNOWN_TIERS = frozenset(
    {"official", "verified", "curated", "community", "unverified", "experimental", "unknown"}
)
KNOWN_MODES = frozenset({"changes-feed", "search"})
MAX_ROWID = 9_223_372_036_854_775_807
# The WAL may grow to this size whatever the database's (`store.rs` WAL_FLOOR_BYTES).
WAL_FLOOR_BYTES = 4 << 20

log = logging.getLogger("skillsmith_host.store")

DRY_RUN_REFUSAL = "dry run: the store is read-only and a dry run writes nothing"

# Decides `next_sync_at` (Unix ms, or None) for a schedule at a time: the
# component's own `schedule.decide`, so every host applies the one rule.
Scheduler = Callable[[ScheduleConfig, int], Optional[int]]


@dataclass(frozen=True)
class OtherSync:
    """Whom `begin-run` found syncing the catalogue (the user is told)."""

    pid: Optional[int]
    since: str

    def __str__(self) -> str:
        return f"process {'?' if self.pid is None else self.pid}, since {self.since}"


class StoreFailure(Exception):
    """A store import failed; the guest receives `error` as its `store-error`."""

    def __init__(self, error: StoreErrorValue) -> None:
        super().__init__(str(error))
        self.error = error


def invalid(text: str) -> StoreFailure:
    return StoreFailure(StoreErrorValue("invalid", text))


def store_error_of(e: sqlite3.Error) -> StoreErrorValue:
    """Maps a SQLite error onto the closed `store-error` by its result code."""
    code = schema.primary_code(e)
    if code in (schema.SQLITE_BUSY, schema.SQLITE_LOCKED):
        return StoreErrorValue("busy")
    if code == schema.SQLITE_FULL:
        return StoreErrorValue("no-space")
    if code == schema.SQLITE_READONLY:
        return StoreErrorValue("read-only")
    if code in (schema.SQLITE_CORRUPT, schema.SQLITE_NOTADB):
        return StoreErrorValue("corrupt", str(e))
    if code == schema.SQLITE_CONSTRAINT:
        return StoreErrorValue("invalid", str(e))
    return StoreErrorValue("other", str(e))


def _with_skill(error: StoreErrorValue, skill: Skill) -> StoreErrorValue:
    if error.tag in ("invalid", "other"):
        return StoreErrorValue(error.tag, f"skill {json.dumps(skill.id)}: {error.text}")
    return error


def _json_list(values: list[str]) -> str:
    # Compact, as serde_json writes it, so both hosts store identical text.
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _read_json_list(text: Optional[str]) -> list[str]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


def _varint(data: bytes) -> Optional[int]:
    """An SQLite varint (big-endian, 7 bits a byte, the ninth byte whole)."""
    value = 0
    for i, b in enumerate(data[:9]):
        if i == 8:
            return (value << 8) | b
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value
    return None


def _bit(value: Optional[bool]) -> Optional[int]:
    return None if value is None else int(value)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _main_file(conn: sqlite3.Connection) -> Optional[str]:
    """The file behind `conn`'s main database; None in memory."""
    for row in conn.execute("PRAGMA database_list"):
        if row["name"] == "main":
            return row["file"] or None
    return None


# ---- opening a catalogue ------------------------------------------------------


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    # Autocommit mode: every transaction below is explicit, and sqlite3's
    # own implicit BEGINs (deferred) would break the IMMEDIATE rule.
    conn = sqlite3.connect(
        target, timeout=schema.BUSY_TIMEOUT_S, isolation_level=None, uri=uri, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    return conn


def _uri(path: Path, **params: str) -> str:
    quoted = str(path.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quoted}?{query}"


def open_catalogue(path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection to the catalogue at `path`, checked and ready.

    Writable: creates the file (and its folder) with `catalogue.sql` when it
    is missing or empty, refuses any file not in the shared layout untouched,
    then switches to WAL. Read-only (a dry run): never writes; a missing file
    is an empty catalogue in memory.
    """
    if path.is_dir():
        raise CatalogueError(
            f"the catalogue path {path} is a directory, not a database file",
            FailureKind.USAGE,
            "pass --db with the path of a catalogue file, or of a file to create",
        )
    try:
        if read_only:
            return _open_read_only(path)
        return _open_writable(path)
    except sqlite3.Error as e:
        raise schema.catalogue_error(path, e) from e
    except OSError as e:
        # Looking at the path itself failed (a folder this user may not enter).
        raise CatalogueError(
            f"cannot open the database {path}: {e.strerror or e}", schema.io_kind(e)
        ) from e


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.exists() or path.stat().st_size == 0:
        conn = _connect(":memory:")
        schema.create_fresh(conn, path)
        return conn
    try:
        conn = _connect(_uri(path, mode="ro"), uri=True)
        layout = schema.inspect(conn, path)
    except sqlite3.OperationalError as e:
        if schema.primary_code(e) not in (schema.SQLITE_CANTOPEN, schema.SQLITE_READONLY, schema.SQLITE_IOERR):
            raise
        # A read-only folder or a full disk cannot hold the WAL's -shm file;
        # `immutable` needs none (and does not see a crashed writer's WAL).
        conn = _connect(_uri(path, mode="ro", immutable="1"), uri=True)
        layout = schema.inspect(conn, path)
    if layout.refusal is not None:
        conn.close()
        raise layout.refusal
    if layout.empty:
        conn.close()
        conn = _connect(":memory:")
        schema.create_fresh(conn, path)
    return conn


def _open_writable(path: Path) -> sqlite3.Connection:
    if path.parent != Path(""):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CatalogueError(
                f"cannot create the folder for {path}: {e.strerror or e}", schema.io_kind(e)
            ) from e
    conn = _connect(str(path))
    try:
        # Read what the file holds before anything writes to it.
        layout = schema.inspect(conn, path)
        if layout.refusal is not None:
            raise layout.refusal
        if layout.empty:
            schema.create_fresh(conn, path)
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # As the Rust store: a 32 MiB page cache and a WAL checkpoint every
        # 32 MiB, for pages of hundreds of rows in random key order.
        conn.execute("PRAGMA cache_size = -32768")
        conn.execute("PRAGMA wal_autocheckpoint = 8192")
    except BaseException:
        conn.close()
        raise
    return conn


# ---- the store imports ------------------------------------------------------------


@dataclass
class _OpenRun:
    id: int
    started_ms: int
    pages: int = 0


class Store:
    """The `store` imports of one sync, over one connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        read_only: bool,
        scheduler: Scheduler,
        statements: Optional[Statements] = None,
    ) -> None:
        self.conn = conn
        self.read_only = read_only
        self.sql = statements or Statements(load())
        self._scheduler = scheduler
        self._open: Optional[_OpenRun] = None
        self._holder: Optional[str] = None
        self._last_renew_ms = 0
        # The row policy (`row_policy.rs`), read when a run begins.
        self._allowed_tiers: frozenset[str] = frozenset(schema.UPSTREAM_TIERS)
        self._unique_repo_url = True
        self._versions = False
        self.other_sync: Optional[OtherSync] = None
        self._path = None if read_only else _main_file(conn)

    # -- helpers

    def _writable(self) -> None:
        if self.read_only:
            raise invalid(DRY_RUN_REFUSAL)

    def _check_run(self, run: int) -> _OpenRun:
        if self._open is None:
            raise invalid(f"unknown run {run}: no run is open")
        if self._open.id != run:
            raise invalid(f"unknown run {run}: the open run is {self._open.id}")
        return self._open

    def _one(self, statement: str, params: Optional[dict] = None) -> Optional[sqlite3.Row]:
        return self.conn.execute(statement, params or {}).fetchone()

    def _yes(self, statement: str, params: Optional[dict] = None) -> bool:
        row = self._one(statement, params)
        return bool(row and row[0])

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """SQLite's errors in the block leave as the `store-error` for the guest."""
        try:
            yield
        except sqlite3.Error as e:
            raise StoreFailure(store_error_of(e)) from e

    @contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[None]:
        """One transaction around the block: committed when it ends, rolled
        back when anything escapes it (a trap from the limits too: never half
        a page). SQLite's errors leave as the `store-error` for the guest.
        Writes are IMMEDIATE: a deferred transaction that later writes can
        fail with SQLITE_BUSY at once in WAL mode, whatever the busy timeout."""
        try:
            self.conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            yield
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            raise StoreFailure(store_error_of(e)) from e
        except BaseException:
            self._rollback()
            raise

    @property
    def open_run(self) -> Optional[int]:
        """The run the guest opened and has not closed."""
        return None if self._open is None else self._open.id

    @property
    def pages_applied(self) -> int:
        return 0 if self._open is None else self._open.pages

    # -- reads

    def read_state(self) -> SyncState:
        with self._transaction(immediate=False):  # one snapshot for the three reads
            row = self._one(self.sql.state_last_sync_at)
            last_sync_at = row["last_sync_at"] if row else None
            cp = self._one(self.sql.state_checkpoint)
            n = self._one(self.sql.state_registry_skills)["n"]
        mode = cp["mode"] if cp else None
        return SyncState(
            last_sync_at=last_sync_at,
            # A mode a newer host wrote means: discover again.
            mode=mode if mode in KNOWN_MODES else None,
            cursor=cp["cursor"] if cp else None,
            etag=cp["etag"] if cp else None,
            resync_pending=bool(cp["resync_pending"]) if cp else False,
            registry_skills=max(int(n), 0),
        )

    def local_versions(self, ids: list[str]) -> list[Optional[LocalVersion]]:
        out: list[Optional[LocalVersion]] = [None] * len(ids)
        if not ids:
            return out
        with self._reading():
            rows = self.conn.execute(
                self.sql.skills_local_versions, {"ids": json.dumps(ids, ensure_ascii=False)}
            ).fetchall()
        for row in rows:
            pos = row["pos"]
            if 0 <= pos < len(out):
                source = "local" if row["sync_origin"] == "local" else "registry"
                out[pos] = LocalVersion(updated_at=row["updated_at"], source=source)
        return out

    def registry_ids(self, after: Optional[str], limit: int) -> list[str]:
        with self._reading():
            if after is None:
                rows = self.conn.execute(self.sql.skills_registry_ids_first, {"limit": limit})
            else:
                rows = self.conn.execute(
                    self.sql.skills_registry_ids_after, {"after": after, "limit": limit}
                )
            return [r["id"] for r in rows]

    def registry_rows(self, ids: list[str]) -> list[Optional[RegistryRow]]:
        out: list[Optional[RegistryRow]] = []
        with self._reading():
            for id_ in ids:
                row = self._one(self.sql.skills_registry_row, {"id": id_})
                if row is None:
                    out.append(None)
                    continue
                tier = row["tier"] if row["tier"] in KNOWN_TIERS else "unknown"
                out.append(
                    RegistryRow(
                        id=id_,
                        trust_tier=tier,
                        scored=bool(row["scored"]),
                        # Another tool's text there counts as no categories:
                        # the row is then kept, not proved gone.
                        categories=_read_json_list(row["categories"]),
                    )
                )
        return out

    # -- writes

    def begin_run(self, mode: str) -> int:
        self._writable()
        if self._open is not None:
            raise StoreFailure(StoreErrorValue("run-open", f"run {self._open.id} of this process"))
        now = clock.now_ms()
        holder = lease.new_holder()
        with self._transaction():
            held = lease.live_holder(self.conn, self.sql, now)
            if held is not None:
                self.other_sync = OtherSync(held.pid, held.acquired_at)
                raise StoreFailure(StoreErrorValue("run-open", str(self.other_sync)))
            lease.take(self.conn, self.sql, holder, now)
            running = self._one(self.sql.run_find_open)
            if running is not None:
                self.other_sync = OtherSync(running["pid"], running["started_at"])
                raise StoreFailure(
                    StoreErrorValue("run-open", f"run {running['id']} by {self.other_sync}")
                )
            if not self._yes(self.sql.sync_state_fts_deferred):
                self._rebuild_search_index_if_overcounted()
            if self._yes(self.sql.skills_has_source_column):
                self.conn.execute(self.sql.skills_mark_upstream_local)
            history_id = f"sync-{clock.format_ms(now)}-{secrets.randbits(32):08x}"
            cursor = self.conn.execute(
                self.sql.history_insert, {"id": history_id, "started_at": clock.format_ms(now)}
            )
            run = int(cursor.lastrowid)
            self.conn.execute(
                self.sql.run_insert, {"history_id": history_id, "mode": mode, "pid": os.getpid()}
            )
            self._allowed_tiers = frozenset(schema.allowed_tiers(self.conn))
            self._unique_repo_url = self._yes(self.sql.skills_repo_url_is_unique)
            self._versions = self._yes(self.sql.skills_has_versions_table)
        self._holder = holder
        self._last_renew_ms = now
        self._open = _OpenRun(id=run, started_ms=now)
        return run

    def _rebuild_search_index_if_overcounted(self) -> None:
        """Upstream's open re-inserts every row into the full-text index,
        doubling it; the Rust store rebuilds it at the start of a run, before
        anything in the transaction writes to it (FTS5 writes its count at
        commit)."""
        row = self._one(self.sql.fts_averages)
        counted = _varint(bytes(row["block"])) if row and row["block"] is not None else None
        if counted is None:
            return
        sized = self._one(self.sql.fts_docsize_count)["n"]
        if counted != max(int(sized), 0):
            self.conn.execute(self.sql.fts_rebuild)

    def apply_page(self, run: int, page: Page) -> None:
        self._writable()
        open_run = self._check_run(run)
        for s in page.upserts:
            if s.id == "":
                raise invalid(f"a skill with an empty id (name {json.dumps(s.name)}) cannot be stored")
        now = clock.now_ms()
        current: Optional[Skill] = None
        try:
            with self._transaction():
                for id_ in page.removals:
                    self.conn.execute(self.sql.skill_delete, {"id": id_})
                for skill in page.upserts:
                    current = skill
                    self._upsert(skill, now)
                current = None
                cp = page.checkpoint
                self.conn.execute(
                    self.sql.checkpoint_write,
                    {
                        "mode": cp.mode,
                        "cursor": cp.cursor,
                        "etag": cp.etag,
                        "resync_pending": int(cp.resync_pending),
                        "updated_at": clock.format_ms(now),
                    },
                )
                if not lease.renew(self.conn, self.sql, self._holder or "", now):
                    # Another process took over after our lease expired:
                    # writing on would interleave two syncs. Roll the page back.
                    raise StoreFailure(StoreErrorValue("busy"))
        except StoreFailure as e:
            if current is None:
                raise
            # Which row the schema refused, for the user.
            raise StoreFailure(_with_skill(e.error, current)) from e.__cause__
        self._last_renew_ms = now
        open_run.pages += 1
        self._bound_wal()
        log.info(
            "applied page %d of run %d: %d upserts, %d removals",
            open_run.pages, run, len(page.upserts), len(page.removals),
        )

    def _upsert(self, s: Skill, now_ms: int) -> None:
        if s.trust_tier in self._allowed_tiers:
            tier, registry_tier = s.trust_tier, None
        else:
            tier, registry_tier = "unknown", s.trust_tier
        repo, registry_repo = self._repo(s)
        tags = _json_list(s.tags)
        categories = _json_list(s.categories)
        row = {
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "author": s.author,
            "repo_url": repo,
            "registry_repo_url": registry_repo,
            "quality_score": s.quality_score,
            "trust_tier": tier,
            "registry_tier": registry_tier,
            "tags": tags,
            "categories": categories,
            "stars": s.stars,
            "content_hash": s.content_hash,
            "license": s.license,
            "security_score": s.security_score,
            "installable": _bit(s.installable),
            "quarantined": _bit(s.quarantined),
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }
        sql = self.sql
        if self.conn.execute(sql.skill_insert, row).rowcount == 0:
            plain = {k: row[k] for k in (
                "id", "quality_score", "categories", "stars", "content_hash", "license",
                "security_score", "installable", "quarantined", "created_at", "updated_at")}
            if self.conn.execute(sql.skill_update_plain, plain).rowcount == 0:
                return  # a local row with this id: left alone
            self.conn.execute(sql.skill_update_text, {k: row[k] for k in ("id", "description", "tags")})
            self.conn.execute(sql.skill_update_keys, {k: row[k] for k in (
                "id", "name", "author", "repo_url", "trust_tier", "registry_tier", "registry_repo_url")})
        if self._versions:
            self._record_version(s, now_ms)

    def _repo(self, s: Skill) -> tuple[Optional[str], Optional[str]]:
        """`repo_url` and `registry_repo_url` for `s` (row_policy.rs `repo`)."""
        if s.repo_url is None:
            return None, None
        if not self._unique_repo_url:
            return s.repo_url, None
        self.conn.execute(
            self.sql.skill_repo_move_losers,
            {"repo_url": s.repo_url, "id": s.id, "updated_at": s.updated_at, "local": 0},
        )
        if self._yes(self.sql.skill_repo_held, {"repo_url": s.repo_url, "id": s.id}):
            return None, s.repo_url
        return s.repo_url, None

    def _record_version(self, s: Skill, now_ms: int) -> None:
        # What upstream's sync hashes: JSON.stringify of these four fields.
        proxy = json.dumps(
            {"id": s.id, "name": s.name, "description": s.description, "updated_at": s.updated_at},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        digest = hashlib.sha256(proxy.encode("utf-8")).hexdigest()
        self.conn.execute(
            self.sql.skill_version_record,
            {"skill_id": s.id, "content_hash": digest, "recorded_at": now_ms // 1000},
        )
        self.conn.execute(self.sql.skill_version_trim, {"skill_id": s.id})

    def finish_run(self, run: int, outcome: RunOutcome) -> None:
        self._writable()
        open_run = self._check_run(run)
        now = clock.now_ms()
        now_text = clock.format_ms(now)
        if outcome.status == "success":
            error = None
        else:
            error = outcome.error or f"the sync ended as {outcome.status}"
        c = outcome.counts
        cov = outcome.coverage
        with self._transaction():
            closed = self.conn.execute(
                self.sql.history_close,
                {
                    "completed_at": now_text,
                    "status": outcome.status,
                    "added": c.added,
                    "updated": c.updated,
                    "unchanged": c.unchanged,
                    "error": error,
                    "duration_ms": max(now - open_run.started_ms, 0),
                    "run": run,
                },
            ).rowcount
            self.conn.execute(
                self.sql.run_close,
                {
                    "run": run,
                    "removed": c.removed,
                    "skipped": c.skipped,
                    "registry_total": cov.registry_total if cov else None,
                    "skills_reached": cov.reached if cov else None,
                    "unfilterable_tiers": _json_list(cov.unfilterable_tiers) if cov else None,
                    "failure_kind": outcome.failure,
                },
            )
            if closed != 1:
                raise invalid(f"run {run} is not open in the history (closed by another process?)")
            self._end_deferral()
            self.conn.execute(self.sql.skills_give_back_repos)
            self._write_config(outcome, error, now)
        self._open = None
        self._release_lease()
        self._truncate_wal()

    def _end_deferral(self) -> None:
        """Ends a first-sync indexing deferral another process left (store.rs end_deferral)."""
        sql = self.sql
        deferred = self._yes(sql.sync_state_fts_deferred)
        saved = self.conn.execute(sql.deferred_index_list).fetchall()
        if not deferred and not saved:
            return
        if saved and self._yes(sql.skills_repo_urls_shared):
            self.conn.execute(sql.skills_repo_urls_settle)
        for row in saved:
            if not self._yes(sql.index_exists, {"name": row["name"]}):
                # The index's own CREATE INDEX, as SQLite recorded it.
                self.conn.execute(row["sql"])
        self.conn.execute(sql.deferred_index_clear)
        if deferred:
            upto = self._one(sql.sync_state_fts_indexed_upto)
            if upto is not None and upto["upto"] is not None:
                self.conn.execute(sql.fts_index_rows, {"above": upto["upto"], "upto": MAX_ROWID})
            else:
                self.conn.execute(sql.fts_rebuild)
            self.conn.execute(sql.sync_state_end_deferral)

    def _write_config(self, outcome: RunOutcome, error: Optional[str], now: int) -> None:
        """The scheduling facts of a finished run (store.rs finish_run, db.rs write_config)."""
        sql = self.sql
        now_text = clock.format_ms(now)
        self.conn.execute(sql.config_ensure_row)
        row = self._one(sql.config_read)
        frequency = row["frequency"] if row and row["frequency"] in ("daily", "weekly") else "daily"
        default_interval = 604_800_000 if frequency == "weekly" else 86_400_000
        interval = row["interval_ms"] if row and isinstance(row["interval_ms"], int) else None
        enabled = True if row is None or row["enabled"] is None else bool(row["enabled"])
        last_sync_at = row["last_sync_at"] if row else None
        last_sync_count = row["last_sync_count"] if row and row["last_sync_count"] is not None else 0
        last_sync_error = row["last_sync_error"] if row else None
        last_attempt_at = row["last_attempt_at"] if row else None
        last_success_at = row["last_success_at"] if row else None
        failures = row["consecutive_failures"] if row and row["consecutive_failures"] is not None else 0
        failures = min(max(int(failures), 0), 2**32 - 1)

        kind = FailureKind(outcome.failure) if outcome.failure in {k.value for k in FailureKind} else None
        stopped = kind is not None and not kind.counts_as_failure
        if not stopped:
            last_attempt_at = now_text
        if outcome.status == "success":
            last_success_at = now_text
            failures = 0
            if outcome.last_sync_at is not None:
                last_sync_at = outcome.last_sync_at
            last_sync_count = outcome.counts.added + outcome.counts.updated
            last_sync_error = None
        elif stopped:
            last_sync_error = error
        else:
            failures = min(failures + 1, 2**32 - 1)
            last_sync_error = error
        next_ms = self._scheduler(
            ScheduleConfig(
                enabled=enabled,
                interval_ms=interval if interval is not None and interval > 0 else default_interval,
                last_attempt_ms=clock.parse_ms(last_attempt_at),
                last_success_ms=clock.parse_ms(last_success_at),
                consecutive_failures=failures,
            ),
            now,
        )
        self.conn.execute(
            sql.config_write,
            {
                "last_sync_at": last_sync_at,
                "last_sync_count": last_sync_count,
                "last_sync_error": last_sync_error,
                "next_sync_at": None if next_ms is None else clock.format_ms(next_ms),
                "updated_at": now_text,
            },
        )
        self.conn.execute(
            sql.schedule_write,
            {
                "last_attempt_at": last_attempt_at,
                "last_success_at": last_success_at,
                "consecutive_failures": failures,
            },
        )

    # -- upkeep by the host

    def heartbeat(self) -> None:
        """Renews the lease between pages, at most every 15 s; errors are left
        for the next page to find."""
        if self._holder is None or self._open is None:
            return
        now = clock.now_ms()
        if now - self._last_renew_ms < lease.RENEW_EVERY_MS:
            return
        try:
            with self._transaction():
                lease.renew(self.conn, self.sql, self._holder, now)
        except StoreFailure:
            return
        self._last_renew_ms = now

    def abandon_open_run(self, error: str, failure: FailureKind) -> None:
        """Closes the run the guest could not (it trapped): `partial` if a page
        was applied, else `failed`. Then the lease is released. Raises
        StoreFailure when the catalogue refuses even that (still locked, the
        disk full): the next sync that takes the lease closes the run."""
        if self._open is None:
            self._release_lease()
            return
        # A trap may strike between statements of a transaction.
        self._rollback()
        outcome = RunOutcome(
            status="partial" if self._open.pages > 0 else "failed",
            counts=RunCounts(),
            error=error,
            failure=failure.value,
        )
        try:
            self.finish_run(self._open.id, outcome)
        finally:
            self._open = None
            self._release_lease()

    def _release_lease(self) -> None:
        if self._holder is None:
            return
        try:
            self._rollback()
            lease.release(self.conn, self.sql, self._holder)
        except sqlite3.Error:
            pass  # it expires by itself within a minute
        self._holder = None

    def _bound_wal(self) -> None:
        """Keeps the WAL within half the database file (at least
        WAL_FLOOR_BYTES): SQLite's own checkpoint (every 32 MiB here, for
        speed) would let a 20,000-skill catalogue of 18 MB need twice that on
        disk. A checkpoint that cannot finish now is retried after the next page."""
        if self._path is None:
            return
        if _size(self._path + "-wal") > max(WAL_FLOOR_BYTES, _size(self._path) // 2):
            self._truncate_wal()

    def _truncate_wal(self) -> None:
        """Gives the WAL's space back if that can be done at once; with readers
        in the way a TRUNCATE checkpoint would hold the write lock waiting."""
        try:
            self.conn.execute("PRAGMA busy_timeout = 0")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            pass
        finally:
            try:
                self.conn.execute(f"PRAGMA busy_timeout = {int(schema.BUSY_TIMEOUT_S * 1000)}")
            except sqlite3.Error:
                pass

    def close(self) -> None:
        self._release_lease()
        self.conn.close()
