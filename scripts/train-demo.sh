#!/bin/bash
# Train np's demo model (data/models/np-demo.gguf) from scratch on a fresh
# Debian 12 machine: installs PyTorch and the text packages from Debian,
# builds nptool, then
#   1. assembles the text (scripts/train-demo.py corpus),
#   2. trains the SentencePiece-style vocabulary with np's own trainer
#      (nptool model mkgguf) and tokenizes the text with it,
#   3. trains the weights in PyTorch (CPU, fixed seed, time budgets),
#   4. writes the GGUF through np's writer (nptool model mkgguf --weights),
#   5. records PyTorch's greedy continuations beside it (np-demo.greedy)
#      and copies the held-out text and the training record.
# Usage: scripts/train-demo.sh [MINUTES [MINUTES2]]: the time budgets of
# the two training phases (default 40 and 30, what the committed model
# took on a 2-core machine shared with other work). Work files go to
# $NP_TRAIN_DIR (default build-train/). data/models/README.md describes
# the result.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
minutes=${1:-40}
minutes2=${2:-30}
work=${NP_TRAIN_DIR:-$root/build-train}
py=/usr/bin/python3 # Debian's python3, where python3-torch lives

# Debian's PyTorch and the texts; OpenBLAS in place of the reference BLAS
# (Debian's PyTorch calls libblas.so.3: the alternative with the highest
# priority serves it; the reference one is some 5 times slower)
"$root/scripts/deps.sh"
pkgs=(python3-torch python3-numpy libopenblas0-pthread bible-kjv
	bible-kjv-text debian-reference-en debian-reference-de
	debian-reference-fr debian-reference-es)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build-run -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-run -j"$(nproc)" --target nptool >&2
nptool=$root/build-run/tools/nptool

# the shape (scripts/train-demo.py SHAPE holds the same)
shape=(--layers 4 --dim 256 --heads 8 --kv-heads 2 --ffn 512 --vocab 2048)
mkdir -p "$work" data/models
$py scripts/train-demo.py corpus "$work/corpus"
# np's vocabulary trainer: the F32 seed weights of tok.gguf are not used
"$nptool" model mkgguf "${shape[@]}" --type f32 \
	--text "$work/corpus/train.txt" --out "$work/tok.gguf"
"$nptool" model tokenize "$work/tok.gguf" -f "$work/corpus/train.txt" \
	--ids-out "$work/train.ids"
"$nptool" model tokenize "$work/tok.gguf" -f "$work/corpus/heldout.txt" \
	--ids-out "$work/heldout.ids"
bos=$("$nptool" --json model info "$work/tok.gguf" |
	$py -c 'import json, sys; print(json.load(sys.stdin)["vocab"]["bos"])')
nice $py scripts/train-demo.py train "$work/train.ids" "$work/heldout.ids" \
	"$work/run" --minutes "$minutes" --bos "$bos"
# a second cosine cycle from those weights: peak 2e-3, batch 12 (more,
# smaller steps)
nice $py scripts/train-demo.py train "$work/train.ids" "$work/heldout.ids" \
	"$work/run2" --minutes "$minutes2" --bos "$bos" \
	--init "$work/run/weights.f32" --lr 2e-3 --batch 12
# the same vocabulary again (the trainer is deterministic), the weights
# from PyTorch, F16
"$nptool" model mkgguf "${shape[@]}" --type f16 \
	--text "$work/corpus/train.txt" --weights "$work/run2/weights.f32" \
	--out data/models/np-demo.gguf
$py scripts/train-demo.py record "$work/run2/weights.f32" "$nptool" \
	data/models/np-demo.gguf data/models/np-demo.greedy
cp "$work/corpus/heldout.txt" data/models/heldout.txt
$py - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
t = dict(phases=[json.load(open(w + "/run/train.json")),
                json.load(open(w + "/run2/train.json"))],
         corpus=json.load(open(w + "/corpus/corpus.json")))
json.dump(t, open("data/models/np-demo.train.json", "w"), indent=1)
EOF
echo "wrote data/models/np-demo.gguf, np-demo.greedy, np-demo.train.json," \
	"heldout.txt"
