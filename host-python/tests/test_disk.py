"""A full disk and a read-only file system, on a small tmpfs: each is told as
what it is (exit 6, the right thing to do), and the catalogue is left as it
was. Needs root (to mount); skipped otherwise."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import Registry, history, integrity, python_sync, rust


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """`tmpfs("8m")`: a fresh tmpfs of that size, unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Fills the file system of `folder` to the last byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * size) > 0:
                    pass
            except OSError:
                pass  # full at this size; try a smaller one
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_told_as_full_not_as_damage(
    registry: Registry, tmp_path: Path, home: Path, tmpfs: Callable[[str], Path]
) -> None:
    # SQLite cannot even map the WAL index (-shm) of a full disk: that is
    # SQLITE_IOERR_SHMSIZE, not a damaged file.
    disk = tmpfs("8m")
    db = disk / "skills.db"
    synced = tmp_path / "synced.db"
    assert python_sync(synced, registry.url, home).code == 0
    shutil.copyfile(synced, db)
    before = digest(db)
    filler = _fill(disk)
    r = python_sync(db, registry.url, home, "--json")
    assert r.code == 6, r.stderr
    assert r.doc["error"]["kind"] == "no-space", r.doc
    assert "the disk is full" in r.stderr and "to fix: free disk space" in r.stderr
    assert "delete" not in r.stderr, "never advise deleting a catalogue that is only out of room"
    assert digest(db) == before
    rs = rust(home, "--db", str(db), "--registry", registry.url, "sync")
    assert rs.code == 6 and "the disk is full" in rs.stderr, "the Rust CLI says the same"
    filler.unlink()
    assert python_sync(db, registry.url, home).code == 0, "and it syncs once there is room"
    assert integrity(db) == "ok"


def test_a_read_only_file_system_is_told_as_read_only(
    registry: Registry, tmp_path: Path, home: Path, tmpfs: Callable[[str], Path]
) -> None:
    disk = tmpfs("8m")
    db = disk / "skills.db"
    assert python_sync(db, registry.url, home).code == 0
    runs = history(db)
    done = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before = digest(db)
    for target in (db, disk / "new.db", disk / "missing-folder" / "skills.db"):
        r = python_sync(target, registry.url, home, "--json")
        assert r.code == 6, f"{target}: {r.stderr}"
        assert r.doc["error"]["kind"] == "read-only", f"{target}: {r.doc}"
        assert "to fix: make the catalogue and its folder writable" in r.stderr, r.stderr
    # Reading needs no writing: a dry run still reports.
    dry = python_sync(db, registry.url, home, "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    assert dry.doc["added"] == 0
    assert digest(db) == before and history(db) == runs


def test_a_folder_this_user_may_not_enter(registry: Registry, tmp_path: Path, home: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root enters every folder")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        for args in ((), ("--dry-run",)):
            r = python_sync(locked / "skills.db", registry.url, home, *args)
            assert r.code == 6, r.stderr
            assert "Traceback" not in r.stderr
            assert r.stderr.count("error:") == 1
    finally:
        locked.chmod(0o700)
