#!/usr/bin/env bash
# The `wire` rows of the sync benchmark over a rate-capped link: the bench
# binary (with its in-process test registry and the `skillsmith` it spawns)
# runs inside a network namespace whose loopback has a token-bucket qdisc
# (`tc ... tbf`), so every byte between client and registry crosses the cap.
# Each cap runs with the registry compressing and not.
#
# Needs root, iproute2's `ip` and `tc`, and a kernel with sch_tbf (netem,
# for delay, is often missing; the registry's --latency-ms covers latency).
#   RATES="20mbit 5mbit" BENCH_SIZES=20000 scripts/bench-bandwidth.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RATES="${RATES:-20mbit 5mbit}"
export BENCH_SIZES="${BENCH_SIZES:-20000}"
ns="skillsmith-bench-$$"

# The same build as scripts/bench.sh, so that neither undoes the other's.
cargo build --release --locked --bins
bench="$(cargo bench --locked -p skillsmith-testkit --bench sync --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "sync" and m.get("executable"):
        print(m["executable"])' | tail -1)"
[ -x "$bench" ] || { echo "bench-bandwidth: the sync bench binary was not built" >&2; exit 1; }

ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
# A network's MTU: tbf drops every packet larger than its bucket, and
# loopback's default of 64 KiB would not fit the one below.
ip netns exec "$ns" ip link set lo mtu 1500 up
for rate in $RATES; do
    # A burst of one 64 KiB window: the cap holds from the first page on.
    ip netns exec "$ns" tc qdisc replace dev lo root tbf rate "$rate" burst 64kb latency 400ms
    for compression in 1 0; do
        BENCH_PARTS=wire BENCH_LINK="$rate" BENCH_COMPRESSION="$compression" \
            ip netns exec "$ns" "$bench" --bench
    done
done
