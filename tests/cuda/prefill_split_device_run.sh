#!/usr/bin/env bash
# Prefill attention device call (issue 6, split-barrier / TMA / persistent ping-pong kernels): copy it
# beside b.tar.xz (it reads it from its own folder), a bundle (deploy/bundle/make-bundle --out
# /tmp/prefill5b ...) of the kernel tests and bench and of tessera binaries named tessera_<label> (the
# same build with different default prefill variants, e.g. tessera_d11 = main's ping-pong default,
# tessera_d16, tessera_d17), optionally with kernel tests built with such defaults as
# tessera_cuda_kernel_tests_<label> (their prefill tests run too: the generic entry point and the
# mixed prefill/decode tests go through the default). Usage: prefill_split_device_run.sh SECONDS "ENGINE ORDER" "NCU VARIANTS",
# e.g. 225 "d11 d16 d17 d11 d16 d17" "16 17". Steps: prefill kernel tests (every variant vs fp64),
# kernel bench --prefill-only, the 4,096-token engine prefill with each binary of ENGINE ORDER in
# turn, racecheck, synccheck and memcheck over four prefill test cases, then ncu on the 1 x 4,096
# launch of each variant in NCU VARIANTS (13 and up: the split kernel), each while time is left. Logs go to one tar,
# $OUT/logs.tar (the device returns at most 8 files).
set -u
START=$(date +%s)
LIMIT=${1:-215}
ORDER=${2:-}
NCU_VARIANTS=${3:-}
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
CASES='Groups/CudaPrefillAttention.*/G4_D128:Groups/CudaPrefillAttention.*/G1_D64_B1:Groups/CudaPrefillAttention.*/G4_D128_B48:Groups/CudaPrefillAttention.*/G4_D128_KV8'
sanitize() {  # sanitize TOOL SECONDS
  step $1
  [ $(left) -gt $(( $2 + 5 )) ] || { echo "skipped: time"; return; }
  timeout $(cap $2) compute-sanitizer --tool $1 --error-exitcode 9 $T --gtest_filter="$CASES" > $OUT/$1.log 2>&1
  echo "$1 rc=$?"; grep -E "SUMMARY|PASSED|FAILED" $OUT/$1.log | head -5
}
step gpu; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
step tests
timeout 60 $T --gtest_filter='*Prefill*' > $OUT/tests.log 2>&1; echo "tests rc=$?"
grep -E "^\[  (PASSED|FAILED)|^\[  FAILED|tests ran" $OUT/tests.log | head -20
grep -B2 -A6 "Failure" $OUT/tests.log | head -30
for t in $B/libexec/tessera_cuda_kernel_tests_*; do
  [ -e "$t" ] || continue
  label=${t##*_tests_}
  step "tests with default $label"
  timeout 60 $t --gtest_filter='*Prefill*' > $OUT/tests_$label.log 2>&1; echo "tests rc=$?"
  grep -E "^\[  (PASSED|FAILED)|^\[  FAILED" $OUT/tests_$label.log | head -10
done
step kbench
timeout $(cap 45) $K --prefill-only > $OUT/kbench.jsonl 2>&1; echo "kbench rc=$?"
grep -E 'variant|matmul_8192' $OUT/kbench.jsonl | grep -v '"kernel":"attention",' \
  | sed -E 's/"kernel":"attention_prefill_variant",//; s/"pct_matmul":([0-9]+\.[0-9])[0-9]*/"pct":\1/; s/"us":([0-9]+\.[0-9])[0-9]*/"us":\1/' \
  | cut -c1-110
i=0
for label in $ORDER; do
  i=$((i + 1))
  [ $(left) -gt 30 ] || break
  step "engine $i $label"
  timeout $(cap 30) $B/libexec/tessera_$label bench engine --device cuda --shape llama-3-8b --load-format dummy \
    --prefill 4096 > $OUT/engine_${i}_$label.json 2>&1; echo "engine rc=$?"
  tail -1 $OUT/engine_${i}_$label.json | grep -oE '"(prefill_ms|pct_of_matmul_rate|matmul_8192_bf16_TFLOPs)":[0-9.]+' | tr '\n' ' '; echo
done
sanitize racecheck 50
sanitize synccheck 35
sanitize memcheck 35
SECS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section LaunchStats --section SchedulerStats --section WarpStateStats"
for v in $NCU_VARIANTS; do
  [ $(left) -gt 20 ] || break
  step "ncu variant $v"
  # The split kernel's launches in the bench: 13 per variant from 13 on (3 warm-ups + 10 timed).
  timeout $(cap 20) ncu --clock-control none -k regex:split_kernel --launch-skip $(( (v - 13) * 13 )) -c 1 $SECS \
    $K --prefill-only > $OUT/ncu_$v.txt 2>&1; echo "ncu rc=$?"
  grep -E "split_kernel|Duration|Issue Slots Busy|No Eligible|Tensor is|SM Frequency" $OUT/ncu_$v.txt | cut -c1-120 | head -8
done
step end
