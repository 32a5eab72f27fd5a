"""`python -m skillsmith_host sync ...`: the command line.

It prints the sync report (or, with `--json`, one JSON document on stdout)
and exits 0; a failure prints what happened and one thing to do on stderr
(and, with `--json`, an `{"error": ...}` document on stdout) and exits with
the Rust CLI's code for its kind (2 usage, 3 unreachable, 4 unauthorised,
5 protocol, 6 catalogue, 7 busy, 8 component, 9 cancelled). A closed
stdout (`| head`) is not a failure.

The first Ctrl-C, SIGTERM or SIGHUP stops the sync at the next page
boundary (what was applied is kept; exit 9); the second leaves at once
(SQLite's journal keeps the file consistent; the lease is taken over).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

from . import __version__
from .errors import EXIT_CANCELLED, FailureKind, HostError
from .host import StopToken
from .http import DEFAULT_MAX_BODY_BYTES
from .limits import Limits
from .values import ProgressReport
from .sync import DEFAULT_REGISTRY, SyncOutcome, SyncRequest, run_sync

EXIT_INTERRUPTED = 130


def _default_db() -> Path:
    env = os.environ.get("SKILLSMITH_DB")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~")) / ".skillsmith" / "skills.db"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error also prints the `--json` error document."""

    def error(self, message: str) -> NoReturn:
        if "--json" in sys.argv:
            _print_json({"error": {
                "kind": FailureKind.USAGE.value,
                "message": message,
                "action": "run with --help to see the flags",
                "exit_code": FailureKind.USAGE.exit_code,
            }})
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n  to fix: run with --help to see the flags\n")
        raise SystemExit(FailureKind.USAGE.exit_code)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m skillsmith_host",
        description="Sync a Skillsmith catalogue through the sync component, hosted in Python.",
        epilog="Exit codes: 0 success, 1 other error, 2 usage error, 3 registry unreachable or "
        "failing, 4 not authorised or quota used up, 5 registry sent invalid data, 6 local "
        "database error, 7 another sync is in progress, 8 sync component failed, 9 sync cancelled.",
    )
    p.add_argument("--version", action="version", version=f"skillsmith-host {__version__}")
    commands = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    s.add_argument("--page-size", type=int, default=0, help="skills per request (0: each endpoint's largest)")
    s.add_argument("--retry-budget", type=float, default=120.0, metavar="SECONDS",
                   help="most waiting on retries and rate limits per request [default: 120]")
    s.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="most time one request may take, body included (at most 60) [default: 30]")
    s.add_argument("--component", type=Path, default=None,
                   help="the sync component (.wasm) [default: the checkout's target/skillsmith-sync.wasm]")
    s.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    s.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    limits = s.add_argument_group("limits of the component")
    d = Limits()
    limits.add_argument("--memory-mib", type=int, default=d.memory_bytes >> 20, help="linear memory cap [default: %(default)s]")
    limits.add_argument("--max-guest-run", type=float, default=d.max_guest_run_s, metavar="SECONDS",
                        help="guest code between two host calls [default: %(default)s]")
    limits.add_argument("--max-guest-total", type=float, default=d.max_guest_total_s, metavar="SECONDS",
                        help="guest code over the whole run [default: %(default)s]")
    limits.add_argument("--max-run", type=float, default=d.max_run_s, metavar="SECONDS",
                        help="the whole run, host calls included [default: %(default)s]")
    limits.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help="cap on one decoded response body [default: %(default)s]")
    limits.add_argument("--engine-registry", default=None, metavar="TEXT",
                        help="for testing components: the text passed as sync-options.registry "
                        "(the allowed origin stays --registry's)")
    return p


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


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


def _print_report(outcome: SyncOutcome, args: argparse.Namespace) -> None:
    if args.json:
        _print_json(_report_doc(outcome, args))
        return
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
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _report_error(e: HostError, as_json: bool) -> int:
    code = e.kind.exit_code
    if as_json:
        _print_json({"error": {"kind": e.kind.value, "message": e.message, "action": e.action, "exit_code": code}})
    sys.stderr.write(f"error: {e.message}\n  to fix: {e.action}\n")
    return code


def _install_stop_signals(stop: StopToken) -> None:
    seen = {"count": 0}

    def on_signal(_signum: int, _frame: Optional[object]) -> None:
        seen["count"] += 1
        if seen["count"] == 1:
            stop.set()
            try:
                sys.stderr.write("\nstopping after the current page (signal again to quit at once)\n")
                sys.stderr.flush()
            except OSError:
                pass
        else:
            os._exit(EXIT_INTERRUPTED)

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)


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
        page_size=max(args.page_size, 0),
        mode={"feed": "changes-feed", "search": "search", None: None}[args.mode],
        retry_budget_ms=int(args.retry_budget * 1000),
        component=args.component,
        engine_registry=args.engine_registry,
        limits=Limits(
            memory_bytes=args.memory_mib << 20,
            max_guest_run_s=args.max_guest_run,
            max_guest_total_s=args.max_guest_total,
            max_run_s=args.max_run,
        ),
        max_body_bytes=args.max_body_bytes,
        timeout_ms=int(args.timeout * 1000),
        stop=stop,
        on_progress=_log_progress,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level={0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = StopToken()
    _install_stop_signals(stop)
    try:
        outcome = run_sync(_request(args, stop))
        _print_report(outcome, args)
    except HostError as e:
        try:
            return _report_error(e, args.json)
        except BrokenPipeError:
            return _quiet_broken_pipe(e.kind.exit_code)
    except BrokenPipeError:
        # The reader of stdout (`| head -1`) has what it wanted.
        return _quiet_broken_pipe(0)
    return EXIT_CANCELLED if outcome.report.cancelled else 0


def _quiet_broken_pipe(code: int) -> int:
    # Python would complain at exit when it flushes the closed stdout again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return code
