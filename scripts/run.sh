#!/bin/bash
# The main job: the pipelined LLM on 16 emulated np cards (14 layer cards +
# 2 output cards, N=28 requests in M=14 micro-batches). Installs what it
# needs on a fresh Debian 12 machine, builds, then runs `nptool run`.
# Extra arguments go to `nptool run` (see `nptool help run`), e.g.
#   scripts/run.sh -p "Once upon a time" -n 4 -M 2 -t 64 --temperature 0.8
# NP_DEVICES selects the cards (default emu:16; vfio:all for real cards).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/deps.sh"
cmake -S . -B build-run -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-run -j"$(nproc)" --target nptool np_demo_model >&2
export NP_DEVICES=${NP_DEVICES:-emu:16}
exec build-run/tools/nptool run "$@"
