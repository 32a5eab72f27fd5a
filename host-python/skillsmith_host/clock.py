"""Host time, as the Rust catalogue keeps it (`catalogue/src/clock.rs`).

History, lease and scheduling times are the host's wall clock, stored as
RFC 3339 UTC with milliseconds and `Z` so that they compare as strings.
`SKILLSMITH_CLOCK_OFFSET_MS` (an integer) shifts the clock, as it does the
Rust host's: a testing knob. `sent-at-ms`/`received-at-ms` use the
monotonic clock instead, which never goes back.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Optional

CLOCK_OFFSET_ENV = "SKILLSMITH_CLOCK_OFFSET_MS"


def _offset_ms() -> int:
    try:
        return int(os.environ.get(CLOCK_OFFSET_ENV, "0").strip() or "0")
    except ValueError:
        # A testing knob, not configuration: ignored rather than fatal.
        return 0


def now_ms() -> int:
    """Host time, Unix milliseconds."""
    return time.time_ns() // 1_000_000 + _offset_ms()


def format_ms(ms: int) -> str:
    """`2026-11-20T10:00:00.123Z` for Unix milliseconds `ms`."""
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def parse_ms(text: Optional[str]) -> Optional[int]:
    """Unix milliseconds of an RFC 3339 time, or None for anything else."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return round(stamp.timestamp() * 1000)


_MONOTONIC_ORIGIN = time.monotonic_ns()


def monotonic_ms() -> int:
    """Milliseconds on a clock that never goes back (origin: process start)."""
    return (time.monotonic_ns() - _MONOTONIC_ORIGIN) // 1_000_000
