#!/bin/sh
# SPDX-License-Identifier: MIT
#
# np fuzzing and memory-safety CI.
#
#   fuzz/ci.sh [fuzz|sanitize|valgrind|all]     (default: fuzz)
#
# fuzz      build the libFuzzer binaries (clang, ASan+UBSan, coverage in
#           every np library) and run each harness for NP_FUZZ_SECONDS
#           from the checked-in seeds of fuzz/corpus/<harness>/. A crash,
#           leak or timeout fails the run; its reproducer is kept under
#           $NP_ARTIFACTS/<harness>/ (copy it to fuzz/regress/<harness>/).
# sanitize  the whole unit suite (ctest) built with ASan+UBSan.
# valgrind  the whole unit suite under valgrind memcheck, leaks included.
#           Each ctest command runs under valgrind (logs: $NP_ARTIFACTS/valgrind).
#
# Environment:
#   NP_FUZZ_SECONDS    per harness, default 30
#   NP_FUZZ_HARNESSES  default "gguf compile emu card quant tok chat cli http
#                      link"
#   NP_FUZZ_KEEP_GOING 1: keep fuzzing after a crash (-fork=1
#                      -ignore_crashes=1) so one known bug does not end the
#                      run; any crash still fails it
#   NP_ARTIFACTS       default /tmp/np-artifacts (crashes, corpora, logs)
#   NP_BUILD_ROOT      build directories go here, default the source tree
#   NP_CTEST_ARGS      extra ctest arguments for sanitize/valgrind (-R, -E)
#   NP_JOBS            build parallelism, default 2
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-fuzz}
secs=${NP_FUZZ_SECONDS:-30}
harnesses=${NP_FUZZ_HARNESSES:-"gguf compile emu card quant tok chat cli http link"}
art=${NP_ARTIFACTS:-/tmp/np-artifacts}
broot=${NP_BUILD_ROOT:-$root}
jobs=${NP_JOBS:-2}

say() { printf 'np-fuzz: %s\n' "$*"; }
die() { printf 'np-fuzz: %s\n' "$*" >&2; exit 1; }

# clang's libFuzzer runtime ships in libclang-rt-14-dev on Debian 12 (a
# dependency of clang-14); install it only when linking fails.
need_libfuzzer() {
	command -v clang >/dev/null || die "clang not found: apt-get install clang"
	t=$(mktemp -d)
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' \
		>"$t/t.c"
	if ! clang -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" \
		2>/dev/null; then
		say "clang cannot link libFuzzer; installing libclang-rt-14-dev"
		apt-get install -y libclang-rt-14-dev >/dev/null ||
			die "cannot install libclang-rt-14-dev; install it and rerun"
		clang -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" ||
			die "clang still cannot link -fsanitize=fuzzer"
	fi
	rm -rf "$t"
}

run_fuzz() {
	need_libfuzzer
	b=$broot/build-fuzz-clang
	cmake -S "$root" -B "$b" -DCMAKE_C_COMPILER=clang \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DNP_SANITIZE=ON -DNP_FUZZ=ON \
		-DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
	targets=
	for h in $harnesses; do targets="$targets np_fuzz_$h"; done
	# shellcheck disable=SC2086
	cmake --build "$b" -j"$jobs" --target $targets
	failed=
	for h in $harnesses; do
		bin=$b/tests/fuzz/harness/np_fuzz_$h
		work=$art/corpus/$h
		mkdir -p "$work" "$art/$h"
		before=$(find "$art/$h" -type f | wc -l)
		extra=
		[ -f "$root/fuzz/$h.dict" ] && extra=-dict=$root/fuzz/$h.dict
		# cli runs nptool, which talks on stdout and stderr: closed
		# for the target (libFuzzer keeps its own log)
		[ "$h" = cli ] && extra="$extra -close_fd_mask=3"
		[ "${NP_FUZZ_KEEP_GOING:-0}" = 1 ] &&
			extra="$extra -fork=1 -ignore_crashes=1"
		say "$h: fuzzing for ${secs}s (log $art/$h.log)"
		# new inputs go to $work; the checked-in seeds stay untouched
		rc=0
		# shellcheck disable=SC2086
		ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
			"$bin" -max_total_time="$secs" -timeout=30 \
			-rss_limit_mb=4096 -print_final_stats=1 \
			-artifact_prefix="$art/$h/" $extra \
			"$work" "$root/fuzz/corpus/$h" >"$art/$h.log" 2>&1 || rc=$?
		# totals: the DONE line, or the last progress line in fork mode
		{ grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
			"$art/$h.log"; grep -E '^#[0-9]+: cov' "$art/$h.log" |
			tail -n 1; } | sed "s/^/np-fuzz: $h: /" || true
		if [ "$rc" != 0 ] ||
		   [ "$(find "$art/$h" -type f | wc -l)" != "$before" ]; then
			say "$h: FAILED (exit $rc); reproducers in $art/$h/:"
			ls -t "$art/$h/" >&2
			tail -n 60 "$art/$h.log" >&2
			failed="$failed $h"
		fi
	done
	[ -z "$failed" ] || die "harnesses with findings:$failed"
	say "all harnesses clean"
}

