"""The store against the Rust store's semantics (`catalogue/src/store.rs`,
`row_policy.rs`): tiers as the file's own CHECK accepts them, the WAL kept
small, and a run the catalogue will not let be closed."""

from __future__ import annotations

import shutil
import socket
import sqlite3
from pathlib import Path

import pytest

from conftest import REPO, Registry, assert_same, catalogue, history, python_sync, read_only, rust_sync

# Every tier the registry serves: curated is one that upstream's schema 17
# accepts and 0.4.3's (`catalogue.sql`) does not.
TIERS = "verified=1,community=2,official=1,curated=2,unverified=1,experimental=1,unknown=1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiers(db: Path) -> dict[str, tuple[str, str]]:
    with read_only(db) as c:
        return {i: (t, r) for i, t, r in c.execute("SELECT id, trust_tier, registry_tier FROM skills")}


def test_tiers_are_stored_as_the_files_own_check_allows(tmp_path: Path, home: Path) -> None:
    """A later upstream catalogue (schema 17) accepts `curated`: the Rust CLI
    stores it as it is, so must this host (upstream tools read `trust_tier`)."""
    adopted = tmp_path / "upstream17.db"
    with sqlite3.connect(adopted) as c:
        c.executescript((REPO / "tests" / "fixtures" / "upstream-schema-17.sql").read_text())
    # `skillsmith sync` brings it to the shared layout before it fails to connect.
    nowhere = f"http://127.0.0.1:{_free_port()}/functions/v1"
    assert rust_sync(adopted, nowhere, home, "--retry-budget", "0").code == 3
    py_db, rust_db = tmp_path / "py.db", tmp_path / "rust.db"
    shutil.copyfile(adopted, py_db)
    shutil.copyfile(adopted, rust_db)
    reg = Registry("--tier-mix", TIERS)
    try:
        assert python_sync(py_db, reg.url, home).code == 0
        assert rust_sync(rust_db, reg.url, home).code == 0
        assert_same(catalogue(py_db), reg.snapshot(), "catalogue and registry")
        assert_same(catalogue(rust_db), reg.snapshot(), "Rust catalogue and registry")
    finally:
        reg.stop()
    py, rs = _tiers(py_db), _tiers(rust_db)
    assert ("curated", None) in py.values(), "curated is a tier this file accepts"
    assert ("unknown", "official") in py.values(), "official is not"
    assert py == rs, "both hosts store tiers alike"


def test_the_wal_stays_within_half_the_catalogue(tmp_path: Path) -> None:
    """As `store.rs` `bound_wal`: after every page the WAL is at most half the
    database file (4 MiB at least), so a sync needs ~1.5x the catalogue's
    size on disk, not that plus SQLite's 32 MiB checkpoint interval. Read at
    each progress report, while the guest waits for the host."""
    from skillsmith_host import SyncRequest, run_sync

    reg = Registry(skills=12_000)
    db = tmp_path / "skills.db"
    wal = Path(f"{db}-wal")
    seen: list[tuple[int, int]] = []

    def measure(_report: object) -> None:
        if wal.exists():
            seen.append((wal.stat().st_size, db.stat().st_size))

    try:
        outcome = run_sync(SyncRequest(db=db, registry=reg.url, page_size=1000, on_progress=measure))
    finally:
        reg.stop()
    assert outcome.report.added == 12_000 and outcome.report.pages >= 3
    assert seen, "progress was reported while the WAL existed"
    floor = 4 << 20
    over = [(w, d) for w, d in seen if w > max(floor, d // 2)]
    assert not over, f"WAL over half the database (wal, db bytes): {over[:3]}"


def test_a_run_the_catalogue_will_not_let_be_closed(
    registry: Registry, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program locks the catalogue mid-run: the page, the guest's
    finish-run and the host's own attempt to close the run all find it busy.
    The user hears the sync's failure (no traceback from the last attempt),
    and the next sync closes the run as interrupted."""
    from skillsmith_host import FailureKind, HostError, SyncRequest, run_sync
    from skillsmith_host import schema

    monkeypatch.setattr(schema, "BUSY_TIMEOUT_S", 0.2)  # how long each attempt waits
    db = tmp_path / "skills.db"
    locker: list[sqlite3.Connection] = []

    def lock_once_fetching(report: object) -> None:
        # The first fetch comes after begin-run (docs/embedding.md §2).
        if not locker and getattr(report, "phase") == "fetch":
            conn = sqlite3.connect(db, isolation_level=None, timeout=10)
            conn.execute("BEGIN IMMEDIATE")
            locker.append(conn)

    try:
        with pytest.raises(HostError) as failed:
            run_sync(SyncRequest(db=db, registry=registry.url, on_progress=lock_once_fetching))
    finally:
        for conn in locker:
            conn.execute("ROLLBACK")
            conn.close()
    assert locker, "the catalogue was locked during the run"
    assert failed.value.kind is FailureKind.STORE_BUSY, failed.value
    assert "the catalogue stayed locked by another program" in failed.value.message
    assert [s for s, _ in history(db)] == ["running"], "nothing could close it"
    # The lease is this (live) process's until it expires: a sync whose clock
    # is two minutes ahead finds it expired, takes over and closes the run.
    r = python_sync(db, registry.url, home, SKILLSMITH_CLOCK_OFFSET_MS="120000")
    assert r.code == 0, r.stderr
    runs = history(db)
    assert [s for s, _ in runs] == ["failed", "success"]
    assert runs[0][1].startswith("interrupted:")
    assert_same(catalogue(db), registry.snapshot(), "catalogue and registry")
