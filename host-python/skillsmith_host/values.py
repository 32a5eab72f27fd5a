"""The WIT types of `skillsmith:sync@0.2.0` as Python dataclasses, and their
conversion to and from wasmtime-py's component values.

wasmtime-py hands a record over as a `wasmtime.component.Record` whose
attributes are the WIT field names, kebab-case (`getattr(r, "repo-url")`),
and takes one back the same way; enums are their case names as `str`;
`option<T>` is `None` or the value. A `variant` or `result` is a
`Variant(tag, payload)` only when its cases cannot be told apart by Python
type; otherwise it is untagged: `result<sync-report, sync-error>` comes back
as either a `Record` (ok) or a `Variant` (err), and an import returning
`result<u64, store-error>` returns a plain `int` for ok. Every such decision
is made here, once, so the rest of the host speaks dataclasses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from wasmtime.component import Record, Variant

from .errors import HttpErrorValue, StoreErrorValue


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def to_record(value: Any) -> Any:
    """A dataclass (recursively, also in lists) as a wasmtime `Record`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        record = Record()
        for f in dataclasses.fields(value):
            setattr(record, _kebab(f.name), to_record(getattr(value, f.name)))
        return record
    if isinstance(value, list):
        return [to_record(v) for v in value]
    return value


def _get(record: Any, name: str) -> Any:
    return getattr(record, _kebab(name))


# ---- types ------------------------------------------------------------------


@dataclass
class Skill:
    id: str
    name: str
    description: Optional[str]
    author: Optional[str]
    repo_url: Optional[str]
    quality_score: Optional[float]
    trust_tier: str
    tags: list[str]
    categories: list[str]
    stars: Optional[int]
    created_at: str
    updated_at: str
    content_hash: Optional[str]
    license: Optional[str]
    security_score: Optional[float]
    installable: Optional[bool]
    quarantined: Optional[bool]


_SKILL_FIELDS = tuple((f.name, _kebab(f.name)) for f in dataclasses.fields(Skill))


def skill_from(record: Any) -> Skill:
    return Skill(**{name: getattr(record, kebab) for name, kebab in _SKILL_FIELDS})


@dataclass
class Checkpoint:
    mode: str
    cursor: Optional[str]
    etag: Optional[str]
    resync_pending: bool


@dataclass
class Page:
    upserts: list[Skill]
    removals: list[str]
    checkpoint: Checkpoint


def page_from(record: Any) -> Page:
    cp = record.checkpoint
    return Page(
        upserts=[skill_from(s) for s in record.upserts],
        removals=list(record.removals),
        checkpoint=Checkpoint(
            mode=cp.mode, cursor=cp.cursor, etag=cp.etag, resync_pending=_get(cp, "resync_pending")
        ),
    )


@dataclass
class RunCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0


@dataclass
class Coverage:
    registry_total: Optional[int]
    reached: int
    unfilterable_tiers: list[str]

    @property
    def unreachable(self) -> Optional[int]:
        if self.registry_total is None:
            return None
        return max(self.registry_total - self.reached, 0)

    def summary(self) -> str:
        """One sentence, as `guest/src/domain.rs` `Coverage::summary` words it."""
        total, missing = self.registry_total, self.unreachable
        if total is not None and missing == 0:
            return f"the search API reached all {total} skills the registry counts"
        if total is not None:
            why = ""
            if self.unfilterable_tiers:
                why = (
                    " (no score, no category, and a tier it cannot filter on: "
                    + ", ".join(self.unfilterable_tiers)
                    + ")"
                )
            return (
                f"the search API reached {self.reached} of the registry's {total} skills; "
                f"{missing} cannot be reached through it{why}"
            )
        return (
            f"the search API reached {self.reached} skills; the registry does not say how many "
            "it has, so completeness was not checked"
        )


