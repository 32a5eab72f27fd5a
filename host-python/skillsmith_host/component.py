"""Loading the sync component under wasmtime-py, and running it confined.

One process-wide engine with epoch interruption (`limits.py`). A component
is compiled once (and cached, see :func:`load`), its imports and exports
are checked before anything of it runs (`grants.py`), and each
`engine.run` gets a fresh `Store` and instance with:

- WASI with nothing in it: no args, no environment, no preopened
  directories, an empty stdin, stdout discarded, stderr kept as a bounded
  tail (it carries the panic message of a trap);
- the memory cap and the time budgets of :class:`~.limits.Limits`;
- the `skillsmith:sync` imports bound to this run's store, HTTP client and
  host callbacks (`imports.py`).

A trap comes back as :class:`~.errors.GuestTrapped`; the caller closes the
history run the guest left open.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import wasmtime
from wasmtime import component as wc

from . import fastpaths, grants
from .errors import ComponentError, GuestTrapped, TrapKind
from .imports import bind_refusals
from .limits import Budget, EpochTicker, LimitExceeded, Limits
from .values import ScheduleConfig, to_record

log = logging.getLogger("skillsmith_host")

CACHE_DIR_ENV = "SKILLSMITH_HOST_CACHE_DIR"

# A binary WebAssembly file starts with `\0asm` and a version; a component's
# is 0x0d with layer 1, a core module's 1 with layer 0.
WASM_MAGIC = b"\0asm"
CORE_MODULE_VERSION = b"\x01\x00\x00\x00"
NOT_A_COMPONENT = "pass --component with the path of a sync component, or rebuild it with scripts/build-component.sh"

_engine: Optional[wasmtime.Engine] = None
_ticker: Optional[EpochTicker] = None


def engine() -> wasmtime.Engine:
    """The process's engine: epoch interruption on, no fuel."""
    global _engine, _ticker
    if _engine is None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        _engine = wasmtime.Engine(config)
        _ticker = EpochTicker(_engine)
    return _engine


def ticker() -> EpochTicker:
    engine()
    assert _ticker is not None
    return _ticker


def _cache_dir() -> Path:
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skillsmith" / "host-python"


def _wasmtime_version() -> str:
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _compile(wasm: bytes, path: Path) -> wc.Component:
    """Compiles `wasm`, through a cache of serialized components keyed by the
    bytes and wasmtime's version (a cached file is only ever this host's own
    output; anything wrong with it means: compile again)."""
    key = hashlib.sha256(wasm + _wasmtime_version().encode()).hexdigest()[:32]
    cached = _cache_dir() / f"skillsmith-sync-{key}.cwasm"
    eng = engine()
    if cached.is_file():
        try:
            return wc.Component.deserialize_file(eng, str(cached))
        except wasmtime.WasmtimeError as e:
            log.debug("ignoring the unusable compiled component %s: %s", cached, e)
    try:
        component = wc.Component(eng, wasm)
    except wasmtime.WasmtimeError as e:
        raise ComponentError(
            f"cannot compile the sync component {path}: {str(e).splitlines()[0]}",
            action="rebuild it with scripts/build-component.sh",
        ) from e
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, delete=False) as out:
            out.write(component.serialize())
        os.replace(out.name, cached)
    except OSError as e:
        log.debug("not caching the compiled component: %s", e)
    return component


@dataclass
class LoadedComponent:
    """A compiled component that passed the checks of `grants.py`."""

    path: Path
    component: wc.Component
    imports: list[str]
    exports: list[str]

    @property
    def engine_export(self) -> str:
        return grants.export_name(self.exports, "skillsmith:sync/engine")

    @property
    def schedule_export(self) -> Optional[str]:
        for name in self.exports:
            if name.split("@", 1)[0] == "skillsmith:sync/schedule":
                return name
        return None


def _check_format(wasm: bytes, path: Path) -> None:
    """Refuses what is not a binary component before wasmtime sees it: it
    would otherwise try a text file as the WebAssembly text format and say
    only "expected `(`"."""
    if not wasm.startswith(WASM_MAGIC):
        raise ComponentError(
            f"{path} is not a WebAssembly component (it does not start as a .wasm file does)",
            action=NOT_A_COMPONENT,
        )
    if wasm[4:8] == CORE_MODULE_VERSION:
        raise ComponentError(
            f"{path} is a core WebAssembly module, not a component (the sync component is "
            "built for wasm32-wasip2)",
            action=NOT_A_COMPONENT,
        )


