"""Drives the real `skillsmith-mcp` binary with the official Python MCP SDK.

A client this project did not write: `mcp.client.stdio.stdio_client` starts
the server, `ClientSession` speaks the protocol. The registry is the test
registry binary (`skillsmith-registry --skills 2000`) on loopback.

Run through `run.sh` (it makes the venv with a pinned `mcp`). Prints one line
per test and a final `N passed, M failed`; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Awaitable, Callable

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SKILLS = 2000
EXPECTED_TOOLS = {"search", "get_skill", "sync", "sync_status", "sync_history", "sync_config"}


class Registry:
    """The test registry as a child process."""

    def __init__(self, bin_dir: Path, skills: int) -> None:
        self.proc = subprocess.Popen(
            [str(bin_dir / "skillsmith-registry"), "--skills", str(skills), "--exit-on-stdin-close"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.close()
            raise RuntimeError(f"registry did not start: {line!r}")
        self.url = line.removeprefix("listening on ")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


class Ctx:
    """What every test gets: binaries, the registry, a fresh directory."""

    def __init__(self, bin_dir: Path, registry: Registry, tmp: Path) -> None:
        self.bin_dir = bin_dir
        self.registry = registry
        self.tmp = tmp

    def server(self, db: Path, **env: str) -> StdioServerParameters:
        base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.tmp),
            "SKILLSMITH_DB": str(db),
            "SKILLSMITH_API_URL": self.registry.url,
            "SKILLSMITH_CACHE_DIR": str(self.bin_dir / "test-component-cache"),
            "RUST_LOG": "warn",
        }
        base.update(env)
        return StdioServerParameters(command=str(self.bin_dir / "skillsmith-mcp"), args=[], env=base)


class Faults:
    """Records what the SDK could not parse on the server's stdout.

    The stdio transport hands a line that is not a JSON-RPC message to the
    session as an `Exception`; a clean server never produces one.
    """

    def __init__(self) -> None:
        self.seen: list[Exception] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, Exception):
            self.seen.append(message)

    def assert_none(self) -> None:
        check(not self.seen, f"non-JSON-RPC output on stdout: {self.seen!r}")


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


async def wait_for(session: ClientSession, pred: Callable[[dict], bool], what: str, timeout: float = 60) -> dict:
    """Polls `sync_status` until `pred(structured)` holds."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        r = await session.call_tool("sync_status", {})
        check(not r.is_error, f"sync_status failed: {text_of(r)}")
        last = r.structured_content
        if pred(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last status: {last}")


async def test_initialize_and_list_tools(ctx: Ctx) -> None:
    faults = Faults()
    async with stdio_client(ctx.server(ctx.tmp / "list.db")) as (read, write):
        async with ClientSession(read, write, message_handler=faults) as session:
            init = await session.initialize()
            check(init.server_info.name == "skillsmith-mcp", f"server name {init.server_info.name!r}")
            check(init.capabilities.tools is not None, "tools capability advertised")
            check(bool(init.instructions) and "search" in init.instructions, "instructions mention search")
            tools = (await session.list_tools()).tools
            names = {t.name for t in tools}
            check(names == EXPECTED_TOOLS, f"tools {sorted(names)}")
            for t in tools:
                check(t.input_schema.get("type") == "object", f"{t.name}: input schema is an object")
                check(bool(t.description), f"{t.name}: has a description")
                check(t.output_schema is not None, f"{t.name}: has an output schema")
            search = next(t for t in tools if t.name == "search")
            props = search.input_schema["properties"]
            check(set(props) >= {"query", "trust_tier", "min_quality", "limit"}, f"search args {sorted(props)}")
            check(all(p.get("description") for p in props.values()), "every search argument is documented")
            check(search.input_schema.get("required") == ["query"], "query is required")
    faults.assert_none()


async def test_background_sync_then_every_tool(ctx: Ctx) -> None:
    faults = Faults()
    db = ctx.tmp / "tools.db"
    params = ctx.server(db, SKILLSMITH_SYNC_CHECK_INTERVAL_MS="200")
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=faults) as session:
            await session.initialize()
            # A fresh catalogue is due at once: the background sync fills it.
            status = await wait_for(
                session,
                lambda s: s["registry_skills"] == SKILLS and (s.get("last_run") or {}).get("status") == "success",
                "the background sync at session start",
            )
            check(status["background"]["syncs_started"] >= 1, "the background scheduler started the sync")
            check(status["config"]["enabled"] is True, "background sync is on by default")

            # Turn it off for the rest of the test, so only our calls sync.
            r = await session.call_tool("sync_config", {"enabled": False})
            check(not r.is_error and r.structured_content["changed"] is True, text_of(r))
            check(r.structured_content["config"]["enabled"] is False, "disabled")
            r = await session.call_tool("sync_config", {"frequency": "weekly"})
            check(r.structured_content["config"]["frequency"] == "weekly", "weekly")
            check(r.structured_content["config"]["interval_ms"] == 604_800_000, "weekly interval")

            # sync with progress: a full resync walks every page.
            progress: list[tuple[float, float | None, str | None]] = []

            async def on_progress(p: float, total: float | None, message: str | None) -> None:
                progress.append((p, total, message))

            r = await session.call_tool("sync", {"force": True}, progress_callback=on_progress)
            check(not r.is_error, f"sync failed: {text_of(r)}")
            report = r.structured_content
            check(report["status"] == "success" and not report["cancelled"], f"report {report}")
            check(report["added"] + report["updated"] + report["unchanged"] == SKILLS, f"report {report}")
            check("Sync complete" in text_of(r), text_of(r))
            check(len(progress) >= 2, f"progress notifications: {progress}")
            values = [p for p, _, _ in progress]
            check(values == sorted(values) and len(set(values)) == len(values), f"progress increases: {values}")
            check(all(m for _, _, m in progress), "every notification has a message")

            r = await session.call_tool("sync", {"dry_run": True})
            check(not r.is_error and r.structured_content["dry_run"] is True, text_of(r))
            check(r.structured_content["added"] == 0, "nothing new after a full sync")

            # search: FTS over the synced catalogue.
            r = await session.call_tool("search", {"query": "", "limit": 5})
            check(not r.is_error and r.structured_content["count"] == 5, text_of(r))
            best = r.structured_content["skills"][0]
            word = best["name"].split("-")[1]
            r = await session.call_tool("search", {"query": word, "limit": 20})
            hits = r.structured_content["skills"]
            check(not r.is_error and len(hits) > 0, text_of(r))
            check(all(h["rank"] is not None for h in hits), "ranked")
            ranks = [h["rank"] for h in hits]
            check(ranks == sorted(ranks), "best first")
            r = await session.call_tool("search", {"query": word, "min_quality": 0.8, "trust_tier": "verified"})
            check(not r.is_error, text_of(r))
            for h in r.structured_content["skills"]:
                check(h["quality_score"] >= 0.8 and h["trust_tier"] == "verified", f"filters hold: {h}")

            # get_skill by id and by author/name.
            r = await session.call_tool("get_skill", {"id": best["id"]})
            check(not r.is_error and r.structured_content["skill"]["id"] == best["id"], text_of(r))
            check(best["name"] in text_of(r), "text names the skill")
            if best["author"]:
                r = await session.call_tool("get_skill", {"id": f"{best['author']}/{best['name']}"})
                check(r.structured_content["skill"]["id"] == best["id"], "author/name lookup")

            # Failures the user can act on are tool errors with a hint.
            r = await session.call_tool("get_skill", {"id": "nobody/nothing"})
            check(r.is_error and "search" in text_of(r), text_of(r))
            r = await session.call_tool("search", {"query": "x", "min_quality": 5})
            check(r.is_error and "between 0 and 1" in text_of(r), text_of(r))

            r = await session.call_tool("sync_history", {"limit": 10})
            runs = r.structured_content["runs"]
            check(len(runs) == 2, f"two runs (background, forced; a dry run writes none): {runs}")
            check(all(run["status"] == "success" for run in runs), f"runs {runs}")

            r = await session.call_tool("sync_status", {})
            s = r.structured_content
            check(s["registry_skills"] == SKILLS and s["config"]["enabled"] is False, f"status {s}")
            check("registry skills" in text_of(r), text_of(r))
        started = time.monotonic()
    # Leaving the context closed stdin; the server must exit by itself, well
    # inside the SDK's 2 s grace before it kills.
    elapsed = time.monotonic() - started
    check(elapsed < 2.0, f"the session closed in {elapsed:.2f} s")
    faults.assert_none()


