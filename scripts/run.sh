#!/bin/bash
# Run the main job: the demo model on 16 emulated np cards (or the np cards
# bound to VFIO, if there are any), 28 concurrent requests in 14
# micro-batches, text streamed, then tokens/s, per-token latency per
# request and card utilization (docs/pipeline.md). Installs what it needs
# on a fresh Debian 12 machine and builds first.
#
# Arguments go to `nptool run` (see `nptool help run`), e.g.
#   scripts/run.sh -p "Once upon a time" -n 4 -M 2 -t 64 --temperature 0.8
# Environment: NP_DEVICES selects cards (default: VFIO cards, else emu:16),
# NP_JOBS sets build parallelism.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${NP_JOBS:-$(nproc)}

scripts/deps.sh
cmake -S . -B build -DNP_WERROR=ON >/dev/null
cmake --build build -j"$jobs" --target nptool
exec build/tools/nptool run "$@"
