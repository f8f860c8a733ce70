#!/bin/sh
# check_layers.sh - the library's layers stay in order.
#
#   tests/check_layers.sh OBJDIR
#
# src/ has one folder per layer, bottom up: wire, engine, uring, api, and
# tls (libmuxring-tls, a library of its own on the public API).  A file may
# include and call its own layer and the ones below it, never one above.
# Includes are read from the sources; calls from the objects in OBJDIR (the
# undefined symbols of each object, matched to the layer that defines them),
# so a call through a forward declaration is caught too.  The wire codec and
# the engine are sans-I/O: they may include no io_uring, socket, file or clock
# header.  Exit 0 when all holds; otherwise one line per breach and exit 1.
set -eu

objdir=${1:?usage: check_layers.sh OBJDIR}
layers="wire engine uring api tls"
sans_io_headers='liburing\.h|sys/socket\.h|netinet/|arpa/|netdb\.h|unistd\.h|fcntl\.h|poll\.h|sys/epoll\.h|sys/mman\.h|time\.h|pthread\.h|stdio\.h'

rank() {
	n=0
	for l in $layers; do
		[ "$l" = "$1" ] && { echo $n; return; }
		n=$((n + 1))
	done
	echo "check_layers: unknown layer folder src/$1" >&2
	exit 1
}

breaches=0
breach() {
	echo "layer breach: $*"
	breaches=$((breaches + 1))
}

for dir in src/*/; do
	layer=$(basename "$dir")
	own=$(rank "$layer")
	for src in "$dir"*.[ch]; do
		for inc in $(sed -n 's/^#include "\([a-z_]*\)\/.*"/\1/p' "$src"); do
			[ "$(rank "$inc")" -le "$own" ] || breach "$src includes src/$inc/"
		done
		case $layer in wire|engine)
			if grep -En "^#include <($sans_io_headers)" "$src" >/dev/null; then
				breach "$src is sans-I/O but includes" \
				  "$(grep -Eo "^#include <($sans_io_headers)[^>]*>" "$src" | tr '\n' ' ')"
			fi ;;
		esac
	done
done

# symbol -> layer of the object that defines it
defs=$(mktemp)
trap 'rm -f "$defs"' EXIT
for obj in "$objdir"/src/*/*.o; do
	layer=$(basename "$(dirname "$obj")")
	nm --defined-only "$obj" | awk -v l="$layer" '$2 ~ /^[TDBR]$/ { print $3, l }'
done > "$defs"

for obj in "$objdir"/src/*/*.o; do
	layer=$(basename "$(dirname "$obj")")
	own=$(rank "$layer")
	for sym in $(nm --undefined-only "$obj" | awk '{ print $2 }'); do
		to=$(awk -v s="$sym" '$1 == s { print $2; exit }' "$defs")
		[ -n "$to" ] || continue
		[ "$(rank "$to")" -le "$own" ] ||
			breach "$obj (src/$layer) calls $sym in src/$to"
	done
done

if [ "$breaches" -ne 0 ]; then
	echo "check_layers: $breaches breach(es)"
	exit 1
fi
echo "check_layers: $(ls "$objdir"/src/*/*.o | wc -l) objects, layers in order"
