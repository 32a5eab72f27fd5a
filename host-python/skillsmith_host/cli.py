"""`python -m skillsmith_host sync ...`: the command line.

It prints the sync report (or, with `--json`, one JSON document on stdout)
and exits 0; a failure prints what happened and one thing to do on stderr
(and, with `--json`, an `{"error": ...}` document on stdout) and exits with
the Rust CLI's code for its kind (2 usage, 3 unreachable, 4 unauthorised,
5 protocol, 6 catalogue, 7 busy, 8 component, 9 cancelled). A closed
stdout (`| head`) is not a failure; a closed or full stderr changes no exit
code. Text that quotes the registry or the component (errors, warnings, log
lines) is printed through `text.printable`, as the Rust CLI prints it.

The first Ctrl-C, SIGTERM or SIGHUP stops the sync at the next page
boundary (what was applied is kept; exit 9); the second leaves at once
(SQLite's journal keeps the file consistent; the lease is taken over).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, Sequence

from . import __version__
from .errors import EXIT_CANCELLED, EXIT_OTHER, HostError, UsageError
from .host import StopToken
from .http import DEFAULT_MAX_BODY_BYTES
from .limits import Limits
from .sync import DEFAULT_REGISTRY, SyncOutcome, SyncRequest, run_sync
from .text import printable
from .values import ProgressReport

EXIT_INTERRUPTED = 130
USAGE_ACTION = "run with --help to see the flags"


def _default_db() -> Path:
    env = os.environ.get("SKILLSMITH_DB")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~")) / ".skillsmith" / "skills.db"


# ---- output ----------------------------------------------------------------------
#
# Whatever state stdout and stderr are in (closed, a pipe whose reader left,
# a full disk), the exit code stays the one of what happened, and no Python
# traceback appears: a failure to print is handled here, once.


class _ReaderGone(Exception):
    """stdout is closed or its reader left (`| head -1`): not a failure."""


def _write(stream: Any, text: str) -> None:
    """Writes and flushes `text`; raises _ReaderGone or the OSError."""
    if stream is None:  # the descriptor was closed before Python started
        raise _ReaderGone()
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError as e:
        raise _ReaderGone() from e


def _silence_stdout() -> None:
    # Python flushes stdout again at exit and would complain about the pipe.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass


def _write_stderr(text: str) -> None:
    """Best effort: there is nowhere else to say that stderr failed."""
    try:
        _write(sys.stderr, text)
    except (_ReaderGone, OSError):
        pass


def _json_text(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _report_error(e: HostError, as_json: bool) -> int:
    """Prints what happened and the one thing to do; returns the exit code."""
    code = e.kind.exit_code
    if as_json:
        doc = {"error": {"kind": e.kind.value, "message": e.message, "action": e.action, "exit_code": code}}
        try:
            _write(sys.stdout, _json_text(doc))
        except (_ReaderGone, OSError):
            _silence_stdout()  # the message below still says it
    _write_stderr(f"error: {printable(e.message)}\n  to fix: {printable(e.action)}\n")
    return code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is reported like every other failure
    (exit 2, `error:` and `to fix:`, and with `--json` the JSON document)."""

    def __init__(self, *args: Any, wants_json: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wants_json = wants_json

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)  # argparse's printing ignores a broken stream
        raise SystemExit(_report_error(UsageError(message, action=USAGE_ACTION), self._wants_json))


