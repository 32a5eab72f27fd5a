"""The `http` import: GET requests to one origin, on a small thread pool.

The guest is untrusted code from the host's point of view (docs/embedding.md
§4). So this module, and nothing the guest says, decides:

- the one origin it may reach (scheme, host and port of the registry URL,
  default ports filled in); anything else, a URL with user-info, or one that
  does not parse gets `denied` before any traffic;
- the headers: the guest may not set `x-api-key`, `authorization`,
  `cookie` or `host` (`denied`); the API key is added here, for that origin
  only; `Accept-Encoding` is the host's (gzip), because the host decodes;
- no redirects (http.client follows none): a 3xx goes back as it is;
- a cap on the DECODED body (16 MiB by default), checked against
  `Content-Length` and while reading and inflating, so a gzip bomb is
  `too-large` after at most cap + 64 KiB of output;
- a whole-request timeout (30 s default, 60 s cap), applied to every
  socket operation as the time left;
- `sent-at-ms` / `received-at-ms` on the monotonic clock.

`send` returns at once; the request runs on one of four worker threads (the
guest keeps up to four in flight), and `wait` blocks until it is done,
looking every 50 ms whether the host is stopping.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Optional, Union
from urllib.parse import urlsplit

from . import __version__, clock
from .errors import HttpErrorValue, UsageError
from .values import Request, Response

FORBIDDEN_REQUEST_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "host"})
# Set by the host (it decodes what it negotiated); the guest's are dropped.
HOST_REQUEST_HEADERS = frozenset({"accept-encoding"})
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 60_000
MAX_IN_FLIGHT = 4
USER_AGENT = f"skillsmith-host-python/{__version__}"
READ_CHUNK = 64 * 1024
STOP_POLL_S = 0.05

Outcome = Union[Response, HttpErrorValue]


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _parse(url: str) -> tuple[Optional[Origin], str]:
    """The origin of `url` (None if it has none) or why it is malformed."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return None, f"malformed URL {url!r}: it contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return None, f"malformed URL {url!r}: {e}"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None, ""
    default = 443 if scheme == "https" else 80
    return Origin(scheme, parts.hostname.lower(), port if port is not None else default), ""


class Policy:
    """What one sync may ask of the network."""

    def __init__(
        self,
        origin: Origin,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_timeout_ms: int = MAX_TIMEOUT_MS,
    ) -> None:
        self.origin = origin
        self.max_body_bytes = max_body_bytes
        self.max_timeout_ms = max_timeout_ms
        self.default_timeout_ms = min(default_timeout_ms, max_timeout_ms)

    @classmethod
    def for_registry(cls, url: str, **limits: int) -> "Policy":
        """Allows exactly the origin of the registry URL `url`."""
        origin, why = _parse(url)
        if why:
            raise UsageError(f"registry URL {url!r} is not a valid URL: {why.split(': ', 1)[-1]}")
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            # Credentials in a URL end up in logs and history rows.
            raise UsageError(
                f"registry URL {url!r} is not usable: it carries a user name or password; "
                "pass the API key through SKILLSMITH_API_KEY instead"
            )
        if origin is None:
            raise UsageError(
                f"registry URL {url!r} is not usable: only http:// and https:// URLs with a host "
                "are supported"
            )
        return cls(origin, **limits)

    def check_url(self, url: str) -> Optional[str]:
        """Why `url` is refused (the text of `denied`), or None."""
        origin, why = _parse(url)
        if why:
            return why
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            return f"URL {url!r} carries credentials"
        if origin is None:
            return f"URL {url!r} is not http(s); this sync may only reach {self.origin}"
        if origin != self.origin:
            return f"origin {origin} is not allowed; this sync may only reach {self.origin}"
        return None

    def check_headers(self, headers: list[tuple[str, str]]) -> Optional[str]:
        """Why the guest's headers are refused (the text of `denied`), or None."""
        for name, value in headers:
            clean = name.strip()
            if clean.lower() in FORBIDDEN_REQUEST_HEADERS:
                return (
                    f"header {name!r} may not be set by the sync component "
                    "(credentials and routing are the host's)"
                )
            token_ok = clean and all(33 <= ord(c) <= 126 and c not in '"(),/:;<=>?@[\\]{}' for c in clean)
            if not token_ok or any(c in value for c in "\r\n\0"):
                return f"malformed request header {name!r}"
        return None

    def effective_timeout_ms(self, requested_ms: int) -> int:
        if requested_ms == 0:
            return self.default_timeout_ms
        return min(requested_ms, self.max_timeout_ms)


