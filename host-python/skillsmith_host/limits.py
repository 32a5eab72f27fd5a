"""How much memory and time a guest gets, and how that is enforced.

- **Memory**: `Store.set_limits(memory_size=...)`, 128 MiB by default. A
  `memory.grow` past it fails, and the Rust guest's allocator aborts (a
  trap) with "memory allocation of N bytes failed" on its stderr.
- **Time**: the engine has epoch interruption on, and a ticker thread calls
  `engine.increment_epoch()` every 10 ms while a run is in progress. The
  store's epoch deadline is re-armed each time an import returns to the
  guest, to the smallest of the budgets left (`sandbox/src/budget.rs`):
  10 s of guest code between two imports, 120 s of guest code over the run
  (this is what stops a guest that loops calling cheap imports: the time in
  the imports does not count, but its own time between them adds up), 6 h
  for the whole run, and 5 s once an import has seen the host ask to stop.
  A budget that ran out while the guest was in an import is found when the
  import is entered or left: it raises :class:`LimitExceeded`, which
  wasmtime turns into a trap of the guest.

Fuel is not used: it counts instructions, so it stops a spinning guest,
but a guest spinning through imports (each costing nothing in fuel but host
time) would need a fuel budget unrelated to time; epochs bound the time
itself.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

import wasmtime

TICK_S = 0.01

Arm = Callable[[int], None]


@dataclass(frozen=True)
class Limits:
    """Limits of one component run."""

    memory_bytes: int = 128 * 1024 * 1024
    max_guest_run_s: float = 10.0
    max_guest_total_s: float = 120.0
    max_run_s: float = 6 * 3600.0
    stop_grace_s: float = 5.0
    stderr_tail_bytes: int = 16 * 1024


class LimitExceeded(Exception):
    """A time budget ran out; raised from an import, it traps the guest."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class EpochTicker:
    """Advances the engine's epoch every tick while any run is in progress."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._engine = engine
        self._active = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "EpochTicker":
        with self._lock:
            self._active += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._tick, name="skillsmith-epoch", daemon=True)
                self._thread.start()
            self._wake.notify_all()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active -= 1

    def _tick(self) -> None:
        while True:
            with self._lock:
                while self._active == 0:
                    self._wake.wait()
            time.sleep(TICK_S)
            self._engine.increment_epoch()


class Budget:
    """The time budgets of one run, on the monotonic clock.

    `arm` (given to `start` and `leave_import`) sets the store's epoch
    deadline in ticks from now, through the store context at hand; it is
    called whenever control returns to the guest.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        now = time.monotonic()
        self._run_ends = now + limits.max_run_s
        self._guest_total = 0.0
        self._guest_since = now
        self._stop_ends: Optional[float] = None
        self._armed_at = now
        self._armed_s = 0.0
        self._armed_for = ""

    def start(self, arm: Arm) -> None:
        self._guest_since = time.monotonic()
        self._rearm(self._guest_since, arm)

    def stop_requested(self) -> None:
        """An import told the guest to stop: it has `stop_grace_s` to return."""
        if self._stop_ends is None:
            self._stop_ends = time.monotonic() + self.limits.stop_grace_s

    def enter_import(self) -> None:
        now = time.monotonic()
        self._guest_total += now - self._guest_since
        self._check(now)

    def leave_import(self, arm: Arm) -> None:
        now = time.monotonic()
        self._check(now)
        self._guest_since = now
        self._rearm(now, arm)

    def _left(self, now: float) -> list[tuple[float, str]]:
        lim = self.limits
        left = [
            (lim.max_guest_run_s, f"it ran {lim.max_guest_run_s:g} s without calling the host"),
            (
                lim.max_guest_total_s - self._guest_total,
                f"it computed for over {lim.max_guest_total_s:g} s in this run",
            ),
            (self._run_ends - now, f"the run took over {lim.max_run_s:g} s"),
        ]
        if self._stop_ends is not None:
            left.append((
                self._stop_ends - now,
                f"it kept going {lim.stop_grace_s:g} s after the host asked it to stop",
            ))
        return left

    def _check(self, now: float) -> None:
        for seconds, what in self._left(now)[1:]:
            if seconds <= 0:
                raise LimitExceeded(what)

    def _rearm(self, now: float, arm: Arm) -> None:
        seconds, what = min(self._left(now), key=lambda item: item[0])
        self._armed_at, self._armed_s, self._armed_for = now, max(seconds, 0.0), what
        arm(max(1, math.ceil(self._armed_s / TICK_S)))

    def expired(self) -> Optional[str]:
        """After a trap: which budget the epoch deadline enforced, if it was
        reached (the host's clock says so; the trap's text is not read)."""
        if time.monotonic() - self._armed_at >= self._armed_s - 2 * TICK_S:
            return self._armed_for
        return None
