#!/bin/bash
# SPDX-License-Identifier: MIT
#
# np guest run: the kernel driver and libnp over real VFIO, inside a QEMU
# guest running one of Debian 12's kernels (6.1, or 6.12 from the same
# archive) with 16 np-card devices behind an emulated VT-d IOMMU.
# tests/guest/init is the test; this script builds what it needs, boots
# the guest and turns its result line into an exit status.
#
#   tests/guest/run.sh                         # exit 0: every guest check passed
#   NP_GUEST_KERNEL=6.12 tests/guest/run.sh    # the same on Debian's newest 6.12
#
# Steps: fetch the guest kernel and busybox-static (apt-get download, cached
# in $NP_CACHE/guest), fetch the matching kernel headers
# (scripts/kernel-headers.sh: unpacked, never installed), build
# np_vfio_pci.ko with W=1 -Werror, build the static test binaries (libnp
# suite, nptool's guest suite) and nptool (dynamic, with the libraries it
# loads copied to the same paths in the initramfs), pack an
# initramfs, boot it under TCG with a timeout, read the result marker from
# the serial console. Each card has the id np<i>; the last two sit behind
# PCIe root ports, so that they can be hot-unplugged. tests/guest/qmp-helper.py
# follows the console and turns the guest's "NP-GUEST-QMP ..." lines into
# QMP commands (fault injection, device_del) on QEMU's monitor socket.
#
# Environment:
#   NP_QEMU            qemu-system-x86_64 with np-card (default: the last
#                      line of emulator/qemu/build-qemu.sh)
#   NP_CACHE           cache directory (default /var/cache/np)
#   NP_ARTIFACTS       where a failed run's serial log is kept
#                      (default /tmp/np-artifacts)
#   NP_GUEST_KERNEL    guest kernel: an ABI version (6.1.0-57-amd64,
#                      6.12.118+deb12-amd64) or a series (6.1, 6.12: its
#                      newest Debian build); default: what Debian's
#                      linux-image-amd64 depends on
#   NP_GUEST_CARDS     number of np-card devices (default 16; 0 boots the
#                      guest without cards: module load/unload only)
#   NP_GUEST_CARD_OPTS extra np-card properties, e.g. ",sram-size=0x1000000"
#   NP_GUEST_TIMEOUT   seconds before the guest is killed (default 900)
#   NP_JOBS            build parallelism (default: number of CPUs)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${NP_CACHE:-/var/cache/np}/guest
artifacts=${NP_ARTIFACTS:-/tmp/np-artifacts}
ncards=${NP_GUEST_CARDS:-16}
timeout_s=${NP_GUEST_TIMEOUT:-900}
jobs=${NP_JOBS:-$(nproc)}
work=$root/build-guest

