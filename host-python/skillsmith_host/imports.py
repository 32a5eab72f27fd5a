"""Binds the `skillsmith:sync` imports of one run into a wasmtime-py linker.

Each import is a Python function `f(store_context, *args)`. The wrapper
around it (:func:`_guarded`) accounts the guest's time budgets on the way in
and re-arms the epoch deadline on the way out, and turns the store's and
the network's failures into the `err` values the guest expects. Any other
exception (a budget that ran out, a bug of this host) propagates and traps
the guest; wasmtime-py re-raises it from the guest call.

`http.pending` is a host resource: `send` returns `own<pending>` for an
integer `rep` that indexes this run's table of requests in flight; the
resource's destructor (the guest dropped it) abandons the request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union

import wasmtime
from wasmtime import component as wc

from .errors import HttpErrorValue
from .host import HostImports
from .http import HttpClient, _InFlight
from .store import Store, StoreFailure
from .values import (
    http_error,
    outcome_from,
    page_from,
    progress_from,
    request_from,
    store_error,
    to_record,
)

if TYPE_CHECKING:
    from .component import Call

PENDING_RESOURCE = 1


@dataclass
class Stats:
    """What the imports did in one run."""

    imports: int = 0
    store_s: float = 0.0
    http_wait_s: float = 0.0
    requests: int = 0


@dataclass
class RunImports:
    """The implementations behind one run's imports."""

    store: Store
    http: HttpClient
    host: HostImports
    stats: Stats = field(default_factory=Stats)
    _pending: dict[int, Union[_InFlight, HttpErrorValue, None]] = field(default_factory=dict)
    _next_rep: int = 1

    def open_request(self, state: Union[_InFlight, HttpErrorValue]) -> int:
        rep = self._next_rep
        self._next_rep += 1
        self._pending[rep] = state
        return rep

    def take_request(self, rep: int) -> Union[_InFlight, HttpErrorValue, None]:
        """The request's state, once; None after it was taken (or is unknown)."""
        state = self._pending.get(rep)
        if rep in self._pending:
            self._pending[rep] = None
        return state

    def drop_request(self, rep: int) -> None:
        state = self._pending.pop(rep, None)
        if isinstance(state, _InFlight):
            state.abandon()

    def abandon_all(self) -> None:
        for rep in list(self._pending):
            self.drop_request(rep)


Impl = Callable[..., Any]


def _guarded(call: "Call", impl: Impl, timer: Callable[[float], None] = lambda s: None) -> Impl:
    budget = call.budget

    def run(ctx: Any, *args: Any) -> Any:
        budget.enter_import()
        started = time.perf_counter()
        try:
            result = impl(*args)
        except StoreFailure as e:
            result = store_error(e.error)
        finally:
            timer(time.perf_counter() - started)
        budget.leave_import(lambda ticks: wasmtime.Store.set_epoch_deadline(ctx, ticks))
        return result

    return run


def bind(instance: wc.LinkerInstance, interface: str, call: "Call", run: RunImports) -> None:
    """Defines the functions of `interface` (unversioned name) on `instance`."""
    stats = run.stats

    def count(impl: Impl) -> Impl:
        def counted(*args: Any) -> Any:
            stats.imports += 1
            return impl(*args)

        return counted

    def in_store(seconds: float) -> None:
        stats.store_s += seconds

    def add(name: str, impl: Impl, timer: Callable[[float], None] = lambda s: None) -> None:
        instance.add_func(name, _guarded(call, count(impl), timer))

    if interface == "skillsmith:sync/store":
        store = run.store
        add("read-state", lambda: to_record(store.read_state()), in_store)
        add("local-versions", lambda ids: to_record(store.local_versions(list(ids))), in_store)
        add("registry-ids", lambda after, limit: store.registry_ids(after, limit), in_store)
        add("registry-rows", lambda ids: to_record(store.registry_rows(list(ids))), in_store)
        add("begin-run", store.begin_run, in_store)
        add("apply-page", lambda r, page: store.apply_page(r, page_from(page)), in_store)
        add("finish-run", lambda r, outcome: store.finish_run(r, outcome_from(outcome)), in_store)
    elif interface == "skillsmith:sync/http":
        _bind_http(instance, call, run, add)
    elif interface == "skillsmith:sync/host":
        host = run.host
        add("log", host.log)
        add("progress", lambda report: host.progress(progress_from(report)))
        add("sleep", host.sleep)
        add("random", host.random)
    # skillsmith:sync/types has types only: nothing to define.


def _bind_http(
    instance: wc.LinkerInstance, call: "Call", run: RunImports, add: Callable[..., None]
) -> None:
    stats = run.stats

    def dropped(_ctx: Any, rep: int) -> None:
        run.drop_request(rep)

    instance.add_resource("pending", wc.ResourceType.host(PENDING_RESOURCE), dropped)

    def send(request: Any) -> wc.ResourceHost:
        stats.requests += 1
        return wc.ResourceHost.own(run.open_request(run.http.send(request_from(request))), PENDING_RESOURCE)

    def wait_for(rep: int) -> Any:
        stats.imports += 1
        state = run.take_request(rep)
        if state is None:
            return http_error(
                HttpErrorValue("other", text="this response was already taken by an earlier wait")
            )
        if isinstance(state, HttpErrorValue):
            return http_error(state)
        started = time.perf_counter()
        outcome = run.http.wait(state, run.host.stop.is_set, run.store.heartbeat)
        stats.http_wait_s += time.perf_counter() - started
        if isinstance(outcome, HttpErrorValue):
            if outcome.tag == "cancelled":
                call.budget.stop_requested()
            return http_error(outcome)
        return to_record(outcome)

    add("send", send)
    guarded_wait = _guarded(call, wait_for)
    # The resource arrives as a borrow; its rep is the table index.
    instance.add_func("[method]pending.wait", lambda ctx, this: guarded_wait(ctx, this.to_host(ctx).rep))


def bind_refusals(instance: wc.LinkerInstance, interface: str) -> None:
    """Imports for a guest that must call none (`schedule.decide`): each traps."""

    def refuse(*_args: Any) -> None:
        raise RuntimeError(f"{interface} was called during schedule.decide, which calls no imports")

    names = {
        "skillsmith:sync/store": [
            "read-state", "local-versions", "registry-ids", "registry-rows",
            "begin-run", "apply-page", "finish-run",
        ],
        "skillsmith:sync/http": ["send", "[method]pending.wait"],
        "skillsmith:sync/host": ["log", "progress", "sleep", "random"],
    }.get(interface, [])
    if interface == "skillsmith:sync/http":
        instance.add_resource("pending", wc.ResourceType.host(PENDING_RESOURCE), lambda _c, _r: None)
    for name in names:
        instance.add_func(name, refuse)
