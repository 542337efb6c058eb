#!/bin/bash
# Run every np test: the formatting check (scripts/check-format.sh), unit
# suites (plain, under ASan+UBSan and under valgrind), the QEMU device's
# qtest suite, time-boxed fuzzers, the kernel driver's DKMS build against
# Debian's 6.1 and 6.12 headers, and the kernel driver run inside a QEMU
# guest on each of those kernels.
# Installs what it needs on a fresh Debian 12 machine first.
#
# Environment: NP_CACHE (default /var/cache/np) holds the QEMU build and the
# guest kernel between runs; NP_JOBS sets build parallelism;
# NP_FUZZ_SECONDS the time per fuzz harness (default 30); NP_GUEST_KERNELS
# the guest kernels, one after the other (default "6.1 6.12").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${NP_JOBS:-$(nproc)}
passed=0
failed=0

step() { printf '\n==== np: %s ====\n' "$*"; }

# ctest_run <build dir> [ctest args]: runs ctest, adds its counts to the
# totals, and returns its status.
ctest_run() {
	local dir=$1 out rc=0
	shift
	out=$(mktemp)
	ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@" 2>&1 |
		tee "$out" || rc=$?
	local line
	line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" | tail -1 || true)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "np: ctest in $dir ran no test" >&2
		return 1
	fi
	local f t
	f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
	t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
	passed=$((passed + t - f))
	failed=$((failed + f))
	return "$rc"
}

finish() {
	local rc=$?
	echo
	echo "np tests: $passed passed, $failed failed"
	exit "$rc"
}
trap finish EXIT

step "dependencies"
scripts/deps.sh

step "formatting (clang-format --dry-run -Werror, each tree in its own style)"
if scripts/check-format.sh; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	exit 1
fi

step "QEMU with the np-card device (cached in ${NP_CACHE:-/var/cache/np})"
qemu=$(emulator/qemu/build-qemu.sh | tail -1)
echo "np: QEMU: $qemu"

step "build (-Werror)"
cmake -S . -B build -DNP_WERROR=ON -DNP_QEMU="$qemu" >/dev/null
cmake --build build -j"$jobs"

step "unit, library, tool and qtest suites"
ctest_run build

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DNP_WERROR=ON -DNP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"

step "unit, library and tool suites under ASan+UBSan"
CK_TIMEOUT_MULTIPLIER=3 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest_run build-asan -LE 'qtest|abi'

step "unit suites under valgrind memcheck (leaks included)"
NP_BUILD_ROOT="$root" fuzz/ci.sh valgrind
passed=$((passed + 1))

step "fuzzers: each harness for ${NP_FUZZ_SECONDS:=30} s from the checked-in corpus"
NP_FUZZ_SECONDS=$NP_FUZZ_SECONDS NP_BUILD_ROOT="$root" fuzz/ci.sh fuzz
passed=$((passed + 1))

step "kernel driver through DKMS (add, build, install, remove) against 6.1 and 6.12 headers"
tests/dkms/run.sh 6.1 6.12
passed=$((passed + 1))

for k in ${NP_GUEST_KERNELS:-6.1 6.12}; do
	step "kernel driver, libnp and nptool over VFIO inside a QEMU guest on Debian's $k kernel (16 cards)"
	glog=$(mktemp)
	if NP_QEMU="$qemu" NP_GUEST_KERNEL=$k tests/guest/run.sh 2>&1 | tee "$glog"; then
		n=$(grep -aoE 'PASS in [0-9]+s on [^:]+: n=[0-9]+' "$glog" | tail -1 | sed 's/.*n=//')
		passed=$((passed + ${n:-1}))
		rm -f "$glog"
	else
		failed=$((failed + 1))
		rm -f "$glog"
		exit 1
	fi
done