log() { printf 'np-guest: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

need_pkgs() { # install the packages that are missing
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >&2
}

# ---- guest kernel -------------------------------------------------------

hdr=$("$root/scripts/kernel-headers.sh" "${NP_GUEST_KERNEL:-}" | tail -1) ||
	die "no kernel headers for '${NP_GUEST_KERNEL:-the default kernel}'"
kver=${hdr%%$'\t'*}
kbuild=${hdr#*$'\t'}
log "guest kernel $kver, $ncards cards"

need_pkgs build-essential cmake pkg-config check libsubunit-dev libsmartcols-dev \
	libmicrohttpd-dev cpio kmod python3 xz-utils zstd pahole

kroot=$cache/linux-image-$kver
if [ ! -e "$kroot/.done" ]; then
	mkdir -p "$cache/debs"
	(cd "$cache/debs" && apt-get download "linux-image-$kver" >&2) ||
		die "apt-get download linux-image-$kver failed; run apt-get update"
	rm -rf "$kroot"
	dpkg -x "$cache/debs/linux-image-${kver}_"*.deb "$kroot"
	touch "$kroot/.done"
fi
vmlinuz=$kroot/boot/vmlinuz-$kver
kmods=$kroot/lib/modules/$kver/kernel

bbroot=$cache/busybox-static
if [ ! -e "$bbroot/.done" ]; then
	mkdir -p "$cache/debs"
	(cd "$cache/debs" && apt-get download busybox-static >&2) ||
		die "apt-get download busybox-static failed; run apt-get update"
	rm -rf "$bbroot"
	dpkg -x "$cache/debs/"busybox-static_*.deb "$bbroot"
	touch "$bbroot/.done"
fi

# ---- QEMU ---------------------------------------------------------------

qemu=${NP_QEMU:-}
if [ -z "$qemu" ]; then
	qemu=$("$root/emulator/qemu/build-qemu.sh" | tail -1)
fi
[ -x "$qemu" ] || die "QEMU '$qemu' is not executable; set NP_QEMU or run emulator/qemu/build-qemu.sh"

# ---- module and test binaries -------------------------------------------

# The CMake build stays for incremental rebuilds; the rest is rebuilt.
rm -rf "$work/kmod" "$work/initramfs"
mkdir -p "$work/kmod" "$work/initramfs"

# Kbuild builds in the source tree; build a copy to keep the clone clean.
cp -r "$root/Kbuild" "$root/driver" "$root/include" "$work/kmod/"
log "building np_vfio_pci.ko (W=1, -Werror)"
make -s -C "$kbuild" M="$work/kmod" W=1 KCFLAGS=-Werror \
	-j"$jobs" modules >&2
ko=$work/kmod/driver/np_vfio_pci.ko

cflags=(-O2 -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes
	-Wstrict-prototypes -Werror -I"$root/include")
cc "${cflags[@]}" -static -o "$work/np_vfio_hold" "$here/np_vfio_hold.c"

# Static builds of the libnp suite and nptool's suite, renamed in the
# initramfs to the names the suites expect; nptool itself as installed.
static_bins=()
if [ "$ncards" -gt 0 ]; then
	log "building the libnp and nptool suites, statically linked"
	cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DNP_WERROR=ON >/dev/null
	cmake --build "$work/build" -j"$jobs" --target np_libnp_tests_static \
		np_nptool_tests_static nptool >&2
	# A tiny model for `nptool run` over VFIO: 3 layer cards + 2 output
	# cards, small enough for TCG, with a vocabulary from the sample text.
	"$work/build/tools/nptool" model mkgguf --shape tiny --layers 3 --dim 64 \
		--heads 4 --kv-heads 2 --ffn 128 --vocab 512 \
		--text "$root/data/sample-multilingual.txt" \
		--out "$work/np-ci.gguf" >&2
	for t in np_libnp_tests np_nptool_tests; do
		f=$(find "$work/build" -type f -name "${t}_static" | head -1)
		[ -n "$f" ] || die "the build produced no ${t}_static"
		static_bins+=("$f:$t")
	done
fi

# ---- initramfs ----------------------------------------------------------

ir=$work/initramfs
mkdir -p "$ir/bin" "$ir/sbin" "$ir/usr/bin" "$ir/usr/sbin" "$ir/lib/modules/np" \
	"$ir/proc" "$ir/sys" "$ir/dev" "$ir/tmp"
cp "$bbroot/bin/busybox" "$ir/bin/busybox"
ln -s busybox "$ir/bin/sh"
cp "$here/init" "$ir/init"
cp "$work/np_vfio_hold" "$ir/bin/"
for b in "${static_bins[@]}"; do
	cp "${b%%:*}" "$ir/bin/${b##*:}"
done
if [ "$ncards" -gt 0 ]; then
	# nptool and every library it loads (libnp, libsmartcols, libc, the
	# dynamic loader...), each at the path ldd resolved, so that the
	# build's RUNPATH and the loader's defaults find them.
	nptool=$work/build/tools/nptool
	cp "$nptool" "$ir/bin/nptool"
	for lib in $(ldd "$nptool" | grep -oE '/[^ ]+'); do
		mkdir -p "$ir$(dirname "$lib")"
		cp -L "$lib" "$ir$lib"
	done
fi
cp "$ko" "$ir/lib/modules/np/"
[ "$ncards" -gt 0 ] && cp "$work/np-ci.gguf" "$ir/np-ci.gguf"
# The VFIO modules in load order; vfio_virqfd is part of vfio.ko from 6.2 on.
: >"$ir/lib/modules/np/order"
for m in virt/lib/irqbypass drivers/vfio/vfio drivers/vfio/vfio_iommu_type1 \
	drivers/vfio/vfio_virqfd drivers/vfio/pci/vfio-pci-core; do
	dst=$ir/lib/modules/np/$(basename "$m").ko
	if [ -e "$kmods/$m.ko" ]; then
		cp "$kmods/$m.ko" "$dst"
	elif [ -e "$kmods/$m.ko.xz" ]; then
		xz -dc "$kmods/$m.ko.xz" >"$dst"
	elif [ -e "$kmods/$m.ko.zst" ]; then
		zstd -qdc "$kmods/$m.ko.zst" >"$dst"
	elif [ "$m" = drivers/vfio/vfio_virqfd ]; then
		continue
	else
		die "$kmods/$m.ko not found in linux-image-$kver"
	fi
	basename "$m" >>"$ir/lib/modules/np/order"
done
(cd "$ir" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$work/initrd.gz"

# ---- boot ---------------------------------------------------------------

cards=()
for ((i = 0; i < ncards; i++)); do
	bus=
	if [ "$ncards" -ge 8 ] && [ $((i + 2)) -ge "$ncards" ]; then
		cards+=(-device "pcie-root-port,id=rp$i,chassis=$((i + 1)),slot=$((i + 1))")
		bus=,bus=rp$i
	fi
	cards+=(-device "np-card,id=np$i$bus${NP_GUEST_CARD_OPTS:-}")
done

mkdir -p "$artifacts"
serial=$(mktemp "$artifacts/guest-serial.XXXXXX.log")
qmp=$work/qmp.sock
rm -f "$qmp"
python3 "$here/qmp-helper.py" "$qmp" "$serial" &
helper=$!
log "booting: $qemu ($ncards cards, timeout ${timeout_s}s)"
start=$(date +%s)
rc=0
# The guest's /init powers off; -no-reboot turns a kernel panic into an exit.
timeout -k 10 "$timeout_s" "$qemu" \
	-L /usr/share/seabios -L /usr/share/qemu \
	-M q35,kernel-irqchip=split -accel tcg -cpu max -smp 2 -m 2G \
	-nic none -vga none -display none -monitor none -serial stdio \
	-qmp "unix:$qmp,server=on,wait=off" \
	-device intel-iommu,intremap=on,caching-mode=on \
	-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 intel_iommu=on panic=-1 oops=panic quiet np.cards=$ncards" \
	-no-reboot "${cards[@]}" </dev/null | tee "$serial" || rc=$?
elapsed=$(($(date +%s) - start))
kill "$helper" 2>/dev/null || true
wait "$helper" 2>/dev/null || true

result=$(grep -a '^NP-GUEST-RESULT:' "$serial" | tail -1 | tr -d '\r' || true)
if [ "$rc" -eq 124 ]; then
	log "the guest did not finish within ${timeout_s}s"
elif [ "$rc" -ne 0 ]; then
	log "QEMU exited with status $rc"
fi
if [ "$rc" -eq 0 ] && [[ $result == "NP-GUEST-RESULT: PASS "* ]]; then
	rm -f "$serial"
	log "PASS in ${elapsed}s on $kver: ${result#NP-GUEST-RESULT: PASS }"
	exit 0
fi
log "FAIL after ${elapsed}s on $kver: ${result:-no result line}; guest serial log: $serial"
exit 1
