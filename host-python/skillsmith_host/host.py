"""The `host` imports: log, progress, sleep, random, and how a sync is stopped.

A sync is stopped through a :class:`StopToken` (the CLI sets it on Ctrl-C or
SIGTERM): `progress` then answers `stop`, a `sleep` returns `stop` at once,
and a blocking `http` wait gives up with `cancelled`. The guest stops at
the page boundary, records the run as cancelled and returns a report with
`cancelled = true`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, Optional

from .values import ProgressReport

log = logging.getLogger("skillsmith_host.guest")

_LEVELS = {
    "trace": logging.DEBUG - 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

# How often a long sleep wakes to renew the lease.
IDLE_EVERY_S = 1.0


class StopToken:
    """Set once to stop the sync at the next page boundary."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


ProgressCallback = Callable[[ProgressReport], None]


class HostImports:
    """The `host` interface of one sync."""

    def __init__(
        self,
        stop: StopToken,
        on_progress: Optional[ProgressCallback] = None,
        on_idle: Callable[[], None] = lambda: None,
        on_stop_seen: Callable[[], None] = lambda: None,
    ) -> None:
        self.stop = stop
        self._on_progress = on_progress
        self._on_idle = on_idle
        self._on_stop_seen = on_stop_seen

    def _directive(self) -> str:
        if self.stop.is_set():
            self._on_stop_seen()
            return "stop"
        return "proceed"

    def log(self, level: str, message: str) -> None:
        log.log(_LEVELS.get(level, logging.INFO), "%s", message)

    def progress(self, report: ProgressReport) -> str:
        if self._on_progress is not None:
            self._on_progress(report)
        return self._directive()

    def sleep(self, ms: int) -> str:
        """Really waits (a host that returns at once makes the guest burn its
        retries), in slices so that the lease is renewed and a stop is seen."""
        end = time.monotonic() + ms / 1000
        while True:
            left = end - time.monotonic()
            if left <= 0 or self.stop.is_set():
                return self._directive()
            self.stop.wait(min(left, IDLE_EVERY_S))
            self._on_idle()

    def random(self) -> int:
        # Retry jitter and the seen-set's hash key: fresh from the OS.
        return int.from_bytes(os.urandom(8), "little")
