#!/bin/bash
# The performance figures of issue #9, from one run (docs/perfmodel.md,
# docs/pipeline.md):
#   1. the runtime's own cost: libnp's host time per card hop and token on
#      16 emulated cards with pass-through layer programs, and the pipeline
#      bubble against the GPipe ideal (bench/np_bench_runtime);
#   2. the emulated cards' speed: the machine's INT8 SIMD peak and memory
#      bandwidth with the layer kernels' share of both
#      (bench/np_bench_kernels), then `nptool run` on the medium shape
#      (14 x 1024, vocabulary 32000, the default a8c8w4; N = 28 requests
#      with 128-token prompts, M = 14, 128 generated tokens each, 16
#      emulated cards): the load cold (empty image cache) and warm
#      (cached images), the prefill (prompt tokens/s) and the decode
#      (generated tokens/s), each with the MACs/s it takes and its share
#      of the INT8 peak np_bench_kernels measured; then the layer kernels
#      and that run at every precision (issue #17; one thread, tokens per
#      CPU second);
#   3. the performance model of real cards on the Granite-3B-like shape
#      (`nptool bench --model-shape data/shapes/granite-3b.shape`), and
#      beside the published NorthPole systems (2024: 16 cards, 3B;
#      2025: one Granite-3.3-8B instance on 6 servers) with each assumed
#      parameter's sensitivity (`nptool bench --published`);
#   4. serving (issue #18): npd on the medium model and 16 emulated cards
#      under bench/np_bench_serve at 1, 8, 28 and 56 streams, and beside it
#      batch-mode `nptool run` of 28 requests on the same model;
#   5. a pipeline that spans hosts (issue #19, scripts/bench-cluster.sh):
#      a frame over the UCX link (latency, host CPU, bandwidth), and a
#      40-layer model on 48 cards of three members vs 16 cards in one
#      process.
#   6. quantization quality (issue #17): `nptool model quality` of every
#      precision mode with and without each PTQ method beside ggml's
#      Q4_0/Q8_0, on QUALITY_MODELS (default: the demo models and the medium
#      shape in Q8_0, so that the comparator's Q4_0 rounding is not already
#      in the weights) over QUALITY_TEXT (default data/models/heldout.txt, the
#      demo model's held-out text, not in the calibration text), QUALITY_TOKENS tokens (default 128).
#      `bench.sh quality` runs only this section.
# Installs what it needs on a fresh Debian 12 machine and builds in
# build-bench (Release). Figures vary with the machine's load: compare the
# ratios printed within one run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/deps.sh"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target nptool np_bench_runtime \
	np_bench_kernels npd np_bench_serve npmember np_cluster_run \
	np_bench_link np_demo_model >&2
b=build-bench

# 6. quantization quality
quality() {
	local text=${QUALITY_TEXT:-data/models/heldout.txt}
	local tokens=${QUALITY_TOKENS:-128} models=${QUALITY_MODELS:-}

	echo
	echo "== 6. quantization quality (nptool model quality)"
	if [ -z "$models" ]; then
		[ -s "$b/medium-q8_0.gguf" ] ||
			"$b/tools/nptool" model mkgguf --shape medium \
				--type q8_0 --text data/sample-multilingual.txt \
				--out "$b/medium-q8_0.gguf"
		models="$b/models/np-tiny.gguf $b/medium-q8_0.gguf"
		# the trained demo model, where the tree has it (issue #17)
		[ ! -s data/models/np-demo.gguf ] ||
			models="data/models/np-demo.gguf $models"
	fi
	for m in $models; do
		echo "nptool model quality $m $text --tokens $tokens"
		/usr/bin/time -f "%e s wall" \
			"$b/tools/nptool" model quality "$m" "$text" \
			--tokens "$tokens"
	done
}
if [ "${1:-}" = quality ]; then
	quality
	exit
fi

echo "== 1. the runtime's own cost (np_bench_runtime)"
"$b/bench/np_bench_runtime"

echo
echo "== 2. the emulated cards' speed"
"$b/bench/np_bench_kernels" -s 2 | tee "$b/kernels.txt"
model=$b/medium.gguf
prompts=$b/medium-prompts.txt
[ -s "$model" ] ||
	"$b/tools/nptool" model mkgguf --shape medium --type q4_0 \
		--text data/sample-multilingual.txt --out "$model"
# 28 prompts: 700-character windows of the sample text, one a line
python3 - data/sample-multilingual.txt "$prompts" <<'EOF'
import sys
text = " ".join(open(sys.argv[1], encoding="utf-8").read().split())
n, width = 28, 700
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for i in range(n):
        start = i * (len(text) - width) // (n - 1)
        f.write(text[start:start + width] + "\n")
