#!/usr/bin/env bash
# Tests of the Python host: installs it (as a user would, `pip install
# ./host-python`) into a venv under target/, then runs host-python/tests/
# with pytest against the real component, the real test registry and real
# SQLite files. Needs the artifacts `cargo build` and
# scripts/build-component.sh make: target/skillsmith-sync.wasm,
# target/debug/{skillsmith,skillsmith-registry}, target/hostile-wasm/*.wasm.
# Exits non-zero on any failure (pytest's 5, "no tests ran", included).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${HOST_PYTHON_VENV:-$repo/target/host-python-venv}"
python="${PYTHON:-python3}"

missing=()
for f in target/skillsmith-sync.wasm target/debug/skillsmith target/debug/skillsmith-registry \
    target/hostile-wasm/skillsmith-hostile.wasm target/hostile-wasm/skillsmith-hostile-ambient.wasm \
    target/hostile-wasm/skillsmith-hostile-future.wasm; do
    [[ -e "$repo/$f" ]] || missing+=("$f")
done
if (( ${#missing[@]} )); then
    echo "host-python/run-tests.sh: missing ${missing[*]}; build them first (cargo build --bins, scripts/build-component.sh, scripts/build-hostile.sh)" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
# A fresh install each run: the package copies migrations/shared/*.sql at build time.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$here"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "wasmtime==50.0.1" pytest

cd "$here"
# Arguments, when given, replace the default selection (all of tests/).
if (( $# == 0 )); then set -- tests; fi
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
