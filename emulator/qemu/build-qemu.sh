#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Build qemu-system-x86_64 from Debian 12's QEMU 7.2 source with the np-card
# device (emulator/qemu/np_card.c around the emulator core) and print the
# path of the binary as the last line of stdout:
#
#     QEMU=$(emulator/qemu/build-qemu.sh | tail -1)
#
# The binary is cached outside the clone in $NP_CACHE/qemu-<hash> (default
# NP_CACHE=/var/cache/np), keyed by a hash of this script, the QEMU patches and
# every device and core source file: an unchanged rerun prints the cached
# path at once. The patched, configured QEMU tree is kept in
# $NP_CACHE/qemu-7.2-work-<key> so that a changed device file costs an
# incremental ninja run, not a full build. Every stage is restartable:
# an interrupted run is finished by the next one. Concurrent runs serialise
# on $NP_CACHE/qemu.lock.
#
# On a fresh Debian 12 machine the script adds a deb-src entry when apt has
# none and installs the build dependencies (as root, or through sudo).
#
# Environment: NP_CACHE (cache directory), NP_JOBS (ninja parallelism,
# default: number of CPUs).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${NP_CACHE:-/var/cache/np}
jobs=${NP_JOBS:-$(nproc)}
# The np-card hook, then upstream fixes Debian's 7.2 lacks (each patch's
# header says why np needs it)
patches=("$here/qemu-7.2-np-card.patch" "$here/qemu-7.2-tcg-commit.patch")
configure_flags=(--target-list=x86_64-softmmu --disable-docs --disable-werror
	--without-default-features --enable-slirp --enable-fdt=system
	--disable-install-blobs
	--firmwarepath=/usr/share/qemu:/usr/share/seabios)
build_deps=(build-essential dpkg-dev ninja-build meson libglib2.0-dev
	libpixman-1-dev libfdt-dev libslirp-dev pkg-config flex bison python3
	patch procps seabios ipxe-qemu qemu-system-data)

log() { printf 'build-qemu: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# The core's C sources and npk's, from the lists CMake reads too
# (emulator/sources.txt, npk/sources.txt), so the library and the device are
# always built from the same files.
core_c=()
for list in "$root/emulator/sources.txt" "$root/npk/sources.txt"; do
	[ -f "$list" ] || die "missing source list $list"
	while read -r f; do
		case $f in '' | '#'*) continue ;; esac
		core_c+=("$(dirname "$list")/$f")
	done <"$list"
