"""Why a sync did not happen, as a small exception hierarchy.

Every failure the host reports is a :class:`HostError` with one
:class:`FailureKind` (the WIT `failure-kind`): the exit code and the thing
for the user to do derive from the kind, never from a message's text. The
kinds, actions and exit codes are the Rust CLI's (`guest/src/domain.rs`
`FailureKind::action`, `host-cli/src/failure.rs` `exit_code`), so that both
programs tell a user the same thing.

:class:`SyncFailed` wraps the component's own `sync-error`; its texts are
ported from the Rust `Display` impls so that the two hosts word them alike.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional


class FailureKind(enum.Enum):
    """`types.failure-kind`: one closed reason, with its action and exit code."""

    USAGE = "usage"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    REDIRECTED = "redirected"
    NOT_A_REGISTRY = "not-a-registry"
    UNAUTHORISED = "unauthorised"
    QUOTA = "quota"
    RATE_LIMITED = "rate-limited"
    PROTOCOL = "protocol"
    TOO_LARGE = "too-large"
    STORE_BUSY = "store-busy"
    STORE_CORRUPT = "store-corrupt"
    NO_SPACE = "no-space"
    READ_ONLY = "read-only"
    BUSY = "busy"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"
    COMPONENT = "component"
    INTERNAL = "internal"

    @property
    def action(self) -> str:
        """The one thing for the user to do."""
        return _ACTIONS[self]

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for a failure of this kind."""
        return _EXIT_CODES[self]

    @property
    def counts_as_failure(self) -> bool:
        """Whether the scheduler counts it as a failed attempt."""
        return self not in (FailureKind.CANCELLED, FailureKind.BUSY, FailureKind.SUPERSEDED)


_ACTIONS = {
    FailureKind.USAGE: "correct the command as the message says, and run it again",
    FailureKind.UNREACHABLE: "check the network connection, then try again later",
    FailureKind.TLS: "check that the registry URL is right and the system clock is correct",
    FailureKind.REDIRECTED: (
        "check the registry URL; a redirect to a sign-in page means the network wants a login first"
    ),
    FailureKind.NOT_A_REGISTRY: "check the registry URL: it ends in /functions/v1 on the live registry",
    FailureKind.UNAUTHORISED: "set SKILLSMITH_API_KEY to a valid API key",
    FailureKind.QUOTA: "wait until the quota resets, or move to a plan with a larger one",
    FailureKind.RATE_LIMITED: "try again later, or use an API key with a higher rate limit",
    FailureKind.PROTOCOL: "try again later, and tell the registry's operators if it persists",
    FailureKind.TOO_LARGE: "tell the registry's operators; the cap protects this machine's memory",
    FailureKind.STORE_BUSY: "try again once the other program has finished with the catalogue",
    FailureKind.STORE_CORRUPT: "restore a backup of the catalogue, or delete it and sync again",
    FailureKind.NO_SPACE: "free disk space, then sync again",
    FailureKind.READ_ONLY: "make the catalogue and its folder writable",
    FailureKind.BUSY: "wait for the other sync to finish",
    FailureKind.SUPERSEDED: "nothing: the catalogue is current",
    FailureKind.CANCELLED: "sync again to finish; what was applied is kept",
    FailureKind.COMPONENT: "rebuild the component with scripts/build-component.sh, and report it if it persists",
    FailureKind.INTERNAL: "try again, and report it if it persists",
}

EXIT_OTHER = 1
EXIT_CANCELLED = 9

_EXIT_CODES = {
    FailureKind.USAGE: 2,
    FailureKind.UNREACHABLE: 3,
    FailureKind.TLS: 3,
    FailureKind.REDIRECTED: 3,
    FailureKind.NOT_A_REGISTRY: 3,
    FailureKind.UNAUTHORISED: 4,
    FailureKind.QUOTA: 4,
    FailureKind.RATE_LIMITED: 4,
    FailureKind.PROTOCOL: 5,
    FailureKind.TOO_LARGE: 5,
    FailureKind.STORE_CORRUPT: 6,
    FailureKind.NO_SPACE: 6,
    FailureKind.READ_ONLY: 6,
    FailureKind.STORE_BUSY: 7,
    FailureKind.BUSY: 7,
    FailureKind.SUPERSEDED: 7,
    FailureKind.COMPONENT: 8,
    FailureKind.CANCELLED: EXIT_CANCELLED,
    FailureKind.INTERNAL: EXIT_OTHER,
}


