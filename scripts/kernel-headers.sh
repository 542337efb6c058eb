#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Fetch the Debian headers of one kernel without installing anything, and
# print the directory to build modules against (what
# /lib/modules/<version>/build would be):
#
#   scripts/kernel-headers.sh 6.1.0-57-amd64
#   scripts/kernel-headers.sh 6.12            # the newest 6.12.<n>+deb12-amd64
#   scripts/kernel-headers.sh                 # what linux-image-amd64 depends on
#
# The last line of the output is the version, a tab and the directory.
# Debian's 6.12 header packages depend on the kernel image, so installing
# them would put a kernel into /boot; this script apt-get downloads the
# three packages (headers, common headers, kbuild) and unpacks them with
# dpkg -x under $NP_CACHE/headers/<version> (default /var/cache/np). The
# absolute include in the arch Makefile is pointed at the unpacked copy.
set -euo pipefail

cache=${NP_CACHE:-/var/cache/np}/headers
die() {
	printf 'np-headers: error: %s\n' "$*" >&2
	exit 1
}

# resolve <arg>: the full kernel ABI version (6.1.0-57-amd64,
# 6.12.118+deb12-amd64).
resolve() {
	local v=$1
	case $v in
	"")
		apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/.*Depends: linux-image-\([0-9].*\)$/\1/p' | head -1
		;;
	*-amd64) echo "$v" ;;
	*)
		apt-cache search --names-only "^linux-headers-${v//./\\.}\\.[0-9]+(-[0-9]+|\\+deb[0-9]+)-amd64\$" 2>/dev/null |
			cut -d' ' -f1 | sed 's/^linux-headers-//' | sort -V | tail -1
		;;
	esac
}

kver=$(resolve "${1:-}")
[ -n "$kver" ] || die "no Debian kernel headers match '${1:-}'; run apt-get update, or name the version (6.1.0-57-amd64, 6.12)"
dir=$cache/$kver
if [ ! -e "$dir/.done" ]; then
	pkg=linux-headers-$kver
	common=$(apt-cache depends "$pkg" 2>/dev/null |
		sed -n 's/.*Depends: \(linux-headers-.*-common\)$/\1/p' | head -1)
	kbuild=$(apt-cache depends "$pkg" 2>/dev/null |
		sed -n 's/.*Depends: \(linux-kbuild-.*\)$/\1/p' | head -1)
	[ -n "$common" ] && [ -n "$kbuild" ] ||
		die "apt-cache knows no $pkg (or not its dependencies); run apt-get update"
	rm -rf "$dir"
	mkdir -p "$dir/debs"
	(cd "$dir/debs" && apt-get download "$pkg" "$common" "$kbuild" >&2) ||
		die "apt-get download $pkg $common $kbuild failed"
	for d in "$dir"/debs/*.deb; do
		dpkg -x "$d" "$dir/root"
	done
	rm -rf "$dir/debs"
	mk=$dir/root/usr/src/$pkg/Makefile
	[ -f "$mk" ] || die "$pkg has no usr/src/$pkg/Makefile"
	sed -i "s|^include /usr/src/|include $dir/root/usr/src/|" "$mk"
	touch "$dir/.done"
fi
printf '%s\t%s\n' "$kver" "$dir/root/usr/src/linux-headers-$kver"