done
[ ${#core_c[@]} -gt 0 ] || die "no emulator sources listed"

# Headers: every #include "..." reachable from the sources, looked up next
# to the including file, then in the core's include directories. All files
# land flat in hw/misc/np/, so names must be unique and includes plain.
header_dirs=("$root/emulator/core" "$root/emulator/include" "$root/include")
for f in "${core_c[@]}"; do
	header_dirs+=("$(dirname "$f")")
done
dev_files=("$here/np_card.c" "$here/trace-events" "${core_c[@]}")
include_re='s/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p'
declare -A seen=()
i=0
while [ $i -lt ${#dev_files[@]} ]; do
	f=${dev_files[$i]}
	i=$((i + 1))
	[ -f "$f" ] || die "missing device source $f"
	case $f in *.c | *.h) ;; *) continue ;; esac
	for inc in $(sed -n "$include_re" "$f"); do
		[ "$inc" != trace.h ] || continue # generated in hw/misc/np
		found=
		for d in "$(dirname "$f")" "${header_dirs[@]}"; do
			if [ -f "$d/$inc" ]; then
				found=$(realpath -s "$d/$inc")
				break
			fi
		done
		[ -n "$found" ] || continue # a QEMU header (qemu/osdep.h, ...)
		[[ $inc != */* ]] || die "$f includes \"$inc\": the QEMU" \
			"build flattens the sources, include by file name only"
		[ -z "${seen[$found]:-}" ] || continue
		seen[$found]=1
		dev_files+=("$found")
	done
done
names=$(for f in "${dev_files[@]}"; do basename "$f"; done | sort | uniq -d)
[ -z "$names" ] || die "two device sources share the name(s) $names"

hash_of() { sha256sum "$@" | sed "s|$root/||" | sha256sum | cut -c1-16; }

key=$(hash_of "$here/$(basename "${BASH_SOURCE[0]}")" "${patches[@]}" \
	"${dev_files[@]}")
out=$cache/qemu-$key
bin=$out/qemu-system-x86_64

if [ -x "$bin" ]; then
	touch "$out" 2>/dev/null || true
	log "cached: $bin"
	echo "$bin"
	exit 0
fi

if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	"${sudo_cmd[@]}" mkdir -p "$cache"
	"${sudo_cmd[@]}" chown "$(id -u):$(id -g)" "$cache"
fi
exec 9>"$cache/qemu.lock"
if ! flock -n 9; then
	log "waiting for another build-qemu.sh ($cache/qemu.lock)"
	flock 9
fi
if [ -x "$bin" ]; then
	log "cached (built meanwhile): $bin"
	echo "$bin"
	exit 0
fi

staging=
cleanup() { [ -z "$staging" ] || rm -rf "$staging"; }
trap cleanup EXIT

# Long steps run as stages: in the background, waited for. Bash runs a trap
# as soon as a signal interrupts "wait", while after a foreground command
# that survived a SIGINT (meson does: it takes the interrupted compiler check
# for a failed one and completes) it would carry on and stamp a bad tree.
stage_pid=
kill_tree() {
	local p
	for p in $(pgrep -P "$1"); do
		kill_tree "$p"
	done
	kill -TERM "$1" 2>/dev/null || true
}
on_signal() {
	log "interrupted; the next run picks up from here"
	[ -z "$stage_pid" ] || kill_tree "$stage_pid"
	exit 130
}
trap on_signal INT TERM HUP
stage() {
	local rc=0

	"$@" &
	stage_pid=$!
	wait "$stage_pid" || rc=$?
	stage_pid=
	return "$rc"
}

# --- dependencies -----------------------------------------------------------

missing=()
for p in "${build_deps[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done

has_deb_src() {
	grep -qsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources
}

# The mirror of the first binary "deb" entry, so that the source matches the
# archive the machine installs from.
debian_mirror() {
	local uri
	uri=$(awk '/^Types:/ { deb = ($0 ~ /[[:space:]]deb([[:space:]]|$)/) }
		deb && /^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	if [ -z "$uri" ]; then
		uri=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }
			$1 == "deb" && $2 ~ /^\[/ { for (i = 3; i <= NF; i++)
				if ($i ~ /^[a-z]+:\/\/.*debian\/?$/) { print $i; exit } }' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
	fi
	echo "${uri:-http://deb.debian.org/debian}"
}

apt_updated=
if ! has_deb_src; then
	mirror=$(debian_mirror)
	log "adding a deb-src entry for $mirror (needed by apt-get source qemu)"
	printf '%s\n' "Types: deb-src" "URIs: $mirror" \
		"Suites: bookworm bookworm-updates" "Components: main" \
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
		"${sudo_cmd[@]}" tee /etc/apt/sources.list.d/np-debsrc.sources >/dev/null
	"${sudo_cmd[@]}" apt-get update -q >&2
	apt_updated=1
fi
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	[ -n "$apt_updated" ] || "${sudo_cmd[@]}" apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >&2
fi

# --- Debian's QEMU 7.2 source ---------------------------------------------

mkdir -p "$cache/src"
find_dsc() {
	find "$cache/src" -maxdepth 1 -name 'qemu_7.2+dfsg-*.dsc' |
		sort -V | tail -1
}
dsc=$(find_dsc)
if [ -z "$dsc" ]; then
	log "downloading Debian's QEMU 7.2 source into $cache/src"
	rm -rf "$cache/src.tmp"
	mkdir -p "$cache/src.tmp"
	stage env -C "$cache/src.tmp" apt-get source -q --download-only \
		-o APT::Sandbox::User=root qemu >&2
	find "$cache/src.tmp" -maxdepth 1 -name 'qemu_7.2+dfsg-*.dsc' | grep -q . ||
		die "apt-get source qemu did not fetch QEMU 7.2 (is this Debian 12?)"
	# Tarballs first, the .dsc last: a .dsc in src/ means a complete set.
	find "$cache/src.tmp" -maxdepth 1 -type f ! -name '*.dsc' \
		-exec mv -t "$cache/src" {} +
	mv "$cache/src.tmp"/*.dsc "$cache/src/"
	rmdir "$cache/src.tmp"
	dsc=$(find_dsc)
fi

# --- patched tree --------------------------------------------

wkey=$( (basename "$dsc"; cat "${patches[@]}"; echo "${configure_flags[*]}") |
	sha256sum | cut -c1-16)
work=$cache/qemu-7.2-work-$wkey
src=$work/src
build=$work/build

if [ ! -e "$work/.stamp-src" ]; then
	log "unpacking $(basename "$dsc") with Debian's patches into $src"
	rm -rf "$work"
	mkdir -p "$work"
	stage dpkg-source -q -x "$dsc" "$src" >&2
	for p in "${patches[@]}"; do
		patch -d "$src" -p1 --forward -s <"$p" >&2
	done
	mkdir -p "$src/hw/misc/np"
	touch "$work/.stamp-src"
fi

# --- device sources into hw/misc/np -------------------------------------------

npdir=$src/hw/misc/np
gen=$(mktemp -d)
staging=$gen

# Copy only what changed, so ninja recompiles only what changed.
sync_file() {
	if ! cmp -s "$1" "$npdir/$2"; then
		cp "$1" "$npdir/$2.tmp"
		mv "$npdir/$2.tmp" "$npdir/$2"
		log "updated hw/misc/np/$2"
	fi
}

echo '#include "trace/trace-hw_misc_np.h"' >"$gen/trace.h"
{
	echo "# Generated by emulator/qemu/build-qemu.sh: the np-card device and the"
	echo "# np emulator core it wraps."
	echo "np_ss = ss.source_set()"
	echo "np_ss.add(declare_dependency(include_directories: include_directories('.')))"
	printf "np_ss.add(files(\n  'np_card.c',\n"
	for f in "${core_c[@]}"; do
		printf "  '%s',\n" "$(basename "$f")"
	done
	printf "))\n"
	echo "softmmu_ss.add_all(when: 'CONFIG_NP_CARD', if_true: np_ss)"
} >"$gen/meson.build"

wanted=(meson.build trace.h)
sync_file "$gen/meson.build" meson.build
sync_file "$gen/trace.h" trace.h
for f in "${dev_files[@]}"; do
	name=$(basename "$f")
	wanted+=("$name")
	sync_file "$f" "$name"
done
for f in "$npdir"/*; do
	name=$(basename "$f")
	if [[ " ${wanted[*]} " != *" $name "* ]]; then
		log "removing stale hw/misc/np/$name"
		rm -f "$f"
	fi
done

if [ ! -e "$work/.stamp-configured" ]; then
	log "configuring: ${configure_flags[*]}"
	rm -rf "$build"
	mkdir -p "$build"
	stage env -C "$build" ../src/configure "${configure_flags[@]}" >&2
	touch "$work/.stamp-configured"
fi

# --- build and publish --------------------------------------------------------

log "building qemu-system-x86_64 (ninja -j$jobs in $build)"
stage ninja -C "$build" -j"$jobs" qemu-system-x86_64 >&2

rm -rf "$gen"
staging=$out.tmp.$$
rm -rf "$staging"
mkdir -p "$staging"
cp "$build/qemu-system-x86_64" "$staging/"
{
	echo "source: $(basename "$dsc") + ${patches[*]##*/}"
	echo "configure: ${configure_flags[*]}"
	echo "device sources:"
	sha256sum "${dev_files[@]}" | sed "s|$root/||"
} >"$staging/BUILDINFO"
mv -T "$staging" "$out"
staging=

# Binaries unused for two days go (a cache hit refreshes a binary's time:
# another checkout may still be testing with an older one); so do leftovers
# of interrupted runs and work trees of other configurations.
find "$cache" -maxdepth 1 -name 'qemu-*.tmp.*' -exec rm -rf {} +
find "$cache" -maxdepth 1 -name 'qemu-7.2-work-*' ! -name "qemu-7.2-work-$wkey" \
	-exec rm -rf {} +
find "$cache" -maxdepth 1 -regextype posix-extended \
	-regex '.*/qemu-[0-9a-f]{16}' -mtime +1 ! -name "qemu-$key" \
	-exec rm -rf {} +

log "built: $bin"
echo "$bin"
