"""One sync, end to end: :func:`run_sync` (the CLI's and the API's entry point).

In the order `runtime/src/sync.rs` does it: check the registry URL, load
and check the component (before touching the catalogue: a component that
cannot load must not take the lease or leave a history row), open the
catalogue (read-only for a dry run), run `engine.run` in a fresh instance,
close any run the guest left open (a trap), release the lease, and return
the report or raise a :class:`~.errors.HostError`.

A cancelled sync is not a failure: it returns a report with
`cancelled = True`.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from wasmtime.component import Record, Variant

from . import checkout, clock, component, imports
from .errors import FailureKind, GuestTrapped, HostError, SyncFailed, UsageError
from .host import HostImports, ProgressCallback, StopToken
from .http import DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS, HttpClient, Policy
from .limits import Limits
from .store import OtherSync, Store, StoreFailure, open_catalogue
from .values import (
    ScheduleConfig,
    SyncOptions,
    SyncReport,
    http_error_from,
    report_from,
    store_error_from,
    to_record,
)

DEFAULT_REGISTRY = "https://api.skillsmith.app/functions/v1"

log = logging.getLogger("skillsmith_host")

# `sync-options.page-size` is a u32 and `retry-budget-ms` a u64: wasmtime-py
# would wrap a value outside them silently.
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1

# One scheduling-jitter seed per process, as the Rust host keeps: a fresh
# seed per decision would let the earliest draw win and shrink the spread.
_JITTER_SEED = secrets.randbits(64)


@dataclass
class SyncRequest:
    """What to sync, and how."""

    db: Path
    registry: str = DEFAULT_REGISTRY
    api_key: Optional[str] = None
    force: bool = False
    dry_run: bool = False
    page_size: int = 0
    mode: Optional[str] = None  # None: discover; 'changes-feed' or 'search'
    retry_budget_ms: int = 120_000
    component: Optional[Path] = None
    # The text passed to the guest as `sync-options.registry`, when it must
    # differ from the registry URL whose origin is allowed (the hostile test
    # components read their behaviour from it).
    engine_registry: Optional[str] = None
    limits: Limits = field(default_factory=Limits)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    stop: StopToken = field(default_factory=StopToken)
    on_progress: Optional[ProgressCallback] = None


@dataclass
class SyncOutcome:
    """A completed (or cancelled) sync."""

    report: SyncReport
    dry_run: bool
    duration_s: float
    stats: imports.Stats


def _sync_error(value: Variant, other_sync: Optional[OtherSync]) -> SyncFailed:
    if value.tag == "unreachable":
        return SyncFailed(value.tag, http=http_error_from(value.payload))
    if value.tag == "store":
        return SyncFailed(value.tag, store=store_error_from(value.payload))
    if value.tag == "busy":
        # `sync-error.busy` has no text; the store knows whom begin-run met.
        return SyncFailed(value.tag, text=None if other_sync is None else str(other_sync))
    return SyncFailed(value.tag, text=value.payload)


def _check_request(request: SyncRequest) -> None:
    """Refuses values the component's types or the limits cannot hold."""
    problems = [
        (0 <= request.page_size <= _U32_MAX, f"page size {request.page_size}"),
        (0 <= request.retry_budget_ms <= _U64_MAX, f"retry budget {request.retry_budget_ms} ms"),
        (request.timeout_ms >= 1, f"timeout {request.timeout_ms} ms"),
        (request.max_body_bytes >= 1, f"body cap {request.max_body_bytes} bytes"),
    ]
    for ok, what in problems:
        if not ok:
            raise UsageError(f"the {what} is out of range")


def run_sync(request: SyncRequest) -> SyncOutcome:
    """Runs one sync; raises a HostError subclass when it did not complete."""
    started = time.monotonic()
    _check_request(request)
    registry = request.registry.strip().rstrip("/")
    policy = Policy.for_registry(
        registry,
        max_body_bytes=request.max_body_bytes,
        default_timeout_ms=min(request.timeout_ms, MAX_TIMEOUT_MS),
        max_timeout_ms=min(request.timeout_ms, MAX_TIMEOUT_MS),
    )
    loaded = component.load(checkout.component_path(request.component))
    http = HttpClient(policy, request.api_key)
    try:
        conn = open_catalogue(request.db, read_only=request.dry_run)
    except BaseException:
        http.close()
        raise

    def next_sync(config: ScheduleConfig, now_ms: int) -> Optional[int]:
        return component.decide(loaded, config, now_ms, _JITTER_SEED)

    store = Store(conn, read_only=request.dry_run, scheduler=next_sync)
    call = component.Call(loaded, request.limits)
    host = HostImports(
        request.stop,
        on_progress=request.on_progress,
        on_idle=store.heartbeat,
        on_stop_seen=call.budget.stop_requested,
    )
    run = imports.RunImports(store=store, http=http, host=host)
    options = SyncOptions(
        registry=request.engine_registry if request.engine_registry is not None else registry,
        force=request.force,
        dry_run=request.dry_run,
        page_size=request.page_size,
        mode=request.mode,
        now_ms=clock.now_ms(),
        retry_budget_ms=request.retry_budget_ms,
    )
    result: object = None
    failure: Optional[HostError] = None
    try:
        instance = call.instantiate(lambda inst, name, c: imports.bind(inst, name, c, run))
        func = call.func(instance, loaded.engine_export, "run")
        log.info("running the sync component %s", loaded.path)
        result = call.call(func, to_record(options))
    except HostError as e:
        failure = e
    finally:
        run.abandon_all()
        http.close()
        try:
            _close_open_run(store, result, failure)
        finally:
            store.close()
    if failure is not None:
        raise failure
    if isinstance(result, Variant):
        raise _sync_error(result, store.other_sync)
    assert isinstance(result, Record)
    return SyncOutcome(
        report=report_from(result),
        dry_run=request.dry_run,
        duration_s=time.monotonic() - started,
        stats=run.stats,
    )


def _close_open_run(store: Store, result: object, failure: Optional[HostError]) -> None:
    """Closes the run a guest left open, so history never shows a dead run as
    `running`: after a trap, or a guest that forgot.

    If the catalogue refuses that too (still locked, the disk full), the
    user hears of the sync's own failure, not of this one: the run stays
    `running` until the next sync takes the lease and closes it as
    interrupted (`lease.py`), as the Rust host leaves it."""
    if store.open_run is None:
        store.abandon_open_run("", FailureKind.COMPONENT)  # releases a lease, if any
        return
    if failure is not None:
        why, kind = failure.message, failure.kind
        if isinstance(failure, GuestTrapped):
            kind = FailureKind.COMPONENT
    elif isinstance(result, Variant):
        error = _sync_error(result, store.other_sync)
        why, kind = f"{error.message}; {error.action}", error.kind
    else:
        why, kind = "the sync engine returned without closing its run", FailureKind.COMPONENT
    try:
        store.abandon_open_run(why, kind)
    except StoreFailure as e:
        log.warning("could not close the interrupted sync run: %s", e.error)
    except HostError as e:
        # The component's `schedule.decide`, asked for the next sync time, failed.
        log.warning("could not close the interrupted sync run: %s", e.message)
