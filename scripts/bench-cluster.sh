#!/bin/bash
# The figures of a pipeline that spans hosts (issue #19, docs/cluster.md),
# from one run:
#   1. a frame crossing a host boundary over UCX (TCP through the
#      loopback stack): wall time and host CPU per frame, bandwidth of
#      large frames (bench/np_bench_link);
#   2. end-to-end tokens/s of a 40-layer model (Granite-3.3-8B's depth,
#      width 128) on 48 emulated cards of three members (npmember, emu:16
#      each, over UCX on loopback TCP) against the same model on 16
#      emulated cards in one process (more layers per card), same
#      requests (tests/cluster/np_cluster_run).
# usage: bench-cluster.sh BUILD_DIR (built: npmember np_cluster_run
# np_bench_link nptool). Figures vary with the machine's load: compare the
# ratio printed within one run.
set -euo pipefail
b=$1
root=$(cd "$(dirname "$0")/.." && pwd)
export NP_EVENT_LOG=off UCX_TLS=tcp UCX_WARN_UNUSED_ENV_VARS=n
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$work"' EXIT

echo "-- a frame over the host boundary (np_bench_link, UCX over TCP)"
"$b/bench/np_bench_link" --frames 2000

model=$work/g40.gguf
"$b/tools/nptool" model mkgguf --arch granite --shape tiny --layers 40 \
	--dim 128 --heads 4 --kv-heads 2 --ffn 384 --vocab 1024 \
	--text "$root/data/sample-multilingual.txt" --out "$model" >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
: >"$work/c.cluster"
for i in 0 1 2; do
	"$b/tools/npmember/npmember" --listen "127.0.0.1:$((port + i))" \
		-m "$model" -d emu:16 2>"$work/m$i.log" &
	pids+=($!)
	echo "member 127.0.0.1:$((port + i)) cards=16" >>"$work/c.cluster"
done
for i in 0 1 2; do
	until grep -q serving "$work/m$i.log"; do sleep 0.1; done
done
args=(-m "$model" -n 28 -M 14 -t 32)
echo
echo "-- 40 layers: 48 cards on 3 members vs 16 cards in one process"
echo "np_cluster_run ${args[*]} (28 requests, 14 micro-batches, 32 tokens each)"
c48=$("$b/tests/cluster/np_cluster_run" --cluster "$work/c.cluster" "${args[@]}" 2>/dev/null)
# the members log their loop's CPU time a frame when the head leaves
sleep 0.3
c16=$("$b/tests/cluster/np_cluster_run" --local emu:16 "${args[@]}" 2>/dev/null)
echo "48 cards, 3 hosts: $(echo "$c48" | head -1)"
echo "16 cards, 1 host:  $c16"
echo "48 cards, host boundaries: $(echo "$c48" | sed -n 2p)"
python3 - "$c48" "$c16" <<'PY'
import sys
def tps(s):
    w = s.split()
    return float(w[w.index("tokens_per_s") + 1])
a, b = tps(sys.argv[1]), tps(sys.argv[2])
print(f"48-card / 16-card tokens/s: {a / b:.2f}")
PY
for i in 0 1 2; do
	echo "member $i: $(grep -o 'member: [0-9]* frames served.*frame' "$work/m$i.log" | tail -1)"
done
