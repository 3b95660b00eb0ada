#!/usr/bin/env bash
# Builds the safetensors header fuzz target with clang++ -fsanitize=fuzzer,address,undefined and runs
# it for a bounded time from a seed corpus. Usage: run_fuzz.sh SOURCE_DIR WORK_DIR SECONDS
set -euo pipefail
src=$1 work=$2 secs=$3
mkdir -p "$work/corpus"
cp -n "$src"/tests/model/fuzz/corpus/* "$work/corpus/" 2>/dev/null || true
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  "$src/tests/model/fuzz/safetensors_header_fuzz.cpp" "$src/model/safetensors_header.cpp" "$src/common/error.cpp" \
  -lfmt -o "$work/safetensors_header_fuzz"
"$work/safetensors_header_fuzz" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work/corpus"
