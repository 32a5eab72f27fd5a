"""The catalogue file: which files are accepted, dry runs, and stopping a sync
(Ctrl-C at a page boundary, kill -9 anywhere) without damaging it."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import (
    REPO,
    Registry,
    assert_same,
    catalogue,
    env,
    history,
    integrity,
    python_sync,
    read_only,
    rust_sync,
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dry_run_writes_nothing(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    missing = tmp_path / "never.db"
    r = python_sync(missing, registry.url, home, "--dry-run", "--json")
    assert r.code == 0, r.stderr
    assert r.doc["dry_run"] is True and r.doc["added"] == len(registry.snapshot())
    assert not missing.exists(), "a dry run of a missing catalogue creates no file"

    assert python_sync(db, registry.url, home).code == 0
    updated = registry.admin("/update", {"count": 9})["ids"]
    files = sorted(p for p in tmp_path.iterdir() if p.name.startswith("skills.db"))
    before = {p.name: (digest(p), p.stat().st_mtime_ns) for p in files}
    runs = history(db)
    r = python_sync(db, registry.url, home, "--dry-run", "--json")
    assert r.code == 0, r.stderr
    assert (r.doc["added"], r.doc["updated"], r.doc["removed"]) == (0, len(updated), 0)
    after = {p.name: (digest(p), p.stat().st_mtime_ns) for p in files}
    assert after == before, "the dry run changed the catalogue's files"
    assert history(db) == runs


def _stranger(path: Path) -> None:
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
        c.execute("INSERT INTO accounts (owner) VALUES ('someone')")


def _upstream(path: Path) -> None:
    script = (REPO / "migrations" / "shared" / "upstream_base.sql").read_text()
    with sqlite3.connect(path) as c:
        c.executescript(script)


def test_files_not_in_the_shared_layout_are_refused_untouched(registry: Registry, tmp_path: Path, home: Path) -> None:
    stranger, upstream, newer, junk = (tmp_path / n for n in ("stranger.db", "upstream.db", "newer.db", "junk.db"))
    _stranger(stranger)
    _upstream(upstream)
    newer_conn = sqlite3.connect(newer)
    newer_conn.executescript((REPO / "migrations" / "shared" / "catalogue.sql").read_text())
    newer_conn.execute("PRAGMA user_version = 11")
    newer_conn.close()
    junk.write_bytes(b"this is not a database, but it is long enough to look like one" * 20)
    expect = {
        stranger: (2, "is not a Skillsmith catalogue"),
        upstream: (2, "which this host does not migrate"),
        newer: (6, "was written by a newer skillsmith (schema v11"),
        junk: (6, "is not a Skillsmith database"),
    }
    for path, (code, says) in expect.items():
        before = digest(path)
        r = python_sync(path, registry.url, home)
        assert r.code == code, f"{path.name}: {r.stderr}"
        assert says in r.stderr, f"{path.name}: {r.stderr}"
        assert r.stderr.count("error:") == 1 and "to fix:" in r.stderr
        assert digest(path) == before, f"{path.name} was modified"
    r = python_sync(upstream, registry.url, home)
    assert f"skillsmith sync --db {upstream}" in r.stderr
    # What the message says to do works: the Rust CLI adopts the file, and
    # then this host syncs it.
    assert rust_sync(upstream, registry.url, home).code == 0
    registry.admin("/update", {"count": 3})
    r = python_sync(upstream, registry.url, home, "--json")
    assert r.code == 0, r.stderr
    assert r.doc["updated"] == 3
    assert_same(catalogue(upstream), registry.snapshot(), "catalogue and registry")


def test_a_directory_and_an_unwritable_folder_are_reported(registry: Registry, tmp_path: Path, home: Path) -> None:
    r = python_sync(tmp_path, registry.url, home)
    assert r.code == 2 and "is a directory" in r.stderr
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        r = python_sync(locked / "skills.db", registry.url, home)
        assert r.code == 6 and "read-only" in r.stderr


# The guest writes up to 5,000 skills per store page: 12,000 skills make
# three pages, the first committed long before the last.
BIG = 12_000


def _start_sync(db: Path, reg: Registry, home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "skillsmith_host", "sync", "--db", str(db), "--registry", reg.url,
         "--page-size", "1000", "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=env(home), cwd=str(REPO),
    )


def _wait_for_pages(proc: subprocess.Popen, pages: int) -> list[str]:
    """Reads the sync's log until it says it committed `pages` store pages."""
    seen = []
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if f"applied page {pages} of run" in line:
            return seen
    raise AssertionError(f"the sync ended before {pages} pages: {''.join(seen)}")


