"""Fixtures: the real test registry, the real component, real SQLite files.

`target/debug/skillsmith-registry` serves generated skills on loopback and
prints `listening on URL` once it accepts connections (the tests wait for
that line, never for a time); its `/_admin` endpoints mutate it and count
requests. `target/debug/skillsmith` is the Rust CLI, run with `HOME` in a
temporary folder. The Python host runs as its CLI (`python -m
skillsmith_host`, the interpreter running the tests, where the package is
installed) or in process through `run_sync`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SKILLSMITH_BIN_DIR", REPO / "target" / "debug"))
COMPONENT = REPO / "target" / "skillsmith-sync.wasm"
HOSTILE = REPO / "target" / "hostile-wasm"
SKILLS = int(os.environ.get("SKILLS", "400"))


class Registry:
    """A running `skillsmith-registry`."""

    def __init__(self, *args: str, skills: int = SKILLS) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "skillsmith-registry"), "--skills", str(skills), "--exit-on-stdin-close", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = ""
        for line in self.proc.stdout:
            if line.startswith("listening on "):
                self.url = line.split()[2]
                break
        if not self.url:
            raise RuntimeError(f"skillsmith-registry exited ({self.proc.wait()}) before listening")
        parts = urlsplit(self.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.port = parts.port

    def admin(self, path: str, body: Optional[Any] = None, method: Optional[str] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.origin}/_admin{path}", data=data, method=method or ("GET" if body is None else "POST")
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def snapshot(self) -> dict[str, str]:
        return {s["id"]: s["updated_at"] for s in self.admin("/snapshot")}

    def stats(self) -> dict[str, Any]:
        return self.admin("/stats")

    def reset_stats(self) -> None:
        self.admin("/stats/reset", {})

    def fault(self, **fault: Any) -> None:
        self.admin("/fault", fault)

    def clear_faults(self) -> None:
        self.admin("/fault", method="DELETE")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def registry() -> Iterator[Registry]:
    r = Registry()
    yield r
    r.stop()


@pytest.fixture
def search_registry() -> Iterator[Registry]:
    r = Registry("--no-feed")
    yield r
    r.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def doc(self) -> Any:
        return json.loads(self.stdout)


def env(home: Path, **extra: str) -> dict[str, str]:
    out = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "SKILLSMITH_CACHE_DIR": str(BIN / "test-component-cache"),
        "SKILLSMITH_HOST_CACHE_DIR": str(REPO / "target" / "host-python-cache"),
        "NO_COLOR": "1",
    }
    out.update(extra)
    return out


def python_sync(db: Path, url: str, home: Path, *args: str, cwd: Optional[Path] = None, **extra: str) -> Run:
    """The Python host's CLI: `python -m skillsmith_host sync --db DB --registry URL ARGS`."""
    p = subprocess.run(
        [sys.executable, "-m", "skillsmith_host", "sync", "--db", str(db), "--registry", url, *args],
        capture_output=True,
        text=True,
        env=env(home, **extra),
        # Run from the checkout, as a user would: the host finds the
        # component there by itself.
        cwd=str(cwd or REPO),
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return Run(p.returncode, p.stdout, p.stderr)


def rust(home: Path, *args: str) -> Run:
    """The Rust CLI, `skillsmith ARGS`."""
    p = subprocess.run(
        [str(BIN / "skillsmith"), *args],
        capture_output=True,
        text=True,
        env=env(home),
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return Run(p.returncode, p.stdout, p.stderr)


def rust_sync(db: Path, url: str, home: Path, *args: str) -> Run:
    return rust(home, "--db", str(db), "--registry", url, "sync", "--json", *args)


@contextmanager
def read_only(db: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection, closed at the end of the `with` (sqlite3's own
    `with` only commits, and an open reader keeps the file in use)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        yield c


def catalogue(db: Path) -> dict[str, str]:
    """The registry rows of a catalogue file: id -> updated_at."""
    with read_only(db) as c:
        return dict(c.execute("SELECT id, updated_at FROM skills WHERE sync_origin = 'registry'"))


def history(db: Path) -> list[tuple[str, Optional[str]]]:
    """(status, error_message) of each run, oldest first."""
    with read_only(db) as c:
        return list(c.execute("SELECT status, error_message FROM sync_history ORDER BY rowid"))


def integrity(db: Path) -> str:
    with closing(sqlite3.connect(db)) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def first_difference(a: dict[str, str], b: dict[str, str]) -> Optional[str]:
    if a.keys() != b.keys():
        only_a = sorted(a.keys() - b.keys())[:3]
        only_b = sorted(b.keys() - a.keys())[:3]
        return f"{len(a)} rows vs {len(b)}; only left {only_a}, only right {only_b}"
    for k, v in a.items():
        if b[k] != v:
            return f"{k}: {v} vs {b[k]}"
    return None


def assert_same(a: dict[str, str], b: dict[str, str], what: str) -> None:
    diff = first_difference(a, b)
    assert diff is None, f"{what} differ: {diff}"


def counts(doc: dict[str, Any]) -> tuple[int, int, int]:
    return (doc["added"], doc["updated"], doc["removed"])
