"""What the command line prints: registry text that cannot drive the terminal,
the same exit code whatever state stdout and stderr are in, and arguments
out of range refused as usage errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from conftest import REPO, Registry, Run, env, python_sync, rust

# ESC sequences that retitle the window and clear the screen, BEL, a C1
# CSI, and a line feed that would start a forged `error:` line.
HOSTILE_TEXT = "\u001b]0;pwned\u0007\u001b[2Jbad\u009b31m\nerror: forged line"


def _cli(db: Path, url: str, home: Path, *args: str, stdout: Any = subprocess.PIPE,
         close_fds: tuple[int, ...] = ()) -> Run:
    """The Python host's CLI with stdout as given, and the descriptors in
    `close_fds` closed before it starts (`>&-`, `2>&-`)."""

    def close() -> None:
        for fd in close_fds:
            os.close(fd)

    p = subprocess.run(
        [sys.executable, "-m", "skillsmith_host", "sync", "--db", str(db), "--registry", url, *args],
        stdout=stdout, stderr=None if 2 in close_fds else subprocess.PIPE, text=True,
        env=env(home), cwd=str(REPO), stdin=subprocess.DEVNULL, timeout=300,
        preexec_fn=close if close_fds else None,
    )
    return Run(p.returncode, p.stdout or "", p.stderr or "")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_registry_text_cannot_drive_the_terminal(registry: Registry, tmp_path: Path, home: Path) -> None:
    # Not retried: the error itself quotes the registry's text.
    registry.fault(kind="status", code=400, path="/health", body={"error": HOSTILE_TEXT})
    r = python_sync(tmp_path / "py.db", registry.url, home)
    assert r.code == 5, r.stderr
    assert not any(c in r.stderr for c in "\u001b\u0007\u009b"), repr(r.stderr)
    [line] = _error_lines(r.stderr)
    rust_run = rust(home, "--db", str(tmp_path / "rust.db"), "--registry", registry.url, "sync")
    assert rust_run.code == 5, rust_run.stderr
    assert _error_lines(rust_run.stderr) == [line], "both CLIs print the same escaped line"
    assert "\\e]0;pwned\\a\\e[2Jbad\\u{9b}31m\\nerror: forged line" in line

    # Retried: the guest's log lines quote it too.
    registry.clear_faults()
    registry.fault(kind="status", code=500, path="/skills-changes", body={"error": HOSTILE_TEXT})
    r = python_sync(tmp_path / "py.db", registry.url, home, "--retry-budget", "1")
    assert r.code == 3, r.stderr
    assert "WARNING" in r.stderr, "the retries were logged"
    assert not any(c in r.stderr for c in "\u001b\u0007\u009b"), repr(r.stderr)
    assert len(_error_lines(r.stderr)) == 1

    # With --json the document keeps the exact text (JSON escapes it).
    r = python_sync(tmp_path / "py.db", registry.url, home, "--retry-budget", "1", "--json")
    assert HOSTILE_TEXT in r.doc["error"]["message"]


def _dead_pipe() -> int:
    """The write end of a pipe whose reader is gone (`| head` after it left)."""
    read, write = os.pipe()
    os.close(read)
    return write


def _no_traceback(r: Run) -> None:
    assert "Traceback" not in r.stderr, r.stderr


def test_a_closed_or_full_output_changes_no_exit_code(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    nowhere = "http://127.0.0.1:9/functions/v1"
    cases: list[tuple[str, list[str], dict[str, Any], int, Optional[str]]] = [
        # what, arguments, how stdout is, exit code, what stderr must say
        ("failure, --json, reader gone", [nowhere, "--retry-budget", "0", "--json"],
         {"stdout": "pipe"}, 3, "error: could not reach the registry"),
        ("usage error, --json, reader gone", [registry.url, "--bogus", "--json"],
         {"stdout": "pipe"}, 2, "error: unrecognized arguments: --bogus"),
        ("success, stdout closed", [registry.url], {"close_fds": (1,)}, 0, None),
        ("success, --json, stdout closed", [registry.url, "--json"], {"close_fds": (1,)}, 0, None),
        ("failure, stderr closed", [nowhere, "--retry-budget", "0"], {"close_fds": (2,)}, 3, None),
        ("success, stdout on a full disk", [registry.url], {"stdout": "full"}, 1,
         "error: the sync finished, but its report could not be written: No space left on device"),
    ]
    for what, (url, *args), how, code, says in cases:
        kwargs: dict[str, Any] = {}
        opened = None
        if how.get("stdout") == "pipe":
            kwargs["stdout"] = opened = _dead_pipe()
        elif how.get("stdout") == "full":
            kwargs["stdout"] = opened = os.open("/dev/full", os.O_WRONLY)
        else:
            kwargs["close_fds"] = how["close_fds"]
        try:
            r = _cli(db, url, home, *args, **kwargs)
        finally:
            if opened is not None:
                os.close(opened)
        assert r.code == code, f"{what}: exit {r.code}: {r.stderr}"
        _no_traceback(r)
        if says is not None:
            assert says in r.stderr, f"{what}: {r.stderr}"
            assert len(_error_lines(r.stderr)) == 1, f"{what}: {r.stderr}"


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--page-size", "99999999999"),  # wasmtime-py would wrap it into a u32
        ("--page-size", "-3"),
        ("--timeout", "0"),  # every request would time out at once
        ("--timeout", "nan"),
        ("--retry-budget", "-5"),  # would wrap into a huge u64
        ("--retry-budget", "1e300"),
        ("--memory-mib", "0"),
        ("--max-body-bytes", "-1"),
        ("--max-guest-run", "inf"),
    ],
)
def test_out_of_range_arguments_are_usage_errors(
    flag: str, value: str, registry: Registry, tmp_path: Path, home: Path
) -> None:
    db = tmp_path / "skills.db"
    r = python_sync(db, registry.url, home, flag, value, "--json")
    assert r.code == 2, f"{flag} {value}: exit {r.code}: {r.stderr}"
    _no_traceback(r)
    assert r.doc["error"]["kind"] == "usage"
    [line] = _error_lines(r.stderr)
    assert flag in line
    assert not db.exists(), "nothing was opened"
    assert registry.stats()["total"] == 0, "nothing was asked of the registry"


def test_the_api_refuses_values_the_component_cannot_hold(registry: Registry, tmp_path: Path) -> None:
    from skillsmith_host import SyncRequest, run_sync
    from skillsmith_host.errors import UsageError

    db = tmp_path / "skills.db"
    for bad in ({"page_size": 2**40}, {"retry_budget_ms": -1}, {"timeout_ms": 0}):
        with pytest.raises(UsageError):
            run_sync(SyncRequest(db=db, registry=registry.url, **bad))
    assert not db.exists()