def test_ctrl_c_stops_at_a_page_boundary_and_the_next_sync_finishes(tmp_path: Path, home: Path) -> None:
    reg = Registry("--latency-ms", "20", skills=BIG)
    try:
        db = tmp_path / "skills.db"
        proc = _start_sync(db, reg, home)
        _wait_for_pages(proc, 1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 9, err
        assert "cancelled: pages applied so far are kept" in out
        kept = catalogue(db)
        assert 5000 <= len(kept) < BIG
        assert integrity(db) == "ok"
        status, error = history(db)[-1]
        assert status == "partial" and "cancel" in error
        r = python_sync(db, reg.url, home, "--json")
        assert r.code == 0, r.stderr
        assert r.doc["added"] == BIG - len(kept)
        assert_same(catalogue(db), reg.snapshot(), "catalogue and registry")
    finally:
        reg.stop()


def test_kill_9_mid_sync_leaves_a_consistent_file_that_resumes(tmp_path: Path, home: Path) -> None:
    reg = Registry("--latency-ms", "20", skills=BIG)
    try:
        db = tmp_path / "skills.db"
        proc = _start_sync(db, reg, home)
        _wait_for_pages(proc, 1)
        proc.kill()
        proc.communicate(timeout=30)
        assert integrity(db) == "ok"
        with read_only(db) as c:
            assert c.execute("SELECT count(*) FROM sync_lease").fetchone()[0] == 1, "the dead sync's lease"
        kept = len(catalogue(db))
        assert kept >= 5000
        # The lease of a dead process on this machine is taken over at once;
        # its run is closed as interrupted; the sync resumes from the checkpoint.
        r = python_sync(db, reg.url, home, "--json")
        assert r.code == 0, r.stderr
        assert r.doc["added"] == BIG - kept
        assert_same(catalogue(db), reg.snapshot(), "catalogue and registry")
        statuses = [s for s, _ in history(db)]
        assert statuses == ["failed", "success"]
        assert history(db)[0][1].startswith("interrupted:")
        # And the Rust CLI agrees that it is current.
        reg.reset_stats()
        rust = rust_sync(db, reg.url, home)
        assert rust.code == 0 and rust.doc["added"] == 0 and reg.stats()["total"] == 1
    finally:
        reg.stop()


def test_a_sync_holding_the_lease_keeps_others_out(tmp_path: Path, home: Path) -> None:
    reg = Registry("--latency-ms", "20", skills=BIG)
    try:
        db = tmp_path / "skills.db"
        proc = _start_sync(db, reg, home)
        _wait_for_pages(proc, 1)
        other = python_sync(db, reg.url, home)
        rust = rust_sync(db, reg.url, home)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert other.code == 7, other.stderr
        assert rust.code == 7, rust.stderr
        # Both name the holder alike: which process, since when.
        says = f"another sync of this catalogue is in progress (process {proc.pid}, since "
        assert says in other.stderr, other.stderr
        assert says in rust.stderr, rust.stderr
        assert integrity(db) == "ok"
    finally:
        reg.stop()


def test_output_piped_into_head_is_not_a_failure(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    cmd = (f"{sys.executable} -m skillsmith_host sync --db {db} --registry {registry.url} --json | head -1; "
           "echo \"exit=${PIPESTATUS[0]}\" >&2")
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env(home), cwd=str(REPO))
    assert p.stdout == "{\n"
    assert "exit=0" in p.stderr and "Traceback" not in p.stderr and "Broken pipe" not in p.stderr
