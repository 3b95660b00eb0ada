#!/usr/bin/env bash
# Prefill work's device run (issue 6): kernel tests, compute-sanitizer over the prefill attention
# tests, the attention/projection kernel bench, the 4,096-token engine prefill and (optionally) the
# transformers baseline, in one call. Usage: prefill_device_run.sh BUNDLE_DIR [hf-modes]; logs go to
# $OUT. Each step has its own time limit so one slow step cannot eat the others.
set -u
B=$1
HF_MODES=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/prefill_out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
step() { echo "== $1 ($(date -u +%T))"; }
step gpu; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
step tests
timeout 90 "$B/bin/tessera_cuda_kernel_tests" 2>&1 | tee "$OUT/tests.log" | grep -E "^\[  (PASSED|FAILED)|FAILED|tests ran" ; echo "tests rc=${PIPESTATUS[0]}"
step memcheck
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 "$B/bin/tessera_cuda_kernel_tests" \
  --gtest_filter='*CudaPrefillAttention*' > "$OUT/sanitize.log" 2>&1; echo "memcheck rc=$?"; tail -3 "$OUT/sanitize.log"
step racecheck
timeout 60 compute-sanitizer --tool racecheck --error-exitcode 9 "$B/bin/tessera_cuda_kernel_tests" \
  --gtest_filter='Groups/CudaPrefillAttention.*/G4_D128:Groups/CudaPrefillAttention.*/G1_D64' >> "$OUT/sanitize.log" 2>&1
echo "racecheck rc=$?"; tail -3 "$OUT/sanitize.log"
step kernel-bench
timeout 70 "$B/bin/tessera_cuda_kernel_bench" 2>&1 | grep -v '"kernel":"projection"' | tee "$OUT/kernel_bench.jsonl"
step engine-prefill
timeout 90 "$B/bin/tessera" bench engine --device cuda --shape llama-3-8b --load-format dummy --prefill 4096 2>&1 \
  | tee "$OUT/engine_prefill.json" | tail -1
if [ -n "$HF_MODES" ]; then
  step hf-baseline
  for m in ${HF_MODES//,/ }; do
    case $m in compile) t=300 ;; *) t=70 ;; esac
    timeout "$t" python3 "$HERE/hf_baseline.py" --modes "$m" 2>&1 | tee -a "$OUT/hf_baseline.log" | grep -E '^\{|Error|error' | tail -6
  done
fi
step end