async def test_exits_promptly_when_the_client_leaves(ctx: Ctx) -> None:
    faults = Faults()
    params = ctx.server(ctx.tmp / "exit.db", SKILLSMITH_SYNC_CHECK_INTERVAL_MS="100000")
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=faults) as session:
            await session.initialize()
            await session.call_tool("sync_status", {})
        started = time.monotonic()
    elapsed = time.monotonic() - started
    check(elapsed < 1.5, f"exit took {elapsed:.2f} s")
    faults.assert_none()


TESTS: list[Callable[[Ctx], Awaitable[None]]] = [
    test_initialize_and_list_tools,
    test_background_sync_then_every_tool,
    test_exits_promptly_when_the_client_leaves,
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", type=Path, required=True)
    args = ap.parse_args()
    bin_dir = args.bin_dir.resolve()
    registry = Registry(bin_dir, SKILLS)
    passed = failed = 0
    try:
        for test in TESTS:
            with tempfile.TemporaryDirectory(prefix="skillsmith-mcp-py-") as tmp:
                started = time.monotonic()
                try:
                    asyncio.run(asyncio.wait_for(test(Ctx(bin_dir, registry, Path(tmp))), timeout=180))
                except BaseException:  # noqa: BLE001 - a test runner reports everything
                    failed += 1
                    print(f"FAIL {test.__name__} ({time.monotonic() - started:.1f} s)")
                    traceback.print_exc(file=sys.stdout)
                else:
                    passed += 1
                    print(f"ok   {test.__name__} ({time.monotonic() - started:.1f} s)")
                sys.stdout.flush()
    finally:
        registry.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