run_sanitize() {
	b=$broot/build-asan
	cmake -S "$root" -B "$b" -DNP_SANITIZE=ON -DNP_WERROR=ON >/dev/null
	cmake --build "$b" -j"$jobs"
	# NP_CTEST_ARGS is a list of arguments: split it
	# shellcheck disable=SC2086
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		ctest --test-dir "$b" --output-on-failure ${NP_CTEST_ARGS:-}
}

run_valgrind() {
	command -v valgrind >/dev/null || die "valgrind not found: apt-get install valgrind"
	command -v python3 >/dev/null || die "python3 not found: apt-get install python3"
	b=$broot/build-valgrind
	logs=$art/valgrind
	cmake -S "$root" -B "$b" -DNP_WERROR=ON >/dev/null
	cmake --build "$b" -j"$jobs"
	mkdir -p "$logs"
	# Each ctest test's command and environment, run under valgrind
	# directly: the tests' TIMEOUT properties are sized for native runs.
	# CK_FORK=no keeps every Check test in the process valgrind watches.
	# shellcheck disable=SC2086
	ctest --test-dir "$b" --show-only=json-v1 ${NP_CTEST_ARGS:-} |
		python3 -c '
import json, shlex, sys
logs, opts = sys.argv[1], sys.argv[2]
for t in json.load(sys.stdin)["tests"]:
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    if {"abi", "script"} & set(props.get("LABELS", [])):
        continue  # a script (the installed .so files, npd under load): no C of its own to watch
    env = ["CK_FORK=no", "CK_DEFAULT_TIMEOUT=3600"] + props.get("ENVIRONMENT", [])
    cmd = ["env"] + env + ["valgrind"] + opts.split() + [
        "--log-file=%s/%s.log" % (logs, t["name"])] + t["command"]
    wd = props.get("WORKING_DIRECTORY", ".")
    skip = props.get("SKIP_RETURN_CODE", "-")
    print(t["name"], skip, "cd %s && %s" % (shlex.quote(wd), shlex.join(cmd)))
' "$logs" "--leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --suppressions=$root/fuzz/valgrind.supp" \
		>"$logs/tests"
	failed=
	while read -r name skip cmd; do
		say "valgrind: $name (log $logs/$name.log)"
		rc=0
		sh -c "$cmd" </dev/null >"$logs/$name.out" 2>&1 || rc=$?
		if [ "$rc" = "$skip" ]; then
			say "valgrind: $name skipped itself: $(tail -n 1 "$logs/$name.out")"
		elif [ "$rc" != 0 ]; then
			tail -n 20 "$logs/$name.out" >&2
			grep -E 'ERROR SUMMARY|definitely lost|indirectly lost' \
				"$logs/$name.log" >&2 || true
			failed="$failed $name"
		fi
	done <"$logs/tests"
	[ -z "$failed" ] || die "failed under valgrind (errors, leaks or test failures):$failed"
	say "valgrind: no errors, no leaks"
}

case $mode in
fuzz) run_fuzz ;;
sanitize) run_sanitize ;;
valgrind) run_valgrind ;;
all) run_sanitize && run_valgrind && run_fuzz ;;
*) die "usage: fuzz/ci.sh [fuzz|sanitize|valgrind|all]" ;;
esac
