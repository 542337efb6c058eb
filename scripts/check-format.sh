#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Check that every tracked C file (*.c, *.h) is formatted as clang-format
# formats it, each with the .clang-format nearest to it: the root one
# (project style) for most of np, emulator/qemu/.clang-format (QEMU's
# style) and driver/.clang-format (the kernel's) for those trees.
#
#     scripts/check-format.sh
#
# Prints each file that differs and how to fix it; exits 1 if any does,
# 2 if clang-format is missing. Generated files are not checked (the list
# below); a region clang-format would spoil is fenced with
# /* clang-format off */ ... /* clang-format on */ in the file itself.
#
# Environment: CLANG_FORMAT (default clang-format).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
clang_format=${CLANG_FORMAT:-clang-format}

# Generated files, written by their generators as they are.
generated=(
	include/np_err_names.h
	libnpmodel/src/npim_unicode_tab.h
	npk/npk_tables.h
)

if ! command -v "$clang_format" >/dev/null; then
	echo "check-format: $clang_format not found; install clang-format" \
		"(Debian: apt-get install clang-format)" >&2
	exit 2
fi

is_generated() {
	local g
	for g in "${generated[@]}"; do
		[ "$1" != "$g" ] || return 0
	done
	return 1
}

bad=()
while IFS= read -r -d '' f; do
	! is_generated "$f" || continue
	[ -f "$f" ] || continue # deleted in the work tree
	"$clang_format" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files -z -- '*.c' '*.h')

if [ ${#bad[@]} -eq 0 ]; then
	echo "check-format: all tracked C files are formatted"
	exit 0
fi
for f in "${bad[@]}"; do
	echo "check-format: $f is not formatted; fix: $clang_format -i $f"
done
echo "check-format: ${#bad[@]} file(s) not formatted" >&2
exit 1
