#!/usr/bin/env bash
# Prefill A/B device call (issue 6, ping-pong attention): copy it beside b.tar.xz (it reads it from its own folder), a bundle
# (deploy/bundle/make-bundle --out /tmp/prefill4b ...) of tessera, the kernel tests and bench, main's
# tessera as tessera_main and a build with default variant 12 as tessera_d12. Usage: prefill_ab_device_run.sh
# [SECONDS]. Steps: prefill kernel tests (every variant vs fp64, the new ping-pong default 11
# included), kernel bench --prefill-only, the 4,096-token engine prefill alternating main's binary
# (tessera_main) with this branch's (ping-pong default 11) and tessera_d12 (default 12, no turns), racecheck + synccheck over prefill tests,
# ncu on the ping-pong kernel if time is left. Logs to $OUT.
set -u
START=$(date +%s)
LIMIT=${1:-190}
left() { echo $((LIMIT - ($(date +%s) - START))); }
cd "$(dirname "$0")"
tar xJf b.tar.xz -C /tmp
B=/tmp/prefill4b
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64" NCCL_NVLS_ENABLE=0
T=$B/libexec/tessera_cuda_kernel_tests
K=$B/libexec/tessera_cuda_kernel_bench
step() { echo "== $1 ($(date -u +%T), $(left) s left)"; }
cap() { local l; l=$(left); echo $(( l < $1 ? l : $1 )); }
step gpu; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
step tests
timeout 40 $T --gtest_filter='*Prefill*' > $OUT/tests.log 2>&1; echo "tests rc=$?"
grep -E "^\[  (PASSED|FAILED)|^\[  FAILED|tests ran" $OUT/tests.log | head -20
grep -B2 -A6 "Failure" $OUT/tests.log | head -30
step kbench
timeout $(cap 45) $K --prefill-only > $OUT/kbench.jsonl 2>&1; echo "kbench rc=$?"
grep -E 'variant|matmul_8192' $OUT/kbench.jsonl | grep -v '"kernel":"attention",' | sed 's/"kernel":"attention_prefill_variant",//' | cut -c1-160
eng() {  # eng NAME BINARY
  step "engine-$1"
  timeout $(cap 45) $B/libexec/$2 bench engine --device cuda --shape llama-3-8b --load-format dummy --prefill 4096 \
    > $OUT/engine_$1.json 2>&1; echo "engine rc=$?"; tail -1 $OUT/engine_$1.json | cut -c1-700
}
[ $(left) -gt 70 ] && eng main1 tessera_main
[ $(left) -gt 60 ] && eng new1 tessera
[ $(left) -gt 60 ] && eng d12_1 tessera_d12
step racecheck
[ $(left) -gt 40 ] && { timeout $(cap 35) compute-sanitizer --tool racecheck --error-exitcode 9 $T \
  --gtest_filter='Groups/CudaPrefillAttention.*/G4_D128:Groups/CudaPrefillAttention.*/G1_D64_B1' > $OUT/racecheck.log 2>&1; \
  echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY|PASSED|FAILED|rror" $OUT/racecheck.log | head -5; }
step synccheck
[ $(left) -gt 30 ] && { timeout $(cap 30) compute-sanitizer --tool synccheck --error-exitcode 9 $T \
  --gtest_filter='Groups/CudaPrefillAttention.*/G4_D128_B48:Groups/CudaPrefillAttention.*/G1_D64_B1' > $OUT/synccheck.log 2>&1; \
  echo "synccheck rc=$?"; grep -E "SYNCCHECK SUMMARY|ERROR SUMMARY|PASSED|FAILED|rror" $OUT/synccheck.log | head -5; }
[ $(left) -gt 55 ] && eng main2 tessera_main
[ $(left) -gt 45 ] && eng new2 tessera
[ $(left) -gt 40 ] && eng d12_2 tessera_d12
[ $(left) -gt 40 ] && eng main3 tessera_main
[ $(left) -gt 40 ] && eng new3 tessera
if [ $(left) -gt 25 ]; then
  step ncu
  SECS="--section SpeedOfLight --section ComputeWorkloadAnalysis --section LaunchStats --section SchedulerStats --section WarpStateStats"
  timeout $(cap 25) ncu --clock-control none -k regex:pingpong -c 1 $SECS $K --prefill-only > $OUT/ncu.txt 2>&1; echo "ncu rc=$?"
  grep -E "pingpong|Duration|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Tensor|Est. Speedup" $OUT/ncu.txt | cut -c1-160 | head -16
fi
step end
