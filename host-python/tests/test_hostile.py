"""Hostile components (`tests/hostile/`) are stopped by their limits or
refused at load, with a clear error, the catalogue left as it was, and the
same process can then run a normal sync."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from conftest import COMPONENT, HOSTILE, Registry, assert_same, catalogue, history, integrity, python_sync

HOSTILE_WASM = HOSTILE / "skillsmith-hostile.wasm"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hostile(db: Path, reg: Registry, home: Path, behaviour: str, *args: str):
    return python_sync(
        db, reg.url, home, "--component", str(HOSTILE_WASM), "--engine-registry", behaviour, *args
    )


@pytest.mark.parametrize(
    ("behaviour", "limits", "says"),
    [
        ("spin", ["--max-guest-run", "1"], "it ran 1 s without calling the host"),
        ("spin-calling-host", ["--max-guest-total", "1.5"], "it computed for over 1.5 s in this run"),
        ("grow", ["--memory-mib", "32"], "memory allocation of"),
        ("panic", [], "hostile guest: deliberate panic"),
        ("stderr-flood 4", [], "hostile guest: end of flood"),
    ],
)
def test_a_misbehaving_guest_is_stopped_and_the_catalogue_kept(
    behaviour: str, limits: list[str], says: str, registry: Registry, tmp_path: Path, home: Path
) -> None:
    db = tmp_path / "skills.db"
    assert python_sync(db, registry.url, home).code == 0
    before = catalogue(db)
    runs = history(db)
    r = hostile(db, registry, home, behaviour, *limits)
    assert r.code == 8, r.stderr
    assert r.stderr.startswith("error: the sync component crashed"), r.stderr
    assert says in r.stderr
    assert "to fix:" in r.stderr
    assert "Traceback" not in r.stderr
    assert_same(catalogue(db), before, "catalogue before and after")
    assert history(db) == runs, "no run opened, none left running"
    assert integrity(db) == "ok"


def test_garbage_store_calls_are_refused_and_roll_back(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    r = hostile(db, registry, home, "garbage", "--json")
    assert r.code == 0, r.stderr
    lines = dict(w.split(" => ", 1) for w in r.doc["warnings"])
    for step in ("apply-page before begin-run", "second begin-run", "apply-page to another run",
                 "apply-page with an empty id", "apply-page huge with a bad last row",
                 "finish-run of another run", "apply-page after finish-run", "second finish-run"):
        assert lines[step].startswith("err "), f"{step}: {lines[step]}"
    assert lines["second begin-run"].startswith("err StoreError::RunOpen")
    assert lines["finish-run"] == "ok ()"
    assert history(db) == [("failed", "hostile guest: garbage calls")]
    assert catalogue(db) == {}, "the huge page with a bad last row rolled back whole"


def test_a_trap_inside_a_run_is_closed_by_the_host(registry: Registry, tmp_path: Path, home: Path) -> None:
    # Too little memory for its huge page: it traps after begin-run.
    db = tmp_path / "skills.db"
    r = hostile(db, registry, home, "garbage", "--memory-mib", "4")
    assert r.code == 8, r.stderr
    assert "memory allocation of" in r.stderr
    [(status, error)] = history(db)
    assert status == "failed" and error.startswith("the sync component crashed")
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM sync_lease").fetchone()[0] == 0
    # The next run of the real component is not blocked by it.
    assert python_sync(db, registry.url, home).code == 0
    assert_same(catalogue(db), registry.snapshot(), "catalogue and registry")


def test_ambient_authority_is_refused_at_load(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    registry.reset_stats()
    r = python_sync(db, registry.url, home, "--component", str(HOSTILE / "skillsmith-hostile-ambient.wasm"))
    assert r.code == 8, r.stderr
    for asked in ("wasi:clocks/wall-clock", "wasi:filesystem/preopens", "wasi:sockets/tcp"):
        assert asked in r.stderr
    assert "which this host does not grant" in r.stderr
    assert not db.exists(), "refused before the catalogue was opened"
    assert registry.stats()["total"] == 0, "refused before any request"


def test_a_future_contract_is_refused_naming_both_versions(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    assert python_sync(db, registry.url, home).code == 0
    before = digest(db)
    r = python_sync(db, registry.url, home, "--component", str(HOSTILE / "skillsmith-hostile-future.wasm"))
    assert r.code == 8, r.stderr
    assert "skillsmith:sync@0.2.0" in r.stderr
    assert "skillsmith:sync/engine@0.3.0" in r.stderr
    assert digest(db) == before


def test_requests_outside_the_grant_are_denied(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    cases = {
        f"fetch http://127.0.0.1:{registry.port + 1}/functions/v1/health": "is not allowed",
        "fetch file:///etc/passwd": "is not http(s)",
        f"fetch {registry.url.replace('http://', 'http://u:p@')}/health": "carries credentials",
        f"fetch {registry.url}/health X-Api-Key=stolen": "may not be set by the sync component",
        f"fetch {registry.url}/health authorization=x": "may not be set by the sync component",
        f"fetch {registry.url}/health cookie=x": "may not be set by the sync component",
        f"fetch {registry.url}/health Host=evil": "may not be set by the sync component",
    }
    registry.reset_stats()
    for behaviour, says in cases.items():
        r = hostile(db, registry, home, behaviour)
        assert r.code == 8, f"{behaviour}: {r.stderr}"
        assert "the host refused the request" in r.stderr and says in r.stderr, f"{behaviour}: {r.stderr}"
    assert registry.stats()["total"] == 0, "nothing denied reached the network"
    ok = hostile(db, registry, home, f"fetch {registry.url}/health if-none-match=x", "--json")
    assert ok.code == 0, ok.stderr
    assert ok.doc["warnings"][0].startswith("fetch => status 200")


def test_a_stopped_guest_leaves_the_process_able_to_sync(registry: Registry, tmp_path: Path) -> None:
    from skillsmith_host import Limits, SyncRequest, run_sync
    from skillsmith_host.errors import GuestTrapped

    db = tmp_path / "skills.db"
    with pytest.raises(GuestTrapped) as trapped:
        run_sync(SyncRequest(db=db, registry=registry.url, component=HOSTILE_WASM,
                             engine_registry="spin", limits=Limits(max_guest_run_s=0.5)))
    assert "without calling the host" in trapped.value.message
    outcome = run_sync(SyncRequest(db=db, registry=registry.url, component=COMPONENT))
    assert outcome.report.added == len(registry.snapshot())
    assert_same(catalogue(db), registry.snapshot(), "catalogue and registry")


def test_a_file_that_is_not_a_component_is_refused_clearly(registry: Registry, tmp_path: Path, home: Path) -> None:
    text = tmp_path / "notes.wasm"
    text.write_text("these are notes, not WebAssembly\n")
    core = tmp_path / "core.wasm"
    core.write_bytes(b"\0asm\x01\x00\x00\x00")  # an empty core module
    cases = {
        text: "is not a WebAssembly component",
        core: "is a core WebAssembly module, not a component",
        tmp_path: "is a directory, not a .wasm file",
        tmp_path / "missing.wasm": "does not exist",
    }
    db = tmp_path / "skills.db"
    for path, says in cases.items():
        r = python_sync(db, registry.url, home, "--component", str(path))
        assert r.code == 8, f"{path}: {r.stderr}"
        [line] = [l for l in r.stderr.splitlines() if l.startswith("error:")]
        assert says in line, f"{path}: {r.stderr}"
        assert "to fix:" in r.stderr and "Traceback" not in r.stderr
    assert not db.exists(), "refused before the catalogue was opened"
    assert registry.stats()["total"] == 0


def test_a_second_signal_quits_at_once_while_the_guest_computes(
    registry: Registry, tmp_path: Path, home: Path
) -> None:
    """While the guest runs no import, Python would run a signal handler only
    when it returns (here: after its 30 s budget); the second signal must
    still end the process at once, as the first says it will."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO, env

    budget = 30.0
    proc = subprocess.Popen(
        [sys.executable, "-m", "skillsmith_host", "sync", "--db", str(tmp_path / "skills.db"),
         "--registry", registry.url, "--component", str(HOSTILE_WASM), "--engine-registry", "spin",
         "--max-guest-run", str(budget), "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=env(home), cwd=str(REPO),
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "running the sync component" in line:
            break
    else:
        raise AssertionError(f"the host ended before running the guest (exit {proc.wait()})")
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    # Two signals sent back to back may merge into one (POSIX does not queue
    # them): the second follows the host's answer to the first, as a
    # person's second Ctrl-C does.
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "stopping after the current page" in line:
            break
    took = time.monotonic() - started
    assert took < budget / 2, f"the first signal was answered after {took:.1f} s: {''.join(seen)}"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=budget + 30)
    took = time.monotonic() - started
    assert proc.returncode == 130, f"exit {proc.returncode} after {took:.1f} s: {''.join(seen)}{err}"
    assert took < budget / 2, f"it waited {took:.1f} s for the guest"
    assert "Traceback" not in "".join(seen) + err
