#!/bin/sh
# Files compiled with per-file ISA flags (*_avx512.cpp, *_avx2.cpp) must define no weak code symbol:
# the linker keeps one copy of an inline or template function for the whole binary, and if it kept
# the AVX-512 one, a CPU without AVX-512 would fault in baseline code. Usage: isa_objects_test.sh BUILD_DIR
set -eu
dir=$1
found=0
status=0
for o in $(find "$dir" -name '*_avx512.cpp.o' -o -name '*_avx2.cpp.o'); do
  found=$((found + 1))
  weak=$(nm -C "$o" | awk '$2 == "W" || $2 == "u"')
  if [ -n "$weak" ]; then
    echo "$o defines shared code symbols:"
    echo "$weak"
    status=1
  fi
done
if [ "$found" -eq 0 ]; then
  echo "no *_avx512.cpp.o or *_avx2.cpp.o objects under $dir"
  exit 1
fi
echo "$found ISA-specific objects checked"
exit $status
