#!/usr/bin/env bash
# Prefill work's device run (issue 6): the prefill kernel tests, the attention kernel bench, the
# 4,096-token engine prefill, compute-sanitizer (memcheck, racecheck) over the prefill attention tests
# and (optionally) the transformers baseline, in one call. Usage: prefill_device_run.sh BUNDLE_DIR
# [hf-modes]; logs go to $OUT. Each step has its own time limit so one slow step cannot eat the others.
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
timeout 50 "$B/bin/tessera_cuda_kernel_tests" --gtest_filter='*Prefill*:*RmsNorm*:*SiluMul*:*Pdl*' 2>&1 | tee "$OUT/tests.log" \
  | grep -E "^\[  (PASSED|FAILED)|FAILED|tests ran" ; echo "tests rc=${PIPESTATUS[0]}"
step kernel-bench
timeout 60 "$B/bin/tessera_cuda_kernel_bench" --prefill-only 2>&1 | tee "$OUT/kernel_bench.jsonl" \
  | grep -E 'attention_prefill_variant|prefill_elementwise|matmul_8192'
step engine-prefill
timeout 75 "$B/bin/tessera" bench engine --device cuda --shape llama-3-8b --load-format dummy --prefill 4096 2>&1 \
  | tee "$OUT/engine_prefill.json" | tail -1
# The sanitizers last (racecheck first): a time limit cuts them, not the figures. The cases with
# 48- and 1-key cache blocks exercise the page-table slots fetched ahead of each stage.
step racecheck
timeout 75 compute-sanitizer --tool racecheck --error-exitcode 9 "$B/bin/tessera_cuda_kernel_tests" \
  --gtest_filter='Groups/CudaPrefillAttention.*/G4_D128_B48:Groups/CudaPrefillAttention.*/G1_D64:CudaRmsNorm.*' > "$OUT/sanitize.log" 2>&1
echo "racecheck rc=$?"; tail -3 "$OUT/sanitize.log"
step memcheck
timeout 35 compute-sanitizer --tool memcheck --error-exitcode 9 "$B/bin/tessera_cuda_kernel_tests" \
  --gtest_filter='Groups/CudaPrefillAttention.*/G4_D128_B48:Groups/CudaPrefillAttention.*/G1_D64_B1' \
  >> "$OUT/sanitize.log" 2>&1; echo "memcheck rc=$?"; tail -3 "$OUT/sanitize.log"
if [ -n "$HF_MODES" ]; then
  step hf-baseline
  for m in ${HF_MODES//,/ }; do
    case $m in compile) t=300 ;; *) t=70 ;; esac
    timeout "$t" python3 "$HERE/hf_baseline.py" --modes "$m" 2>&1 | tee -a "$OUT/hf_baseline.log" | grep -E '^\{|Error|error' | tail -6
  done
fi
step end
