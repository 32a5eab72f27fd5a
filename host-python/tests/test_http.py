"""The network side: what reaches the registry, and how failures read."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import Registry, assert_same, catalogue, python_sync


def test_the_host_adds_the_key_and_asks_for_gzip(registry: Registry, tmp_path: Path, home: Path) -> None:
    db = tmp_path / "skills.db"
    r = python_sync(db, registry.url, home, "--api-key", "py-host-key")
    assert r.code == 0, r.stderr
    recent = registry.stats()["recent"]
    assert recent and all(q["api_key"] == "py-host-key" for q in recent)
    assert all("gzip" in (q["accept_encoding"] or "") for q in recent)
    assert all(q["authorization"] is None for q in recent)
    # The same from the environment.
    registry.reset_stats()
    assert python_sync(db, registry.url, home, SKILLSMITH_API_KEY="env-key").code == 0
    assert {q["api_key"] for q in registry.stats()["recent"]} == {"env-key"}


def test_compressed_and_plain_registries_give_the_same_catalogue(tmp_path: Path, home: Path) -> None:
    plain = Registry("--no-compression")
    try:
        db = tmp_path / "plain.db"
        assert python_sync(db, plain.url, home).code == 0
        assert_same(catalogue(db), plain.snapshot(), "catalogue and uncompressed registry")
        stats = plain.stats()
        assert stats["wire_bytes"] >= stats["body_bytes"]
    finally:
        plain.stop()


def test_a_port_with_nothing_listening_is_unreachable(tmp_path: Path, home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = python_sync(tmp_path / "skills.db", f"http://127.0.0.1:{port}/functions/v1", home,
                    "--retry-budget", "1")
    assert r.code == 3, r.stderr
    assert "could not reach the registry: no connection could be made" in r.stderr
    assert r.stderr.count("error:") == 1


def test_a_malformed_registry_url_is_a_usage_error(tmp_path: Path, home: Path) -> None:
    for url, says in [
        ("not a url", "is not a valid URL"),
        ("ftp://example.com/x", "only http:// and https://"),
        ("http://user:pw@127.0.0.1:1/functions/v1", "carries a user name or password"),
        ("http://127.0.0.1:99999/x", "is not a valid URL"),
    ]:
        r = python_sync(tmp_path / "skills.db", url, home)
        assert r.code == 2, f"{url}: {r.stderr}"
        assert says in r.stderr, f"{url}: {r.stderr}"
    assert not (tmp_path / "skills.db").exists()


def test_a_redirect_is_not_followed(registry: Registry, tmp_path: Path, home: Path) -> None:
    registry.fault(kind="redirect", location="http://127.0.0.1:9/stolen", path="/health")
    r = python_sync(tmp_path / "skills.db", registry.url, home)
    assert r.code == 3, r.stderr
    assert "redirect to http://127.0.0.1:9/stolen" in r.stderr
    assert all(q["path"] != "/stolen" for q in registry.stats()["recent"])


def test_a_gzip_bomb_is_too_large(registry: Registry, tmp_path: Path, home: Path) -> None:
    registry.fault(kind="gzip_bomb", decoded_bytes=64 * 1024 * 1024, path="/health")
    r = python_sync(tmp_path / "skills.db", registry.url, home)
    assert r.code == 5, r.stderr
    assert "larger than 16 MiB" in r.stderr


def test_a_body_over_the_cap_is_too_large(registry: Registry, tmp_path: Path, home: Path) -> None:
    r = python_sync(tmp_path / "skills.db", registry.url, home, "--max-body-bytes", "4096")
    assert r.code == 5, r.stderr
    assert "a response was larger than 1 MiB" in r.stderr


def test_a_truncated_body_is_a_broken_connection(registry: Registry, tmp_path: Path, home: Path) -> None:
    registry.fault(kind="truncate", path="/health")
    r = python_sync(tmp_path / "skills.db", registry.url, home, "--retry-budget", "1")
    assert r.code == 3, r.stderr
    assert "the connection broke" in r.stderr or "cut short" in r.stderr


def test_a_hanging_registry_times_out(registry: Registry, tmp_path: Path, home: Path) -> None:
    registry.fault(kind="hang", path="/health")
    r = python_sync(tmp_path / "skills.db", registry.url, home, "--timeout", "1", "--retry-budget", "1")
    assert r.code == 3, r.stderr
    assert "the request timed out" in r.stderr


def test_a_wrong_key_is_unauthorised(tmp_path: Path, home: Path) -> None:
    reg = Registry("--api-key", "right")
    try:
        r = python_sync(tmp_path / "skills.db", reg.url, home, "--api-key", "wrong")
        assert r.code == 4, r.stderr
        assert "SKILLSMITH_API_KEY" in r.stderr
        assert python_sync(tmp_path / "skills.db", reg.url, home, "--api-key", "right").code == 0
    finally:
        reg.stop()
