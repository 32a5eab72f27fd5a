"""Full and differential syncs in both protocols, and what the Rust CLI makes
of the catalogue the Python host wrote (and the reverse)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import (
    BIN,
    SKILLS,
    Registry,
    assert_same,
    catalogue,
    counts,
    env,
    history,
    python_sync,
    read_only,
    rust,
    rust_sync,
)


@pytest.mark.parametrize("protocol", ["changes-feed", "search"])
def test_full_then_differential_sync_equals_the_registry(protocol: str, tmp_path: Path, home: Path) -> None:
    reg = Registry(*([] if protocol == "changes-feed" else ["--no-feed"]))
    try:
        db = tmp_path / "skills.db"
        full = python_sync(db, reg.url, home, "--json")
        assert full.code == 0, full.stderr
        assert full.doc["mode"] == protocol
        assert counts(full.doc) == (SKILLS, 0, 0)
        assert full.doc["last_sync_at"]
        assert_same(catalogue(db), reg.snapshot(), "catalogue and registry after a full sync")

        updated = set(reg.admin("/update", {"count": 30})["ids"])
        deleted = set(reg.admin("/delete", {"count": 10})["ids"])
        inserted = reg.admin("/insert", {"count": 7})["ids"]
        diff = python_sync(db, reg.url, home, "--json")
        assert diff.code == 0, diff.stderr
        assert counts(diff.doc) == (len(inserted), len(updated - deleted), len(deleted))
        assert_same(catalogue(db), reg.snapshot(), "catalogue and registry after a differential sync")

        reg.reset_stats()
        noop = python_sync(db, reg.url, home, "--json")
        assert noop.code == 0, noop.stderr
        assert counts(noop.doc) == (0, 0, 0)
        if protocol == "changes-feed":
            # A caught-up feed answers one conditional request.
            assert reg.stats()["total"] == 1
        assert [status for status, _ in history(db)] == ["success"] * 3
        with read_only(db) as c:
            assert c.execute("SELECT count(*) FROM sync_lease").fetchone()[0] == 0, "lease released"
            assert c.execute("SELECT mode FROM sync_state").fetchone()[0] == protocol
    finally:
        reg.stop()


def test_the_rust_cli_searches_and_reads_what_python_wrote(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    assert python_sync(db, registry.url, home).code == 0
    with read_only(db) as c:
        # A skill whose tier the file's CHECK does not accept keeps it in
        # registry_tier; the Rust CLI must read the registry's tier.
        row = c.execute(
            "SELECT id, name, registry_tier FROM skills WHERE registry_tier IS NOT NULL LIMIT 1"
        ).fetchone() or c.execute("SELECT id, name, trust_tier FROM skills LIMIT 1").fetchone()
    skill_id, name, tier = row
    word = max(name.replace("/", " ").replace("-", " ").split(), key=len)
    found = rust(home, "--db", str(db), "search", word, "--json", "--limit", "100")
    assert found.code == 0, found.stderr
    assert skill_id in found.stdout, f"`skillsmith search {word}` did not find {skill_id}"
    got = rust(home, "--db", str(db), "get", skill_id, "--json")
    assert got.code == 0, got.stderr
    assert f'"{tier}"' in got.stdout
    status = rust(home, "--db", str(db), "sync", "status", "--json")
    assert status.code == 0, status.stderr
    assert f'"registry_skills": {SKILLS}' in status.stdout


def test_python_then_rust_is_a_one_request_no_op(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    assert python_sync(db, registry.url, home).code == 0
    registry.reset_stats()
    r = rust_sync(db, registry.url, home)
    assert r.code == 0, r.stderr
    assert counts(r.doc) == (0, 0, 0)
    assert r.doc["requests"] == 1
    assert registry.stats()["total"] == 1
    assert_same(catalogue(db), registry.snapshot(), "catalogue and registry")
    # And a change made after is picked up by either host.
    registry.admin("/update", {"count": 5})
    r = rust_sync(db, registry.url, home)
    assert counts(r.doc) == (0, 5, 0)
    assert_same(catalogue(db), registry.snapshot(), "catalogue and registry")


def test_rust_then_python_is_a_one_request_no_op(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    r = rust_sync(db, registry.url, home)
    assert r.code == 0, r.stderr
    registry.reset_stats()
    p = python_sync(db, registry.url, home, "--json")
    assert p.code == 0, p.stderr
    assert counts(p.doc) == (0, 0, 0)
    assert p.doc["requests"] == 1
    assert registry.stats()["total"] == 1
    assert_same(catalogue(db), registry.snapshot(), "catalogue and registry")
    registry.admin("/delete", {"count": 4})
    registry.admin("/insert", {"count": 3})
    p = python_sync(db, registry.url, home, "--json")
    assert counts(p.doc) == (3, 0, 4)
    assert_same(catalogue(db), registry.snapshot(), "catalogue and registry")


def test_search_mode_hosts_take_turns(search_registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    assert python_sync(db, search_registry.url, home).code == 0
    search_registry.admin("/update", {"count": 12})
    r = rust_sync(db, search_registry.url, home)
    assert r.code == 0, r.stderr
    assert counts(r.doc) == (0, 12, 0)
    search_registry.admin("/delete", {"count": 6})
    p = python_sync(db, search_registry.url, home, "--json")
    assert counts(p.doc) == (0, 0, 6)
    assert_same(catalogue(db), search_registry.snapshot(), "catalogue and registry")


def test_local_rows_are_left_alone_and_other_tools_rows_claimed(
    registry: Registry, tmp_path: Path, home: Path
) -> None:
    import sqlite3

    db = tmp_path / "skills.db"
    assert python_sync(db, registry.url, home).code == 0
    ids = sorted(catalogue(db))
    mine, theirs = ids[0], ids[1]
    with sqlite3.connect(db) as c:
        c.execute("UPDATE skills SET sync_origin = 'local', name = 'my own' WHERE id = ?", (mine,))
        c.execute("UPDATE skills SET sync_origin = NULL WHERE id = ?", (theirs,))
    registry.admin("/update", {"ids": [mine, theirs]})
    registry.admin("/delete", {"ids": [mine]})
    p = python_sync(db, registry.url, home, "--json")
    assert p.code == 0, p.stderr
    with read_only(db) as c:
        assert c.execute("SELECT name, sync_origin FROM skills WHERE id = ?", (mine,)).fetchone() == ("my own", "local")
        assert c.execute("SELECT sync_origin FROM skills WHERE id = ?", (theirs,)).fetchone() == ("registry",)


def test_the_mcp_server_searches_what_python_wrote(registry: Registry, tmp_path: Path, home: Path) -> None:
    """The real `skillsmith-mcp`, spoken to over stdio as an MCP client does
    (newline-delimited JSON-RPC), finds a skill only the Python host wrote."""
    db = tmp_path / "skills.db"
    assert python_sync(db, registry.url, home).code == 0
    with read_only(db) as c:
        skill_id, name = c.execute("SELECT id, name FROM skills ORDER BY id LIMIT 1").fetchone()
    word = max(name.replace("/", " ").replace("-", " ").split(), key=len)
    server = subprocess.Popen(
        [str(BIN / "skillsmith-mcp"), "--db", str(db), "--background-sync", "false"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env(home),
    )
    assert server.stdin is not None and server.stdout is not None

    def call(id_: int, method: str, params: dict) -> dict:
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}) + "\n")
        server.stdin.flush()
        # Skips the server's notifications (logging, progress) to its answer.
        for line in server.stdout:
            message = json.loads(line)
            if message.get("id") == id_:
                assert "error" not in message, message
                return message["result"]
        raise AssertionError(f"skillsmith-mcp closed its output before answering {method}")

    try:
        call(1, "initialize", {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "host-python-tests", "version": "0"},
        })
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        result = call(2, "tools/call", {"name": "search", "arguments": {"query": word, "limit": 100}})
        assert not result.get("isError"), result
        assert skill_id in json.dumps(result), f"the MCP search for {word!r} did not find {skill_id}"
    finally:
        server.stdin.close()
        assert server.wait(timeout=30) == 0, "skillsmith-mcp did not exit cleanly when its input closed"