def coverage_from(record: Any) -> Optional[Coverage]:
    if record is None:
        return None
    return Coverage(
        registry_total=_get(record, "registry_total"),
        reached=record.reached,
        unfilterable_tiers=list(_get(record, "unfilterable_tiers")),
    )


@dataclass
class RunOutcome:
    status: str
    counts: RunCounts
    error: Optional[str] = None
    failure: Optional[str] = None
    last_sync_at: Optional[str] = None
    coverage: Optional[Coverage] = None


def outcome_from(record: Any) -> RunOutcome:
    c = record.counts
    return RunOutcome(
        status=record.status,
        counts=RunCounts(c.added, c.updated, c.unchanged, c.removed, c.skipped),
        error=record.error,
        failure=record.failure,
        last_sync_at=_get(record, "last_sync_at"),
        coverage=coverage_from(record.coverage),
    )


@dataclass
class SyncState:
    last_sync_at: Optional[str] = None
    mode: Optional[str] = None
    cursor: Optional[str] = None
    etag: Optional[str] = None
    resync_pending: bool = False
    registry_skills: int = 0


@dataclass
class LocalVersion:
    updated_at: str
    source: str


@dataclass
class RegistryRow:
    id: str
    trust_tier: str
    scored: bool
    categories: list[str]


@dataclass
class Request:
    url: str
    headers: list[tuple[str, str]]
    timeout_ms: int


def request_from(record: Any) -> Request:
    return Request(
        url=record.url,
        headers=[(str(n), str(v)) for n, v in record.headers],
        timeout_ms=_get(record, "timeout_ms"),
    )


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    sent_at_ms: int
    received_at_ms: int


@dataclass
class ProgressReport:
    phase: str
    done: int
    total: Optional[int]
    pages: int
    waiting_ms: int
    waiting_for: str


def progress_from(record: Any) -> ProgressReport:
    return ProgressReport(
        phase=record.phase,
        done=record.done,
        total=record.total,
        pages=record.pages,
        waiting_ms=_get(record, "waiting_ms"),
        waiting_for=_get(record, "waiting_for"),
    )


@dataclass
class SyncOptions:
    registry: str
    force: bool = False
    dry_run: bool = False
    page_size: int = 0
    mode: Optional[str] = None
    now_ms: int = 0
    retry_budget_ms: int = 120_000


@dataclass
class SyncReport:
    mode: str
    added: int
    updated: int
    unchanged: int
    removed: int
    skipped: int
    pages: int
    requests: int
    warnings: list[str] = field(default_factory=list)
    last_sync_at: Optional[str] = None
    cancelled: bool = False
    coverage: Optional[Coverage] = None


def report_from(record: Any) -> SyncReport:
    return SyncReport(
        mode=record.mode,
        added=record.added,
        updated=record.updated,
        unchanged=record.unchanged,
        removed=record.removed,
        skipped=record.skipped,
        pages=record.pages,
        requests=record.requests,
        warnings=list(record.warnings),
        last_sync_at=_get(record, "last_sync_at"),
        cancelled=record.cancelled,
        coverage=coverage_from(record.coverage),
    )


@dataclass
class ScheduleConfig:
    enabled: bool
    interval_ms: int
    last_attempt_ms: Optional[int]
    last_success_ms: Optional[int]
    consecutive_failures: int


# ---- errors as the guest sees them ------------------------------------------


def http_error(e: HttpErrorValue) -> Variant:
    """An `http-error` to hand to the guest."""
    payload = e.cap if e.tag == "too-large" else e.text
    return Variant(e.tag, payload)


def store_error(e: StoreErrorValue) -> Variant:
    """A `store-error` to hand to the guest."""
    return Variant(e.tag, e.text)


def http_error_from(v: Variant) -> HttpErrorValue:
    if v.tag == "too-large":
        return HttpErrorValue(v.tag, cap=v.payload)
    return HttpErrorValue(v.tag, text=v.payload)


def store_error_from(v: Variant) -> StoreErrorValue:
    return StoreErrorValue(v.tag, v.payload)
