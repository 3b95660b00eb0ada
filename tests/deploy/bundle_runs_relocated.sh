#!/usr/bin/env bash
# Makes a bundle of the given tessera binary, moves it, and runs `tessera version` through its
# launcher with an empty environment; also checks that a non-bundle folder is never overwritten.
set -euo pipefail
src=$1; exe=$2; work=$3
rm -rf "$work"; mkdir -p "$work/keep"
echo precious > "$work/keep/file"
if "$src/deploy/bundle/make-bundle" --out "$work/keep" "$exe" 2>/dev/null; then
  echo "make-bundle overwrote a folder that is not a bundle" >&2; exit 1
fi
[ "$(cat "$work/keep/file")" = precious ]
"$src/deploy/bundle/make-bundle" --out "$work/b" --tar "$work/b.tar.gz" "$exe"
mkdir -p "$work/elsewhere" && tar -xzf "$work/b.tar.gz" -C "$work/elsewhere"
out=$(env -i "$work/elsewhere/b/bin/tessera" version)
echo "$out"
grep -q "^tessera " <<<"$out"
for lib in "$work"/elsewhere/b/lib/*.so*; do
  case $(basename "$lib") in libc.so*|libstdc++.so*|libcuda.so*) echo "bundled a host library: $lib" >&2; exit 1 ;; esac
done