def _number(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: a `kind` number in low..=high (not NaN, not infinite)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not in {_shown(low)}..={_shown(high)}")
        return value

    return parse


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


SECONDS = _number(float, 0.001, 10**7)


def _parser(wants_json: bool = False) -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m skillsmith_host",
        description="Sync a Skillsmith catalogue through the sync component, hosted in Python.",
        epilog="Exit codes: 0 success, 1 other error, 2 usage error, 3 registry unreachable or "
        "failing, 4 not authorised or quota used up, 5 registry sent invalid data, 6 local "
        "database error, 7 another sync is in progress, 8 sync component failed, 9 sync cancelled.",
        wants_json=wants_json,
    )
    p.add_argument("--version", action="version", version=f"skillsmith-host {__version__}")
    commands = p.add_subparsers(
        dest="command", required=True, parser_class=functools.partial(_Parser, wants_json=wants_json)
    )
    s = commands.add_parser("sync", help="sync the catalogue with the registry (differential by default)")
    s.add_argument("--db", type=Path, default=_default_db(),
                   help="SQLite catalogue, shared with `skillsmith` [default: $SKILLSMITH_DB or ~/.skillsmith/skills.db]")
    s.add_argument("--registry", default=os.environ.get("SKILLSMITH_API_URL", DEFAULT_REGISTRY),
                   help="base URL of the registry API; only its origin may be reached [default: $SKILLSMITH_API_URL or %(default)s]")
    s.add_argument("--api-key", default=None,
                   help="API key, sent as X-API-Key to the registry only [default: $SKILLSMITH_API_KEY]")
    s.add_argument("--force", action="store_true", help="full resync: refetch everything, remove what the registry dropped")
    s.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    s.add_argument("--mode", choices=("feed", "search"), help="force a protocol instead of discovering it")
    s.add_argument("--page-size", type=_number(int, 0, 1000), default=0, metavar="N",
                   help="skills per request, 1..1000 (0: each endpoint's largest) [default: 0]")
    s.add_argument("--retry-budget", type=_number(float, 0, 10**7), default=120.0, metavar="SECONDS",
                   help="most waiting on retries and rate limits per request [default: 120]")
    s.add_argument("--timeout", type=_number(float, 0.001, 3600), default=30.0, metavar="SECONDS",
                   help="most time one request may take, body included (at most 60 are used) [default: 30]")
    s.add_argument("--component", type=Path, default=None,
                   help="the sync component (.wasm) [default: the checkout's target/skillsmith-sync.wasm]")
    s.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    s.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    limits = s.add_argument_group("limits of the component")
    d = Limits()
    limits.add_argument("--memory-mib", type=_number(int, 4, 4096), default=d.memory_bytes >> 20,
                        help="linear memory cap, 4..4096 [default: %(default)s]")
    limits.add_argument("--max-guest-run", type=SECONDS, default=d.max_guest_run_s, metavar="SECONDS",
                        help="guest code between two host calls [default: %(default)s]")
    limits.add_argument("--max-guest-total", type=SECONDS, default=d.max_guest_total_s, metavar="SECONDS",
                        help="guest code over the whole run [default: %(default)s]")
    limits.add_argument("--max-run", type=SECONDS, default=d.max_run_s, metavar="SECONDS",
                        help="the whole run, host calls included [default: %(default)s]")
    limits.add_argument("--max-body-bytes", type=_number(int, 1, 1 << 30), default=DEFAULT_MAX_BODY_BYTES,
                        help="cap on one decoded response body [default: %(default)s]")
    limits.add_argument("--engine-registry", default=None, metavar="TEXT",
                        help="for testing components: the text passed as sync-options.registry "
                        "(the allowed origin stays --registry's)")
    return p


def _report_doc(outcome: SyncOutcome, args: argparse.Namespace) -> dict[str, Any]:
    r = outcome.report
    doc = asdict(r)
    doc["coverage"] = None if r.coverage is None else {
        "registry_total": r.coverage.registry_total,
        "reached": r.coverage.reached,
        "unreachable": r.coverage.unreachable,
        "unfilterable_tiers": r.coverage.unfilterable_tiers,
        "summary": r.coverage.summary(),
    }
    stats = outcome.stats
    doc.update({
        "status": "cancelled" if r.cancelled else "success",
        "backend": "component",
        "host": "python",
        "dry_run": outcome.dry_run,
        "forced": args.force,
        "duration_ms": round(outcome.duration_s * 1000),
        "timings": {
            "sync_ms": round(outcome.duration_s * 1000, 1),
            "store_ms": round(stats.store_s * 1000, 1),
            "http_wait_ms": round(stats.http_wait_s * 1000, 1),
            "imports": stats.imports,
        },
    })
    return doc


def _report_text(outcome: SyncOutcome, args: argparse.Namespace) -> str:
    r = outcome.report
    verb = "Dry run against" if args.dry_run else "Synced from"
    would = " (would be)" if args.dry_run else ""
    lines = [
        f"{verb} {args.registry} ({r.mode} mode) in {outcome.duration_s:.2f} s",
        f"  added {r.added}, updated {r.updated}, unchanged {r.unchanged}, "
        f"removed {r.removed}, skipped {r.skipped}{would}",
        f"  {r.pages} pages, {r.requests} requests",
    ]
    if r.coverage is not None:
        lines.append(f"  {r.coverage.summary()}")
    if r.last_sync_at and not args.dry_run and not r.cancelled:
        lines.append(f"  catalogue current as of {r.last_sync_at} (registry time)")
    if r.cancelled:
        lines.append("  cancelled: pages applied so far are kept; run the sync again to finish")
    if r.warnings:
        lines.append(f"  {len(r.warnings)} warning(s):")
        lines += [f"    - {w}" for w in r.warnings[:20]]
        if len(r.warnings) > 20:
            lines.append(f"    ... and {len(r.warnings) - 20} more (use --json to see all)")
    # Warnings and times quote the registry: one printable line each.
    return "".join(printable(line) + "\n" for line in lines)