EOF
# the image cache starts empty: this run's load is the cold one (GGUF
# parsed, calibrated on the prompts, card images rendered and cached)
cache=$b/np-cache
rm -rf "$cache"
echo "nptool run -m $model -f $prompts -n 28 -M 14 -t 128 --max-seq 512 --no-stop -q"
NP_CACHE_DIR=$cache /usr/bin/time \
	-f "process: %e s wall, %U s user, %S s system, %P of one core" \
	"$b/tools/nptool" -d emu:16 -j run -m "$model" -f "$prompts" -n 28 \
	-M 14 -t 128 --max-seq 512 --no-stop -q >"$b/run-cold.json"
# the same load again: the card images come from the cache
NP_CACHE_DIR=$cache "$b/tools/nptool" -d emu:16 -j run -m "$model" \
	-f "$prompts" -n 28 -M 14 -t 1 --max-seq 512 --no-stop -q \
	>"$b/run-warm.json"
python3 - "$b/run-cold.json" "$b/run-warm.json" "$b/kernels.txt" <<'EOF'
import json, re, sys
cold, warm = (json.load(open(f)) for f in sys.argv[1:3])
kern = open(sys.argv[3]).read()
# np_bench_kernels' INT8 peak and the medium shape's MACs per token
peak = float(re.search(r"INT8 SIMD peak.*?([0-9.]+) GMAC/s", kern).group(1))
macs = float(re.search(r"([0-9.]+) M MACs", kern).group(1)) * 1e6
def share(tps):
    g = tps * macs / 1e9
    return f"{g:.1f} GMAC/s, {100 * g / peak:.1f} % of the INT8 peak"
assert not cold["load_cached"] and warm["load_cached"], "image cache not used"
print(f"{cold['requests']} requests, {cold['micro_batches']} micro-batches, "
      f"{cold['cards']} cards: {cold['prompt_tokens']} prompt + "
      f"{cold['tokens']} generated tokens in {cold['wall_s']:.2f} s")
print(f"load cold    {cold['load_s']:.2f} s (parse, calibrate, compile, "
      f"cache, cards; goal <= 3 s)")
print(f"load warm    {warm['load_s']:.2f} s (parse, cached images verified, "
      f"cards; goal <= 1 s)")
print(f"prefill      {cold['prefill_tokens_per_s']:.1f} prompt tokens/s "
      f"({share(cold['prefill_tokens_per_s'])}; goal >= 1500)")
print(f"decode       {cold['decode_tokens_per_s']:.1f} generated tokens/s "
      f"({share(cold['decode_tokens_per_s'])}; goal >= 750)")
print(f"throughput   {cold['tokens_per_s']:.1f} generated tokens/s over the "
      f"run")
print(f"utilization  {100 * cold['utilization']:.0f} % (cards busy, mean)")
EOF

echo
echo "== 2b. the precisions: layer kernels at INT2 and INT8 weights (INT4 above)"
for w in 2 8; do
	"$b/bench/np_bench_kernels" -t 1 -s 1 -w "$w"
done
for p in w4a4 a8c8w4 w8a8 w2a8; do
	echo "nptool run --precision $p (32 tokens)"
	NP_CACHE_DIR=$cache "$b/tools/nptool" -d emu:16 run -m "$model" -f "$prompts" -n 28 -M 14 \
		-t 32 --max-seq 512 --no-stop -q --precision "$p" |
		grep -E 'throughput|prefill|decode'
done

echo
echo "== 3. the performance model of real cards"
"$b/tools/nptool" bench --model-shape data/shapes/granite-3b.shape
echo
"$b/tools/nptool" bench --published

echo
echo "== 4. serving: npd under np_bench_serve, and batch mode beside it"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NP_DEVICES=emu:16 NP_CACHE_DIR=$cache "$b/tools/npd/npd" --model "$model" --port "$port" \
	--slots 28 --micro-batches 14 --access-log /dev/null 2>"$b/npd.log" &
npd_pid=$!
trap 'kill "$npd_pid" 2>/dev/null || true' EXIT
until grep -q 'ready on' "$b/npd.log"; do
	kill -0 "$npd_pid" 2>/dev/null || { cat "$b/npd.log" >&2; exit 1; }
	sleep 0.2
done
for c in 1 8 28 56; do
	"$b/bench/np_bench_serve" --url "http://127.0.0.1:$port" \
		--concurrency "$c" --requests $((c < 8 ? 8 : 2 * c)) \
		--max-tokens 64 --prompt-chars 700
done
kill -TERM "$npd_pid"
wait "$npd_pid" || true
trap - EXIT
echo "batch mode: nptool run -m $model -f $prompts -n 28 -M 14 -t 64 --no-stop"
NP_CACHE_DIR=$cache "$b/tools/nptool" -d emu:16 run -m "$model" -f "$prompts" -n 28 -M 14 \
	-t 64 --max-seq 512 --no-stop 2>&1 | grep -E '^(throughput|prefill|decode|latency)'

echo
echo "== 5. a pipeline that spans hosts (scripts/bench-cluster.sh)"
"$root/scripts/bench-cluster.sh" "$b"
quality
