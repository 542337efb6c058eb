#!/bin/bash
# npd under the load generator: npd on 16 emulated cards on a free
# loopback port, bench/np_bench_serve at 8 streams with Poisson arrivals,
# then SIGTERM. Every request must succeed and stream tokens, and npd must
# drain and exit 0. Figures are not checked here (bench/, scripts/bench.sh).
#
#   load.sh NPD NP_BENCH_SERVE MODEL
set -euo pipefail

npd=$1 gen=$2 model=$3
log=$(mktemp /tmp/npd-load-XXXXXX)
pid=
cleanup() {
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
	rm -f "$log"
}
trap cleanup EXIT
fail() {
	echo "npd-load: $*" >&2
	sed 's/^/  npd: /' "$log" | tail -20 >&2
	exit 1
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$npd" --model "$model" --port "$port" --slots 16 --micro-batches 8 \
	--access-log /dev/null >"$log" 2>&1 &
pid=$!
for _ in $(seq 600); do
	grep -q 'ready on' "$log" && break
	kill -0 "$pid" 2>/dev/null || fail "npd exited at start"
	sleep 0.1
done
grep -q 'ready on' "$log" || fail "npd not ready within 60 s"

out=$("$gen" --url "http://127.0.0.1:$port" --concurrency 8 --rate 50 \
	--requests 24 --max-tokens 24 --duration 300 --json) ||
	fail "np_bench_serve failed: $out"
echo "np_bench_serve: $out"
python3 - "$out" <<'PY' || fail "the load run was not clean"
import json, sys
r = json.loads(sys.argv[1])
ok = r["requests"] == 24 and r["errors"] == 0 and r["tokens_per_s"] > 0 \
    and r["ttft_p50_ms"] > 0
print("npd-load: %d requests, %d errors" % (r["requests"], r["errors"]))
sys.exit(0 if ok else 1)
PY

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "npd exited $rc after SIGTERM"
grep -q 'stopped' "$log" || fail "npd did not say it stopped"
echo "npd-load: PASS"
