#!/bin/bash
# Install everything np needs to build and test on Debian 12 (bookworm).
# Idempotent: does nothing when all packages are already present.
set -euo pipefail

pkgs=(
	build-essential cmake pkg-config check libsubunit-dev libpci-dev patch procps python3 time
	# npd: HTTP server and JSON; its tests and load generator: HTTP client
	libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
	# nptool: tables of list and status (the exporter uses libmicrohttpd)
	libsmartcols-dev
	# libnp's image cache: XXH3-128 checksums and keys
	libxxhash-dev
	# a pipeline that spans hosts: UCX between hosts; its test's network
	# namespaces and veth pairs (ip)
	libucx-dev iproute2
	# QEMU 7.2 from Debian's source, with the np-card device
	dpkg-dev ninja-build meson libglib2.0-dev libpixman-1-dev libfdt-dev
	libslirp-dev flex bison seabios ipxe-qemu qemu-system-data
	# formatting check, fuzzers and memory checking
	clang-format
	clang libclang-rt-14-dev valgrind
	# guest integration run
	busybox-static cpio kmod xz-utils zstd pahole
	# the driver's DKMS packaging (tests/dkms)
	dkms
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "np: installing: ${missing[*]}" >&2
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >&2
fi
