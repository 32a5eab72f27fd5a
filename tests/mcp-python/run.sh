#!/usr/bin/env bash
# The MCP server driven by a client this project did not write: the official
# Python MCP SDK (PyPI package `mcp`, pinned below) in a venv under target/.
# Needs python3 with venv and the debug binaries `skillsmith-mcp` and
# `skillsmith-registry` (built here if missing or stale). Prints
# `N passed, M failed` last; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

MCP_VERSION=2.3.0
VENV=target/mcp-python-venv

if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$MCP_VERSION')" 2>/dev/null; then
    echo "== creating $VENV with mcp==$MCP_VERSION"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_VERSION"
fi

# The same selection as scripts/test.sh, so that after it this is a no-op.
cargo build --workspace --locked --quiet --bins

exec "$VENV/bin/python" tests/mcp-python/test_mcp.py --bin-dir target/debug
