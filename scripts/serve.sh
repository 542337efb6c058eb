#!/bin/bash
# npd, the OpenAI-compatible inference server, on 16 emulated cards with the
# demo model, at http://127.0.0.1:8080. Installs what it needs on a fresh
# Debian 12 machine and builds first. Extra arguments go to npd (see
# `npd --help`, docs/npd.md), e.g.
#   scripts/serve.sh --port 9000 --api-key "$(openssl rand -hex 16)"
# NP_DEVICES selects the cards (default emu:16; vfio:all for real cards).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/deps.sh"
cmake -S . -B build-run -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-run -j"$(nproc)" --target npd np_demo_model >&2
export NP_DEVICES=${NP_DEVICES:-emu:16}
exec build-run/tools/npd/npd "$@"
