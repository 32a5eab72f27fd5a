"""What a component may import, and which contract version it must speak.

Checked on the component's type (wasmtime-py `Component.type.imports(engine)`
and `.exports(engine)`, the names exactly as the component declares them),
before it is instantiated or any of its code runs:

- **Grants.** wasmtime-py's only WASI is `Linker.add_wasip2()`, which links
  all of WASI 0.2: clocks, random, files, sockets. This host therefore
  refuses, at load, a component that imports anything but
  `skillsmith:sync/*` and the WASI interfaces the Rust standard library
  needs to start (the list of `sandbox/src/grants.rs`, any `0.2.x`): linked
  or not, the guest cannot reach what it does not import.
- **Version** (docs/embedding.md §2). Every `skillsmith:sync/...` name it
  imports or exports must be semver-compatible with 0.2.0 (same major, and
  while that is 0 the same minor), and it must export
  `skillsmith:sync/engine`. The error names both sides.
"""

from __future__ import annotations

from typing import Iterable

from .errors import ComponentIncompatible, ComponentUngranted

WIT_VERSION = "0.2.0"
WIT_PACKAGE = f"skillsmith:sync@{WIT_VERSION}"
ENGINE_EXPORT = f"skillsmith:sync/engine@{WIT_VERSION}"
SCHEDULE_EXPORT = f"skillsmith:sync/schedule@{WIT_VERSION}"
OWN_PACKAGE = "skillsmith:sync/"

# `sandbox/src/grants.rs` GRANTED_WASI: wasi:io and wasi:cli, without versions.
GRANTED_WASI = frozenset(
    {
        "wasi:io/error",
        "wasi:io/poll",
        "wasi:io/streams",
        "wasi:cli/environment",
        "wasi:cli/exit",
        "wasi:cli/stdin",
        "wasi:cli/stdout",
        "wasi:cli/stderr",
        "wasi:cli/terminal-input",
        "wasi:cli/terminal-output",
        "wasi:cli/terminal-stdin",
        "wasi:cli/terminal-stdout",
        "wasi:cli/terminal-stderr",
    }
)


def _unversioned(name: str) -> str:
    return name.split("@", 1)[0]


def _version(name: str) -> str:
    return name.rsplit("@", 1)[1] if "@" in name else ""


def semver_compatible(version: str, host: str = WIT_VERSION) -> bool:
    """Compatibility as wasmtime's linker applies it: same major, and for 0.x
    the same minor too (0.2.1 may stand in for 0.2.0, 0.3.0 may not)."""
    a, b = version.split("."), host.split(".")
    if len(a) < 2 or len(b) < 2:
        return False
    return a[0] == b[0] and (a[0] != "0" or a[1] == b[1])


def ungranted(imports: Iterable[str]) -> list[str]:
    """The imports, in order, that are neither this contract's nor granted WASI."""
    return [
        name
        for name in imports
        if not name.startswith(OWN_PACKAGE) and _unversioned(name) not in GRANTED_WASI
    ]


def check(imports: list[str], exports: list[str]) -> None:
    """Refuses a component this host must not run, naming what is wrong."""
    own_imports = [n for n in imports if n.startswith(OWN_PACKAGE)]
    own_exports = [n for n in exports if n.startswith(OWN_PACKAGE)]
    foreign = [n for n in own_imports + own_exports if not semver_compatible(_version(n))]
    has_engine = any(_unversioned(n) == _unversioned(ENGINE_EXPORT) for n in own_exports)
    if foreign or not has_engine:
        raise ComponentIncompatible(
            "the sync component does not match this host: the host implements "
            f"{WIT_PACKAGE} and needs the export {ENGINE_EXPORT}; the component exports "
            f"[{', '.join(own_exports)}] and imports [{', '.join(own_imports)}]",
            action="use the component built from this checkout (scripts/build-component.sh), "
            "or a host for the component's version",
        )
    refused = ungranted(imports)
    if refused:
        raise ComponentUngranted(
            f"the sync component asks for {', '.join(refused)}, which this host does not grant: "
            f"a sync component may import only {WIT_PACKAGE}, wasi:io and wasi:cli "
            "(see docs/embedding.md)",
            refused,
        )


def export_name(exports: list[str], interface: str) -> str:
    """The versioned name under which the component exports `interface`
    (`skillsmith:sync/engine`), as checked compatible by :func:`check`."""
    for name in exports:
        if _unversioned(name) == interface:
            return name
    raise ComponentIncompatible(f"the sync component does not export {interface}")
