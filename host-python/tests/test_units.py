"""The pieces that need no registry: the version rule, the grants, the shared
SQL file, and the list<u8> fast path against wasmtime-py's own code."""

from __future__ import annotations

import ctypes
import sqlite3

import pytest
import wasmtime
from wasmtime import _ffi as ffi

from skillsmith_host import fastpaths, grants, statements
from skillsmith_host.checkout import shared_sql
from skillsmith_host.errors import ComponentIncompatible, ComponentUngranted


def test_semver_rule_is_wasmtimes() -> None:
    assert grants.semver_compatible("0.2.0")
    assert grants.semver_compatible("0.2.7")
    assert not grants.semver_compatible("0.3.0")
    assert not grants.semver_compatible("0.1.0")
    assert not grants.semver_compatible("1.2.0")
    assert grants.semver_compatible("1.4.0", "1.2.0")


def test_a_patch_release_loads_and_a_missing_engine_does_not() -> None:
    grants.check(["skillsmith:sync/host@0.2.1", "wasi:io/poll@0.2.6"], ["skillsmith:sync/engine@0.2.1"])
    with pytest.raises(ComponentIncompatible, match=r"exports \[skillsmith:sync/schedule@0.2.0\]"):
        grants.check([], ["skillsmith:sync/schedule@0.2.0"])


def test_only_io_and_cli_wasi_is_granted() -> None:
    asks = ["wasi:io/poll@0.2.6", "wasi:cli/stderr@0.2.3", "wasi:clocks/wall-clock@0.2.6",
            "wasi:random/random@0.2.6", "wasi:cli/run@0.2.6", "wasi:iox/poll@0.2.6", "example:evil/x"]
    assert grants.ungranted(asks) == asks[2:]
    with pytest.raises(ComponentUngranted) as refused:
        grants.check(asks, ["skillsmith:sync/engine@0.2.0"])
    assert refused.value.imports == asks[2:]


def test_every_shared_statement_prepares_on_a_fresh_catalogue() -> None:
    named = statements.parse(shared_sql("host_store.sql"))
    assert len(named) >= 40
    c = sqlite3.connect(":memory:")
    c.executescript(shared_sql("catalogue.sql"))
    c.execute("ALTER TABLE skills ADD COLUMN source TEXT")  # upstream's, for mark_upstream_local
    c.execute("CREATE TABLE skill_versions (id INTEGER PRIMARY KEY, skill_id TEXT, content_hash TEXT, "
              "recorded_at INTEGER, UNIQUE (skill_id, content_hash))")
    for name, sql in named.items():
        # EXPLAIN compiles without running; every named parameter bound.
        params = {p: None for p in _params(sql)}
        c.execute("EXPLAIN " + sql, params)


def _params(sql: str) -> set[str]:
    import re

    return set(re.findall(r"(?<!:):([a-z_]+)", sql))


def test_the_shared_file_names_each_statement_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        statements.parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def _lowered_by(convert, data: bytes) -> bytes:
    """The C values one conversion writes for `data`, as (kind, u8) pairs."""
    store = wasmtime.Store()
    out = ffi.wasmtime_component_val_t()
    convert(store, data, ctypes.pointer(out))
    try:
        vals = out.of.list
        return bytes(b for i in range(vals.size) for b in (vals.data[i].kind, vals.data[i].of.u8))
    finally:
        ffi.wasmtime_component_val_delete(ctypes.byref(out))


def test_the_bytes_fast_path_writes_what_wasmtime_py_writes() -> None:
    from wasmtime.component import _types

    data = bytes(range(256)) * 40 + b"\x00\xff"
    list_u8 = _bytes_list_type()
    fastpaths.uninstall()
    try:
        slow = _lowered_by(lambda s, v, p: _types.ListType.convert_to_c(list_u8, s, v, p), data)
    finally:
        fastpaths.install()
    fast = _lowered_by(lambda s, v, p: fastpaths.lower_bytes(v, p), data)
    assert fast == slow
    assert _lowered_by(lambda s, v, p: fastpaths.lower_bytes(v, p), b"") == b""


def _bytes_list_type():
    """A `list<u8>` type object, taken from the real component's `http.response`."""
    from skillsmith_host import component
    from conftest import COMPONENT

    loaded = component.load(COMPONENT)
    engine = component.engine()
    http = loaded.component.type.imports(engine)["skillsmith:sync/http@0.2.0"]
    wait = http.ty.exports(engine)["[method]pending.wait"].ty
    response = wait.result.ok
    return dict(response.fields)["body"]


def test_the_component_is_found_from_inside_a_checkout(tmp_path) -> None:
    from conftest import COMPONENT, REPO
    from skillsmith_host import checkout
    from skillsmith_host.errors import ComponentNotFound

    assert checkout.find_checkout(cwd=REPO / "wit") == REPO
    assert checkout.component_path(COMPONENT) == COMPONENT
    with pytest.raises(ComponentNotFound, match="does not exist") as missing:
        checkout.component_path(tmp_path / "nothing.wasm")
    assert "scripts/build-component.sh" in missing.value.action
