#!/bin/bash
# The installed libraries' ABI: install the build into a scratch prefix, then
#  1. every function the installed np/*.h headers declare is exported by the
#     library that owns the header, and the library exports nothing else;
#  2. a program that takes the address of every declared function compiles
#     against the installed headers and links and runs through the installed
#     pkg-config files;
#  3. a CMake project finds both libraries with find_package() and links.
# Usage: check_abi.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
err() {
	echo "abi: $*" >&2
	fail=1
}

cmake --install "$build" --prefix "$tmp/usr" >/dev/null
inc=$tmp/usr/include
libdir=$(dirname "$(find "$tmp/usr" -name 'libnp.so' | head -1)")
[ -n "$libdir" ] || {
	echo "abi: the install has no libnp.so" >&2
	exit 1
}

# header -> owning library, from the install manifest's directories
declare -A owner=([np.h]=libnp [pipeline.h]=libnp [recover.h]=libnp [sched.h]=libnp [cluster.h]=libnp
	[log.h]=libnpmodel [model.h]=libnpmodel [perfmodel.h]=libnpmodel
	[chat.h]=libnpmodel [quality.h]=libnpmodel)
for h in "$inc"/np/*.h; do
	[ -n "${owner[$(basename "$h")]:-}" ] ||
		err "installed header np/$(basename "$h") has no owning library in $0"
done

all=$tmp/all.c
for h in "$inc"/np/*.h; do
	echo "#include <np/$(basename "$h")>"
done >"$all"
gcc -I"$inc" -fsyntax-only -aux-info "$tmp/aux.txt" "$all"

for lib in libnp libnpmodel; do
	: >"$tmp/$lib.decl"
	for h in "${!owner[@]}"; do
		[ "${owner[$h]}" = "$lib" ] || continue
		{ grep -F "$inc/np/$h:" "$tmp/aux.txt" || true; } |
			sed -E 's/.*[ *](np_[a-z0-9_]+) \(.*/\1/' >>"$tmp/$lib.decl"
	done
	sort -o "$tmp/$lib.decl" "$tmp/$lib.decl"
	[ -s "$tmp/$lib.decl" ] || err "$lib: no declarations found"
	nm -D --defined-only "$libdir/$lib.so" |
		awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort >"$tmp/$lib.exp"
	missing=$(comm -23 "$tmp/$lib.decl" "$tmp/$lib.exp")
	extra=$(comm -13 "$tmp/$lib.decl" "$tmp/$lib.exp")
	[ -z "$missing" ] || err "$lib.so does not export what its headers declare:" $missing
	[ -z "$extra" ] || err "$lib.so exports functions no installed header declares:" $extra
	echo "abi: $lib.so: $(wc -l <"$tmp/$lib.decl") declared functions, all exported, nothing else"
done

# Link through pkg-config: every declared function by address.
prog=$tmp/abi.c
{
	cat "$all"
	echo "#include <stdio.h>"
	echo "int main(void)"
	echo "{"
	echo "	void (*const fns[])(void) = {"
	cat "$tmp/libnp.decl" "$tmp/libnpmodel.decl" | sed 's/.*/		(void (*)(void))&,/'
	echo "	};"
	echo "	for (unsigned i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)"
	echo "		if (!fns[i])"
	echo "			return 1;"
	echo "	printf(\"%u\\n\", (unsigned)(sizeof(fns) / sizeof(fns[0])));"
	echo "	return 0;"
	echo "}"
} >"$prog"
export PKG_CONFIG_PATH=$libdir/pkgconfig
sed -i "s|^prefix=.*|prefix=$tmp/usr|" "$libdir"/pkgconfig/*.pc
flags=$(pkg-config --cflags --libs libnp libnpmodel)
# shellcheck disable=SC2086
gcc -Wall -Werror -o "$tmp/abi" "$prog" $flags
n=$(LD_LIBRARY_PATH=$libdir "$tmp/abi")
want=$(cat "$tmp/libnp.decl" "$tmp/libnpmodel.decl" | wc -l)
[ "$n" = "$want" ] || err "the pkg-config program resolved $n functions, want $want"
echo "abi: pkg-config link resolves all $n functions from the installed libraries"

# Link through the CMake packages.
mkdir "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<'X'
cmake_minimum_required(VERSION 3.25)
project(npabi C)
find_package(np REQUIRED)
find_package(npmodel REQUIRED)
add_executable(abi abi.c)
target_link_libraries(abi PRIVATE np::np np::npmodel)
X
cp "$prog" "$tmp/cm/abi.c"
cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_PREFIX_PATH="$tmp/usr" >/dev/null
cmake --build "$tmp/cm/b" >/dev/null
n=$(LD_LIBRARY_PATH=$libdir "$tmp/cm/b/abi")
[ "$n" = "$want" ] || err "the CMake package program resolved $n functions, want $want"
echo "abi: find_package(np) and find_package(npmodel) link all $n functions"
exit $fail
