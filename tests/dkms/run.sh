#!/bin/bash
# SPDX-License-Identifier: MIT
#
# np DKMS run: `dkms add`, `dkms build` and `dkms install` of np_vfio_pci
# from driver/dkms.conf against Debian's kernel headers, as an operator's
# machine does after a kernel update, into private DKMS trees (nothing of
# the host's /var/lib/dkms or /lib/modules is touched, no module is loaded).
# DKMS signs the module as on a Secure Boot machine, here with a key it
# makes in the private tree and the kernel's own sign-file.
#
#   tests/dkms/run.sh              # 6.1 and 6.12
#   tests/dkms/run.sh 6.12.118+deb12-amd64
#
# For each kernel it fetches the headers (scripts/kernel-headers.sh), checks
# the installed module's vermagic names that kernel and that it is signed,
# and removes it again
# with `dkms remove`. Environment: NP_CACHE as for scripts/kernel-headers.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
name=np_vfio_pci
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$root/driver/dkms.conf")

log() { printf 'np-dkms: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

command -v dkms >/dev/null || die "dkms is not installed; run scripts/deps.sh"
[ -n "$version" ] || die "driver/dkms.conf has no PACKAGE_VERSION"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trees=(--dkmstree "$tmp/dkms" --sourcetree "$tmp/src" --installtree "$tmp/install" --no-depmod)
export mok_signing_key=$tmp/mok.key mok_certificate=$tmp/mok.pub
src=$tmp/src/$name-$version
mkdir -p "$src" "$tmp/dkms" "$tmp/install"
cp -r "$root/Kbuild" "$root/driver" "$root/include" "$src/"
cp "$root/driver/dkms.conf" "$src/"

[ $# -gt 0 ] || set -- 6.1 6.12
for k in "$@"; do
	hdr=$("$root/scripts/kernel-headers.sh" "$k" | tail -1)
	kver=${hdr%%$'\t'*}
	kbuild=${hdr#*$'\t'}
	args=("${trees[@]}" -m "$name" -v "$version" -k "$kver" --kernelsourcedir "$kbuild")
	export sign_file=$kbuild/scripts/sign-file
	mkdir -p "$tmp/install/$kver"
	log "dkms add, build and install for $kver"
	dkms add "${trees[@]}" -m "$name" -v "$version" >&2
	if ! dkms build "${args[@]}" >&2 || ! dkms install "${args[@]}" >&2; then
		cat "$tmp/dkms/$name/$version/build/make.log" >&2 2>/dev/null || true
		die "dkms failed for $kver"
	fi
	ko=$(find "$tmp/install/$kver" -name "$name.ko*" | head -1)
	[ -n "$ko" ] || die "dkms install put no $name.ko under $tmp/install/$kver"
	case $ko in
	*.xz) xz -dc "$ko" >"$tmp/$name.ko" ;;
	*.zst) zstd -qdc "$ko" >"$tmp/$name.ko" ;;
	*) cp "$ko" "$tmp/$name.ko" ;;
	esac
	magic=$(/sbin/modinfo -F vermagic "$tmp/$name.ko")
	[ "${magic%% *}" = "$kver" ] || die "$ko has vermagic '$magic', expected $kver"
	signer=$(/sbin/modinfo -F signer "$tmp/$name.ko")
	[ "$signer" = "DKMS module signing key" ] || die "$ko is not signed with DKMS's key (signer '$signer')"
	dkms status "${trees[@]}" -m "$name" -v "$version" -k "$kver" | grep -q installed ||
		die "dkms status does not show $name/$version installed for $kver"
	dkms remove "${trees[@]}" -m "$name" -v "$version" -k "$kver" >&2
	[ -z "$(find "$tmp/install/$kver" -name "$name.ko*")" ] ||
		die "dkms remove left $name.ko under $tmp/install/$kver"
	log "PASS $kver: ${ko#"$tmp/install/"}"
done
