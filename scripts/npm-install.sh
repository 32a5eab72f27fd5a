#!/usr/bin/env bash
# Installs a folder's npm packages from its committed lock file, for the
# steps that run Node (tests/js-host for host-node/, tests/upstream-client):
# `npm ci --ignore-scripts`, so that no install script reaches for a prebuilt
# download this machine cannot make, then better-sqlite3 built from source
# when asked (g++, make, python3 and the node headers under
# <node prefix>/include/node). npm ci throws node_modules away, and with it
# the minute-long native build, so both run only when the lock file, node or
# the platform changed since the last install, or the binding stopped loading.
#
#   scripts/npm-install.sh DIR CHECK [better-sqlite3]
#
# CHECK is an ES module snippet, run in DIR, that succeeds once the SQLite
# binding the folder uses loads. The last argument asks for better-sqlite3 to
# be built from source.
set -euo pipefail

dir="$1"
check="$2"
build="${3:-}"

die() {
    echo "npm-install ($dir): $*" >&2
    exit 1
}

command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
cd "$dir"

loads() {
    node --input-type=module -e "$check" 2>/dev/null
}

stamp_file=node_modules/.skillsmith-install-stamp
want_stamp="$(sha256sum package-lock.json | cut -d' ' -f1) node-$(node -p process.version) $(uname -sm) $build"
if [ "$(cat "$stamp_file" 2>/dev/null)" = "$want_stamp" ] && loads; then
    echo "node_modules is up to date with package-lock.json; the SQLite binding loads"
    exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
if [ "$build" = better-sqlite3 ]; then
    echo "== better-sqlite3 from source (node $(node --version))"
    nodedir="${npm_config_nodedir:-$(node -p 'require("path").resolve(process.execPath, "../..")')}"
    [ -f "$nodedir/include/node/node_api.h" ] ||
        die "node headers not found under $nodedir/include/node (set npm_config_nodedir to node's install prefix)"
    for tool in g++ make python3; do
        command -v "$tool" >/dev/null || die "$tool is needed to build better-sqlite3"
    done
    # build_from_source makes prebuild-install give up at once, so node-gyp
    # builds; one job by default, to share the machine.
    JOBS="${JOBS:-1}" npm_config_jobs="${JOBS:-1}" npm_config_build_from_source=true \
        npm rebuild better-sqlite3 --nodedir="$nodedir" --loglevel=error
fi
loads || die "the SQLite binding still does not load: $(node --input-type=module -e "$check" 2>&1 | tail -3)"
echo "$want_stamp" >"$stamp_file"
