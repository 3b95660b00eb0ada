#!/usr/bin/env bash
# Prefill attention device call (issue 6, split-barrier / TMA ping-pong kernels): copy it beside
# b.tar.xz (it reads it from its own folder), a bundle (deploy/bundle/make-bundle --out /tmp/prefill5b
# ...) of the kernel tests and bench and of tessera binaries named tessera_<label> (the same build with
# different default prefill variants, e.g. tessera_d11 = the ping-pong default of main,
# tessera_d13, tessera_d15). Usage: prefill_split_device_run.sh SECONDS ENGINE_ORDER, e.g.
# "d11 d15 d11 d15 d11 d15". Steps: prefill kernel tests (every variant vs fp64), kernel bench
# --prefill-only, racecheck + synccheck over prefill tests, then the 4,096-token engine prefill with
# each binary of ENGINE_ORDER in turn while time is left, then ncu on the TMA variant. Logs go to
# one tar, $OUT/logs.tar (the device returns at most 8 files).
set -u
START=$(date +%s)
LIMIT=${1:-220}
ORDER=${2:-}
left() { echo $((LIMIT - ($(date +%s) - START))); }
cd "$(dirname "$0")"
FINAL_OUT=$OUT
OUT=/tmp/prefill5_logs
mkdir -p $OUT
trap 'tar cf $FINAL_OUT/logs.tar -C $OUT .' EXIT
tar xJf b.tar.xz -C /tmp
B=/tmp/prefill5b
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64" NCCL_NVLS_ENABLE=0
T=$B/libexec/tessera_cuda_kernel_tests
K=$B/libexec/tessera_cuda_kernel_bench
step() { echo "== $1 ($(date -u +%T), $(left) s left)"; }
cap() { local l; l=$(left); echo $(( l < $1 ? l : $1 )); }
step gpu; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
step tests
timeout 60 $T --gtest_filter='*Prefill*' > $OUT/tests.log 2>&1; echo "tests rc=$?"
grep -E "^\[  (PASSED|FAILED)|^\[  FAILED|tests ran" $OUT/tests.log | head -20
grep -B2 -A6 "Failure" $OUT/tests.log | head -30
step kbench
timeout $(cap 60) $K --prefill-only > $OUT/kbench.jsonl 2>&1; echo "kbench rc=$?"
grep -E 'variant|matmul_8192' $OUT/kbench.jsonl | grep -v '"kernel":"attention",' \
  | sed 's/"kernel":"attention_prefill_variant",//' | cut -c1-150
step racecheck
[ $(left) -gt 60 ] && { timeout $(cap 45) compute-sanitizer --tool racecheck --error-exitcode 9 $T \
  --gtest_filter='Groups/CudaPrefillAttention.*/G4_D128:Groups/CudaPrefillAttention.*/G1_D64_B1' > $OUT/racecheck.log 2>&1; \
  echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY|PASSED|FAILED|rror" $OUT/racecheck.log | head -5; }
step synccheck
[ $(left) -gt 50 ] && { timeout $(cap 35) compute-sanitizer --tool synccheck --error-exitcode 9 $T \
  --gtest_filter='Groups/CudaPrefillAttention.*/G4_D128_B48:Groups/CudaPrefillAttention.*/G1_D64_B1' > $OUT/synccheck.log 2>&1; \
  echo "synccheck rc=$?"; grep -E "SYNCCHECK SUMMARY|ERROR SUMMARY|PASSED|FAILED|rror" $OUT/synccheck.log | head -5; }
i=0
for label in $ORDER; do
  i=$((i + 1))
  [ $(left) -gt 40 ] || break
  step "engine $i $label"
  timeout $(cap 35) $B/libexec/tessera_$label bench engine --device cuda --shape llama-3-8b --load-format dummy \
    --prefill 4096 > $OUT/engine_${i}_$label.json 2>&1; echo "engine rc=$?"
  tail -1 $OUT/engine_${i}_$label.json | grep -oE '"(prefill_ms|pct_of_matmul_rate|matmul_8192_bf16_TFLOPs)":[0-9.]+' | tr '\n' ' '; echo
done
if [ $(left) -gt 25 ]; then
  step ncu
  SECS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section LaunchStats --section SchedulerStats --section WarpStateStats"
  # Launches of the split kernel in the bench: variants 13, 14, 15 (13 each: 3 warm-ups + 10 timed).
  timeout $(cap 25) ncu --clock-control none -k regex:split_kernel --launch-skip 26 -c 1 $SECS $K --prefill-only \
    > $OUT/ncu.txt 2>&1; echo "ncu rc=$?"
  grep -E "split|Duration|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Tensor|Est. Speedup" $OUT/ncu.txt \
    | cut -c1-160 | head -16
fi
step end