def load(path: Path) -> LoadedComponent:
    """Reads, compiles and checks the component at `path`; runs none of it."""
    fastpaths.install()
    try:
        wasm = path.read_bytes()
    except OSError as e:
        raise ComponentError(
            f"cannot read the sync component {path}: {e.strerror or e}",
            action="pass --component with a readable .wasm file, or rebuild it with "
            "scripts/build-component.sh",
        ) from e
    _check_format(wasm, path)
    component = _compile(wasm, path)
    kind = component.type
    eng = engine()
    imports = list(kind.imports(eng))
    exports = list(kind.exports(eng))
    grants.check(imports, exports)
    return LoadedComponent(path, component, imports, exports)


class StderrTail:
    """The last `limit` bytes the guest wrote to stderr."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()

    def write(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self.limit:
            del self._data[: len(self._data) - self.limit]

    def text(self) -> str:
        return self._data.decode("utf-8", errors="replace")


Binder = Callable[[wc.LinkerInstance, str, "Call"], None]


class Call:
    """One guest call in a fresh store: what the import wrappers need."""

    def __init__(self, loaded: LoadedComponent, limits: Limits) -> None:
        self.loaded = loaded
        self.limits = limits
        self.budget = Budget(limits)
        self.stderr = StderrTail(limits.stderr_tail_bytes)
        self.store = wasmtime.Store(engine())
        self.store.set_limits(memory_size=limits.memory_bytes)
        wasi = wasmtime.WasiConfig()
        wasi.stderr_custom = self.stderr.write
        self.store.set_wasi(wasi)
        # Until `start`, nothing of the guest runs; keep it from trapping
        # during instantiation.
        self.store.set_epoch_deadline(2**62)

    def instantiate(self, bind: Binder) -> wc.Instance:
        linker = wc.Linker(engine())
        linker.add_wasip2()
        with linker.root() as root:
            for name in self.loaded.imports:
                if name.startswith(grants.OWN_PACKAGE):
                    # Defined under the component's own (compatible) names.
                    with root.add_instance(name) as instance:
                        bind(instance, name.split("@", 1)[0], self)
        try:
            return linker.instantiate(self.store, self.loaded.component)
        except wasmtime.WasmtimeError as e:
            raise ComponentError(
                f"cannot instantiate the sync component {self.loaded.path}: {_root_cause(e)}",
                action="rebuild it with scripts/build-component.sh",
            ) from e

    def func(self, instance: wc.Instance, interface: str, name: str) -> wc.Func:
        index = instance.get_export_index(self.store, interface)
        func = instance.get_func(self.store, instance.get_export_index(self.store, name, index)) if index else None
        if func is None:
            raise ComponentError(f"the sync component does not export {interface}#{name}")
        return func

    def call(self, func: wc.Func, *args: Any) -> Any:
        """Calls `func` under the budgets; a trap becomes GuestTrapped."""
        with ticker():
            self.budget.start(self.store.set_epoch_deadline)
            try:
                return func(self.store, *args)
            except LimitExceeded as e:
                raise GuestTrapped(TrapKind.DEADLINE, e.what, self.stderr.text()) from e
            except wasmtime.ExitTrap as e:
                raise GuestTrapped(
                    TrapKind.EXIT, f"it called wasi:cli/exit (status {e.code})", self.stderr.text()
                ) from e
            except wasmtime.WasmtimeError as e:
                expired = self.budget.expired()
                if expired is not None:
                    raise GuestTrapped(TrapKind.DEADLINE, expired, self.stderr.text()) from e
                log.debug("sync component trap: %s", e)
                raise GuestTrapped(TrapKind.PANIC, _root_cause(e), self.stderr.text()) from e
            except GuestTrapped:
                raise
            except Exception as e:
                # An import of this host failed in a way it did not expect.
                log.debug("host fault during a guest call", exc_info=True)
                raise GuestTrapped(TrapKind.HOST_FAULT, f"{type(e).__name__}: {e}") from e


def _root_cause(e: BaseException) -> str:
    """The last line of wasmtime's message (the cause, without the backtrace)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def decide(loaded: LoadedComponent, config: ScheduleConfig, now_ms: int, seed: int) -> Optional[int]:
    """`schedule.decide` in a fresh store of its own; `next-ms`, or None.

    It is pure and calls no imports: they are bound to functions that trap.
    A component without the export decides nothing (None).
    """
    interface = loaded.schedule_export
    if interface is None:
        return None
    call = Call(loaded, Limits(max_guest_run_s=5.0, max_guest_total_s=5.0, max_run_s=10.0))

    instance = call.instantiate(lambda linker_instance, name, _call: bind_refusals(linker_instance, name))
    func = call.func(instance, interface, "decide")
    decision = call.call(func, to_record(config), now_ms, seed)
    return getattr(decision, "next-ms")
