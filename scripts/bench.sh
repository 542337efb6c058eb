#!/bin/bash
# The performance figures of issue #9, from one run (docs/perfmodel.md,
# docs/pipeline.md):
#   1. the runtime's own cost: libnp's host time per card hop and token on
#      16 emulated cards with pass-through layer programs, and the pipeline
#      bubble against the GPipe ideal (bench/np_bench_runtime);
#   2. the emulated cards' speed: the machine's INT8 SIMD peak and memory
#      bandwidth with the layer kernels' share of both
#      (bench/np_bench_kernels), then `nptool run` on the medium shape
#      (14 x 1024, vocabulary 32000, w4a4; N = 28 requests with 128-token
#      prompts, M = 14, 128 generated tokens each, 16 emulated cards);
#   3. the performance model of real cards on the Granite-3B-like shape
#      (`nptool bench --model-shape data/shapes/granite-3b.shape`);
#   4. serving (issue #18): npd on the medium model and 16 emulated cards
#      under bench/np_bench_serve at 1, 8, 28 and 56 streams, and beside it
#      batch-mode `nptool run` of 28 requests on the same model;
#   5. quantization quality (issue #17): `nptool model quality` of every
#      precision mode with and without each PTQ method beside ggml's
#      Q4_0/Q8_0, on QUALITY_MODELS (default: the demo models and the medium
#      shape in Q8_0, so that the comparator's Q4_0 rounding is not already
#      in the weights) over QUALITY_TEXT (default Debian's GPL-3 text, held
#      out from the calibration text), QUALITY_TOKENS tokens (default 128).
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
	np_bench_kernels npd np_bench_serve np_demo_model >&2
b=build-bench

# 5. quantization quality
quality() {
	local text=${QUALITY_TEXT:-/usr/share/common-licenses/GPL-3}
	local tokens=${QUALITY_TOKENS:-128} models=${QUALITY_MODELS:-}

	echo
	echo "== 5. quantization quality (nptool model quality)"
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
"$b/bench/np_bench_kernels" -s 2
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
echo "nptool run -m $model -f $prompts -n 28 -M 14 -t 128 --max-seq 512 --no-stop -q"
/usr/bin/time -f "process: %e s wall, %U s user, %S s system, %P of one core" \
	"$b/tools/nptool" -d emu:16 run -m "$model" -f "$prompts" -n 28 -M 14 \
	-t 128 --max-seq 512 --no-stop -q

echo
echo "== 3. the performance model of real cards"
"$b/tools/nptool" bench --model-shape data/shapes/granite-3b.shape

echo
echo "== 4. serving: npd under np_bench_serve, and batch mode beside it"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NP_DEVICES=emu:16 "$b/tools/npd/npd" --model "$model" --port "$port" \
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
"$b/tools/nptool" -d emu:16 run -m "$model" -f "$prompts" -n 28 -M 14 \
	-t 64 --max-seq 512 --no-stop 2>&1 | grep -E '^(throughput|prefill|decode|latency)'

quality
