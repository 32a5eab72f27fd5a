"""A Python host for the Skillsmith sync component (`skillsmith:sync@0.2.0`).

It loads the same `target/skillsmith-sync.wasm` the Rust hosts embed, under
wasmtime-py, and provides its imports: HTTP to the registry's origin only
(`http`), the SQLite catalogue the `skillsmith` CLI reads (`store`), and
logging, progress, sleep and random (`host`). `docs/embedding.md` is the
contract; `host-python/README.md` says how to run it.

    from skillsmith_host import SyncRequest, run_sync
    outcome = run_sync(SyncRequest(db=Path("skills.db"), registry=url))
"""

__version__ = "0.1.0"

from typing import Any

# Resolved on first use (PEP 562), so that `python -m skillsmith_host` can
# say clearly when wasmtime is missing instead of failing on import.
_EXPORTS = {
    "FailureKind": "errors",
    "HostError": "errors",
    "StopToken": "host",
    "Limits": "limits",
    "SyncOutcome": "sync",
    "SyncRequest": "sync",
    "run_sync": "sync",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skillsmith_host' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