class _Abandoned(Exception):
    """The guest dropped the request, or the host is stopping."""


class _InFlight:
    """One request on a worker: its result, and a way to cut it short."""

    def __init__(self) -> None:
        self.future: Optional[Future] = None
        self.abandoned = threading.Event()
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None

    def attach(self, sock: Optional[socket.socket]) -> None:
        with self._lock:
            self._sock = sock
            if self.abandoned.is_set():
                self._shutdown()

    def abandon(self) -> None:
        with self._lock:
            self.abandoned.set()
            self._shutdown()
        if self.future is not None:
            self.future.cancel()

    def _shutdown(self) -> None:
        # Wakes a worker blocked in recv(): it sees `abandoned` and gives up.
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HttpClient:
    """The `http` import's network side, for one sync."""

    def __init__(self, policy: Policy, api_key: Optional[str] = None) -> None:
        if api_key is not None and any(c in api_key for c in "\r\n\0"):
            raise UsageError("the API key contains characters that cannot be sent in an HTTP header")
        self.policy = policy
        self._api_key = api_key or None
        self._pool = ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT, thread_name_prefix="skillsmith-http")
        self._local = threading.local()
        self._ssl = ssl.create_default_context() if policy.origin.scheme == "https" else None
        self.requests = 0

    # -- the guest's side

    def send(self, request: Request) -> Union[_InFlight, HttpErrorValue]:
        """Starts `request`, or says why it is refused (no traffic then)."""
        refused = self.policy.check_url(request.url) or self.policy.check_headers(request.headers)
        if refused:
            return HttpErrorValue("denied", text=refused)
        flight = _InFlight()
        flight.future = self._pool.submit(self._run, request, flight)
        self.requests += 1
        return flight

    def wait(
        self,
        flight: _InFlight,
        should_stop: Callable[[], bool],
        on_idle: Callable[[], None] = lambda: None,
    ) -> Outcome:
        """Blocks until `flight` is done; abandons it once `should_stop()`."""
        assert flight.future is not None
        while True:
            try:
                return flight.future.result(timeout=STOP_POLL_S)
            except FutureTimeout:
                pass
            if should_stop():
                flight.abandon()
                return HttpErrorValue("cancelled")
            on_idle()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the worker's side

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        conn: Optional[http.client.HTTPConnection] = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn
        if conn is not None:
            conn.close()
        o = self.policy.origin
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(o.host, o.port, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(o.host, o.port)
        self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _run(self, request: Request, flight: _InFlight) -> Outcome:
        deadline = time.monotonic() + self.policy.effective_timeout_ms(request.timeout_ms) / 1000
        reused = getattr(self._local, "conn", None) is not None
        try:
            try:
                return self._fetch(request, flight, deadline, fresh=False)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had closed: once more on
                # a new one. A fresh connection failing so is a real failure.
                if not reused or flight.abandoned.is_set():
                    raise
                self._drop_connection()
                return self._fetch(request, flight, deadline, fresh=True)
        except _Abandoned:
            self._drop_connection()
            return HttpErrorValue("cancelled")
        except BaseException as e:
            self._drop_connection()
            if flight.abandoned.is_set():
                return HttpErrorValue("cancelled")
            return _classify(e, self.policy.origin)

    def _fetch(self, request: Request, flight: _InFlight, deadline: float, fresh: bool) -> Outcome:
        conn = self._connection(fresh)
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        conn.timeout = left
        if conn.sock is not None:
            conn.sock.settimeout(left)
        parts = urlsplit(request.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in request.headers:
            if name.strip().lower() not in HOST_REQUEST_HEADERS:
                conn.putheader(name.strip(), value)
        conn.putheader("Accept-Encoding", "gzip")
        conn.putheader("User-Agent", USER_AGENT)
        if self._api_key is not None:
            # check_url made sure this is the registry's origin.
            conn.putheader("X-API-Key", self._api_key)
        sent_at_ms = clock.monotonic_ms()
        conn.endheaders()
        flight.attach(conn.sock)
        response = conn.getresponse()
        received_at_ms = clock.monotonic_ms()
        try:
            return self._read(response, conn, flight, deadline, sent_at_ms, received_at_ms)
        finally:
            flight.attach(None)
            if response.will_close or not response.isclosed():
                # Not fully read or not reusable: never hand it to the next request.
                self._drop_connection()

    def _read(
        self,
        response: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        flight: _InFlight,
        deadline: float,
        sent_at_ms: int,
        received_at_ms: int,
    ) -> Outcome:
        cap = self.policy.max_body_bytes
        headers = [(n.lower(), _header_text(v)) for n, v in response.getheaders()]
        encoding = (response.getheader("content-encoding") or "identity").strip().lower()
        length = response.getheader("content-length")
        if length is not None and length.strip().isdigit() and int(length) > cap:
            return HttpErrorValue("too-large", cap=cap)
        if encoding not in ("identity", "gzip", "x-gzip"):
            return HttpErrorValue("other", text=f"the registry sent a body in an encoding not asked for ({encoding})")
        inflate = zlib.decompressobj(wbits=31) if encoding != "identity" else None
        body = bytearray()
        received = 0
        while True:
            if flight.abandoned.is_set():
                raise _Abandoned()
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = response.read(READ_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if inflate is None:
                body += chunk
            else:
                data = chunk
                while data:
                    # Bounded: never more than what is left of the cap (+1 to
                    # tell "exactly the cap" from "over it").
                    body += inflate.decompress(data, cap - len(body) + 1)
                    if len(body) > cap:
                        return HttpErrorValue("too-large", cap=cap)
                    data = inflate.unconsumed_tail
            if len(body) > cap:
                return HttpErrorValue("too-large", cap=cap)
        if length is not None and length.strip().isdigit() and received < int(length):
            # http.client's read(amt) returns short at EOF instead of raising.
            return HttpErrorValue(
                "connection", text=f"response body cut short: {received} of {int(length)} bytes"
            )
        if inflate is not None:
            body += inflate.flush()
            if not inflate.eof:
                return HttpErrorValue("connection", text="response body cut short: the gzip stream ended early")
            if len(body) > cap:
                return HttpErrorValue("too-large", cap=cap)
            # They describe the bytes on the wire, not the decoded body.
            headers = [(n, v) for n, v in headers if n not in ("content-encoding", "content-length")]
        return Response(
            status=response.status,
            headers=headers,
            body=bytes(body),
            sent_at_ms=sent_at_ms,
            received_at_ms=received_at_ms,
        )


def _header_text(value: str) -> str:
    # http.client decodes header bytes as Latin-1; the Rust host reads them
    # as UTF-8 (lossily). Do the same, so both hand the guest equal text.
    try:
        return value.encode("latin-1").decode("utf-8", errors="replace")
    except UnicodeEncodeError:
        return value


def _classify(e: BaseException, origin: Origin) -> HttpErrorValue:
    """Maps a failure onto the closed `http-error` variants, by exception type."""
    if isinstance(e, (socket.timeout, TimeoutError)):
        return HttpErrorValue("timeout")
    if isinstance(e, ssl.SSLError):
        if getattr(e, "reason", None) in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"):
            return HttpErrorValue(
                "tls",
                text=f"the server at {origin} answers in plain HTTP, not TLS: use an http:// URL for it",
            )
        return HttpErrorValue("tls", text=str(e))
    if isinstance(e, ssl.CertificateError):
        return HttpErrorValue("tls", text=str(e))
    if isinstance(e, http.client.IncompleteRead):
        return HttpErrorValue("connection", text=f"response body cut short: {len(e.partial)} bytes read")
    if isinstance(e, zlib.error):
        return HttpErrorValue("connection", text=f"response body cut short or damaged: {e}")
    if isinstance(e, (ConnectionRefusedError, socket.gaierror)):
        return HttpErrorValue("refused", text=f"{origin}: {_os_text(e)}")
    if isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return HttpErrorValue("connection", text=f"{origin}: {_os_text(e)}")
    if isinstance(e, http.client.HTTPException):
        return HttpErrorValue("connection", text=f"{origin} did not answer in HTTP: {type(e).__name__}")
    if isinstance(e, OSError):
        # No route, network unreachable, address not available: no
        # connection could be made.
        return HttpErrorValue("refused", text=f"{origin}: {_os_text(e)}")
    return HttpErrorValue("other", text=f"{type(e).__name__}: {e}")


def _os_text(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