class HostError(Exception):
    """A failure to show the user: what happened (the text) and its kind."""

    kind: FailureKind = FailureKind.INTERNAL

    def __init__(
        self, message: str, kind: Optional[FailureKind] = None, action: Optional[str] = None
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        # A more precise thing to do than the kind's, where this host knows one.
        self._action = action

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def action(self) -> str:
        return self._action or self.kind.action


class UsageError(HostError):
    """An argument that cannot work (a bad registry URL, a missing file)."""

    kind = FailureKind.USAGE


class ComponentError(HostError):
    """The component could not be found, loaded, or was refused at load."""

    kind = FailureKind.COMPONENT


class ComponentNotFound(ComponentError):
    """No component file: the checkout has not built it."""


class ComponentIncompatible(ComponentError):
    """The component implements another version of `skillsmith:sync`."""


class ComponentUngranted(ComponentError):
    """The component imports what this host does not grant."""

    def __init__(self, message: str, imports: list[str]) -> None:
        super().__init__(
            message,
            action="rebuild the component without them: a sync component needs no clocks, "
            "random, files or sockets",
        )
        self.imports = imports


class TrapKind(enum.Enum):
    """What stopped a guest, as the Rust sandbox names it."""

    PANIC = "it panicked or aborted; an allocation over its memory limit aborts too"
    DEADLINE = "it exceeded its time budget"
    MEMORY_LIMIT = "it exceeded its memory limit"
    EXIT = "it asked to exit the process"
    HOST_FAULT = "the host failed"
    OTHER = "it trapped"


class GuestTrapped(ComponentError):
    """The guest trapped; the catalogue keeps every page committed before."""

    def __init__(self, trap: TrapKind, detail: str, stderr: str = "") -> None:
        # The end of the tail: a panic message is its last lines.
        tail = " / ".join(line for line in stderr.strip().splitlines()[-3:] if line.strip())[-600:]
        shown = f"; its last output: {tail}" if tail else ""
        super().__init__(f"the sync component crashed ({trap.value}): {detail}{shown}")
        self.trap = trap
        self.detail = detail
        self.stderr = stderr


class CatalogueError(HostError):
    """The catalogue file could not be opened, or is not one this host may use."""

    kind = FailureKind.STORE_CORRUPT


class LeaseBusy(HostError):
    """Another process is syncing this catalogue."""

    kind = FailureKind.BUSY


# ---- the component's own errors, as values ---------------------------------


@dataclass(frozen=True)
class HttpErrorValue:
    """`http.http-error`: `tag` is the case, `text` or `cap` its payload."""

    tag: str
    text: Optional[str] = None
    cap: Optional[int] = None

    def __str__(self) -> str:
        return {
            "timeout": lambda: "the request timed out",
            "refused": lambda: f"no connection could be made ({self.text})",
            "tls": lambda: f"the TLS handshake failed ({self.text})",
            "connection": lambda: f"the connection broke ({self.text})",
            "too-large": lambda: f"a response was larger than {-(-(self.cap or 0) // (1 << 20))} MiB",
            "denied": lambda: f"the host refused the request: {self.text}",
            "cancelled": lambda: "the request was abandoned: the sync is stopping",
        }.get(self.tag, lambda: self.text or self.tag)()

    @property
    def kind(self) -> FailureKind:
        return {
            "tls": FailureKind.TLS,
            "too-large": FailureKind.TOO_LARGE,
            # The guest asked for something the host does not grant: a bug in
            # the component, not in the network.
            "denied": FailureKind.COMPONENT,
            "cancelled": FailureKind.CANCELLED,
        }.get(self.tag, FailureKind.UNREACHABLE)


@dataclass(frozen=True)
class StoreErrorValue:
    """`store.store-error`."""

    tag: str
    text: Optional[str] = None

    def __str__(self) -> str:
        return {
            "busy": "the catalogue stayed locked by another program",
            "run-open": f"another sync is running on this catalogue ({self.text})",
            "invalid": f"invalid store request: {self.text}",
            "no-space": "the disk holding the catalogue is full",
            "read-only": "the catalogue or its folder is read-only",
            "corrupt": f"the catalogue is damaged ({self.text})",
        }.get(self.tag, self.text or self.tag)

    @property
    def kind(self) -> FailureKind:
        return {
            "busy": FailureKind.STORE_BUSY,
            "run-open": FailureKind.BUSY,
            "no-space": FailureKind.NO_SPACE,
            "read-only": FailureKind.READ_ONLY,
            # An invalid request is the component's bug.
            "invalid": FailureKind.COMPONENT,
        }.get(self.tag, FailureKind.STORE_CORRUPT)


_SYNC_ERROR_KINDS = {
    "unauthorized": FailureKind.UNAUTHORISED,
    "quota-exceeded": FailureKind.QUOTA,
    "rate-limited": FailureKind.RATE_LIMITED,
    "registry": FailureKind.UNREACHABLE,
    "redirected": FailureKind.REDIRECTED,
    "not-a-registry": FailureKind.NOT_A_REGISTRY,
    "protocol": FailureKind.PROTOCOL,
    "busy": FailureKind.BUSY,
}


class SyncFailed(HostError):
    """The component returned a `sync-error` (recorded in history)."""

    def __init__(
        self,
        tag: str,
        text: Optional[str] = None,
        http: Optional[HttpErrorValue] = None,
        store: Optional[StoreErrorValue] = None,
    ) -> None:
        self.tag = tag
        self.text = text
        self.http = http
        self.store = store
        if http is not None:
            kind = http.kind
        elif store is not None:
            kind = store.kind
        else:
            kind = _SYNC_ERROR_KINDS.get(tag, FailureKind.INTERNAL)
        super().__init__(self._describe(), kind)

    def _describe(self) -> str:
        if self.http is not None:
            if self.http.tag in ("too-large", "tls"):
                return str(self.http)
            return f"could not reach the registry: {self.http}"
        if self.store is not None:
            return f"the local catalogue failed: {self.store}"
        if self.tag == "redirected":
            return (
                f"the registry URL answered with a redirect to {self.text}, "
                "and redirects are not followed"
            )
        if self.tag == "protocol":
            return f"the registry broke the protocol: {self.text}"
        if self.tag == "busy":
            if self.text:
                # As the Rust CLI words a lease another process holds.
                return f"another sync of this catalogue is in progress ({self.text})"
            return "another sync is already running on this catalogue"
        return self.text or self.tag