def _print_report(outcome: SyncOutcome, args: argparse.Namespace) -> Optional[int]:
    """Prints the report; an exit code when that failed in a way that matters."""
    text = _json_text(_report_doc(outcome, args)) if args.json else _report_text(outcome, args)
    try:
        _write(sys.stdout, text)
    except _ReaderGone:
        # The reader of stdout (`| head -1`) has what it wanted.
        _silence_stdout()
    except OSError as e:
        _silence_stdout()
        _write_stderr(
            f"error: the sync finished, but its report could not be written: {e.strerror or e}\n"
            "  to fix: send the output somewhere it can be written (the catalogue is synced)\n"
        )
        return EXIT_OTHER
    return None


def _install_stop_signals(stop: StopToken) -> None:
    """The first SIGINT, SIGTERM or SIGHUP stops the sync at the next page
    boundary; the second leaves at once.

    Python runs a signal handler only between bytecodes of the main thread,
    and while the guest computes the main thread is inside wasmtime: a
    handler would wait for the guest's next import (up to its 10 s budget).
    So the handlers do nothing, and a thread counts the signals from the
    wakeup file descriptor, to which the C-level handler writes at once."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def watch() -> None:
        seen = 0
        while True:
            try:
                signals = os.read(read_fd, 64)
            except OSError:
                return
            for _ in signals:
                seen += 1
                if seen == 1:
                    stop.set()
                    _write_stderr("\nstopping after the current page (signal again to quit at once)\n")
                else:
                    os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="skillsmith-signals", daemon=True).start()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            # Not SIG_DFL: Ctrl-C must not raise KeyboardInterrupt in the guest's imports.
            signal.signal(getattr(signal, name), lambda _signum, _frame: None)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)


class _PrintableFormatter(logging.Formatter):
    """Log lines quote registry and guest text: each becomes one printable line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


def _configure_logging(verbose: int) -> None:
    # A log line that cannot be written (stderr closed or full) is dropped
    # silently: the exit code still says what happened.
    logging.raiseExceptions = False
    handler: logging.Handler = (
        logging.NullHandler() if sys.stderr is None else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.set_name(__name__)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == __name__]:
        root.removeHandler(old)  # main() called again in one process
    root.addHandler(handler)
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG))


def _log_progress(report: ProgressReport) -> None:
    total = "" if report.total is None else f" of {report.total}"
    logging.getLogger("skillsmith_host.progress").info(
        "progress: %s, %d%s done, %d pages", report.phase, report.done, total, report.pages
    )


def _request(args: argparse.Namespace, stop: StopToken) -> SyncRequest:
    api_key = args.api_key if args.api_key is not None else os.environ.get("SKILLSMITH_API_KEY")
    return SyncRequest(
        db=args.db,
        registry=args.registry,
        api_key=api_key or None,
        force=args.force,
        dry_run=args.dry_run,
        page_size=args.page_size,
        mode={"feed": "changes-feed", "search": "search", None: None}[args.mode],
        retry_budget_ms=round(args.retry_budget * 1000),
        component=args.component,
        engine_registry=args.engine_registry,
        limits=Limits(
            memory_bytes=args.memory_mib << 20,
            max_guest_run_s=args.max_guest_run,
            max_guest_total_s=args.max_guest_total,
            max_run_s=args.max_run,
        ),
        max_body_bytes=args.max_body_bytes,
        timeout_ms=max(round(args.timeout * 1000), 1),
        stop=stop,
        on_progress=_log_progress,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    args = _parser(wants_json="--json" in given).parse_args(given)
    _configure_logging(args.verbose)
    stop = StopToken()
    _install_stop_signals(stop)
    try:
        outcome = run_sync(_request(args, stop))
    except HostError as e:
        return _report_error(e, args.json)
    failed_to_print = _print_report(outcome, args)
    if failed_to_print is not None:
        return failed_to_print
    return EXIT_CANCELLED if outcome.report.cancelled else 0
