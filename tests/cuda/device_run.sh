#!/usr/bin/env bash
# One device call: kernel tests, compute-sanitizer, HF parity, and the engine benchmarks, from a
# bundle made by deploy/bundle/make-bundle. Logs go to $OUT (the device tool brings them back).
# Usage (on the GPU machine): tests/cuda/device_run.sh BUNDLE_DIR [parts...]
#   parts: kernels sanitize parity bench fp32gen tp baseline kbench (default: kernels sanitize parity bench)
#   fp32gen needs TOKENIZER_DIR; tp needs TP_DIR (the layout tests/parallel/tp_cuda_device.sh reads:
#   e2e_device.py, tessera_api.desc, models.tar.gz; the bundle is BUNDLE_DIR); baseline runs
#   bench/cuda/hf_baseline.py (transformers eager and torch.compile) after the engine benchmarks.
set -uo pipefail
bundle=$1; shift
parts=${*:-kernels sanitize parity bench}
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
rc=0
for part in $parts; do
  case $part in
    kernels)
      timeout 120 "$bundle/bin/tessera_cuda_kernel_tests" 2>&1 | tee "$OUT/kernel_tests.log" | grep -E "^\[  (PASSED|FAILED)|FAILED|error" ;
      [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1 ;;
    sanitize)
      export LD_LIBRARY_PATH="$bundle/lib:/usr/local/cuda/lib64"
      timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 "$bundle/libexec/tessera_cuda_kernel_tests" \
        --gtest_filter='-CudaSampling.SameSeed*' > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?" | tee -a "$OUT/summary.txt"
      tail -3 "$OUT/memcheck.log"
      timeout 100 compute-sanitizer --tool racecheck --error-exitcode 9 "$bundle/libexec/tessera_cuda_kernel_tests" \
        --gtest_filter='*CudaPagedAttention.*:CudaSampling.Greedy*:CudaRmsNorm.*:CudaDecodeAttention.Graph*:Shapes/CudaDecodeAttention.*/4:Shapes/CudaDecodeAttention.*/6:*CudaF32PagedAttention.*:CudaF32RmsNorm.*:CudaPromptLogprobs.*:Shapes/CudaFusedDecodeAttention.*/3:CudaFusedDecodeAttention.Graph*' > "$OUT/racecheck.log" 2>&1; echo "racecheck rc=$?" | tee -a "$OUT/summary.txt"
      tail -3 "$OUT/racecheck.log" ;;
    parity)
      PYTHONUNBUFFERED=1 timeout 300 python3 "$here/hf_parity.py" --tool "$bundle/bin/tessera_cuda_logits" --work /tmp/hf_parity ${CPU_ENGINE:+--cpu-engine "$CPU_ENGINE"} \
        2>&1 | grep -v Warning | tee "$OUT/parity.log"; [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1 ;;
    fp32gen)
      timeout 200 "$here/fp32_generate_check.sh" "$bundle" "$TOKENIZER_DIR" 2>&1 | tee "$OUT/fp32_generate.log"
      [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1 ;;
    bench)
      for args in "--batch 1 --context 512" "--batch 64 --context 1024" "--batch 1 --context 32768" "--prefill 4096"; do
        echo "== bench engine --device cuda --shape llama-3-8b --load-format dummy $args" | tee -a "$OUT/bench.log"
        timeout 100 "$bundle/bin/tessera" bench engine --device cuda --shape llama-3-8b --load-format dummy $args \
          2>>"$OUT/bench.err" | tee -a "$OUT/bench.log" | python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: (round(v,3) if isinstance(v,float) else v) for k,v in d.items()})'
      done ;;
    tp)
      [ -e "$TP_DIR/bundle" ] || ln -s "$(cd "$bundle" && pwd)" "$TP_DIR/bundle"
      timeout 420 "$here/../parallel/tp_cuda_device.sh" "$TP_DIR" "$OUT/tp" > "$OUT/tp.log" 2>&1 || rc=1
      grep -h "e2e_device \|TP=1 over NCCL\|PASSED\|FAILED" "$OUT/tp.log" | tail -12 ;;
    kbench)
      timeout 150 "$bundle/bin/tessera_cuda_kernel_bench" > "$OUT/kernel_bench.log" 2>&1 || rc=1
      tail -5 "$OUT/kernel_bench.log" ;;
    baseline)
      for m in eager compile; do
        PYTHONUNBUFFERED=1 timeout 300 python3 "$here/../../bench/cuda/hf_baseline.py" --modes "$m" 2>&1 \
          | tee -a "$OUT/hf_baseline.log" | grep -E '^\{|Error|error' | tail -6
      done ;;
  esac
done
echo "device_run rc=$rc"
exit $rc
