#!/usr/bin/env bash
# Builds the StepPlan decoder fuzz target with clang++ -fsanitize=fuzzer,address,undefined and runs
# it for a bounded time from a seed corpus. Usage: run_fuzz.sh SOURCE_DIR WORK_DIR SECONDS
set -euo pipefail
src=$1 work=$2 secs=$3
mkdir -p "$work/corpus"
cp -n "$src"/tests/parallel/fuzz/corpus/* "$work/corpus/" 2>/dev/null || true
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$src" \
  "$src/tests/parallel/fuzz/step_plan_fuzz.cpp" "$src/parallel/step_plan_codec.cpp" "$src/parallel/wire.cpp" \
  "$src/common/error.cpp" -lfmt -o "$work/step_plan_fuzz"
"$work/step_plan_fuzz" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work/corpus"
