#!/usr/bin/env bash
# On a GPU machine: the CUDA tensor-parallel runtime's device checks. Usage:
#   tp_cuda_device.sh DIR OUT [all|nccl|ucx]
# DIR holds bundle/ (deploy/bundle/make-bundle of tessera, tp_cuda_test and tp_cuda_host_staged_test),
# e2e_device.py, tp_rank_loss.py, tessera_api.desc (protoc --include_imports of proto/) and models.tar.gz (tok-qwen3/:
# Qwen3's tokenizer for the built-in random checkpoint; llama8b/: a Llama-3-8B config.json + Llama 3's
# tokenizer for dummy weights). Always runs tp_cuda_test (shard slices; TP=1 over NCCL vs the plain
# runner). nccl: tests/cuda/e2e_device.py against `tessera serve --device cuda --tp 1 --tp-backend
# nccl` and plain `--device cuda` on the random checkpoint, then TP=1 over NCCL on the 8B shape.
# ucx (one GPU runs TP = 2: collectives staged through host memory over UCX): tp_cuda_host_staged_test
# (two forked ranks on device 0 vs the plain runner, fp32 and bf16), e2e_device.py against `tessera
# serve --device cuda --tp 2 --tp-backend ucx --tp-ranks-per-device 2` on the random checkpoint,
# tp_rank_loss.py against that server (rank 1 SIGKILLed mid-stream), the same server on the 8B shape
# with dummy weights: one greedy completion, and the time of a decode
# step (completion of 65 tokens minus 1 token, over 64 steps) next to the plain one-GPU server's.
# Logs in OUT.
set -u -o pipefail
D=$(cd "$1" && pwd)
OUT=$2
WHAT=${3:-all}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
M=$(mktemp -d)
tar -xzf "$D/models.tar.gz" -C "$M"
export TESSERA_CACHE_DIR=$M/cache TESSERA_DEFAULT_TOKENIZER_DIR=$M/tok-qwen3
nvidia-smi -L
# NCCL comes from the host (the bundle leaves it out): find it when the loader does not.
if LD_LIBRARY_PATH="$D/bundle/lib:/usr/local/cuda/lib64" ldd "$D/bundle/libexec/tessera" | grep -q "libnccl.*not found"; then
  for p in $(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null) \
           $(dirname "$(find / -xdev -name 'libnccl.so.2*' 2>/dev/null | head -1)" 2>/dev/null); do
    [ -e "$p/libnccl.so.2" ] && { export LD_LIBRARY_PATH="$p${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; break; }
  done
fi
LD_LIBRARY_PATH="$D/bundle/lib:${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64" ldd "$D/bundle/libexec/tessera" | grep -E "nccl|cublas|not found"
status=0
e2e() {  # label, seconds, serve flags, more e2e_device.py flags
  timeout "$2" python3 "$D/e2e_device.py" --tessera "$D/bundle/bin/tessera" --descriptors "$D/tessera_api.desc" \
    --label "$1" --serve-args "$3" ${4:-} 2>&1 | tee "$OUT/e2e_$1.log" || status=1
}
# Decode step time of a server started with the given flags (label, seconds, serve flags): the greedy
# completion of 65 tokens less that of 1 token (prefill and request overheads cancel), over 64 steps.
step_time() {
  timeout "$2" python3 - "$D" "$D/bundle/bin/tessera" "$1" "$3" <<'PY' 2>&1 | tee "$OUT/step_time_$1.log" || status=1
import shlex, sys, time
import requests
sys.path.insert(0, sys.argv[1])
from e2e_device import Server  # starts the server on free ports and waits for /ready
tessera, label, flags = sys.argv[2], sys.argv[3], shlex.split(sys.argv[4])
server = Server(tessera, flags, 1024, {})
try:
    base = server.base
    model = requests.get(base + '/v1/models', timeout=30).json()['data'][0]['id']
    def run(n):
        t = time.perf_counter()
        r = requests.post(base + '/v1/completions', json={'model': model, 'prompt': 'Once upon a time', 'max_tokens': n,
                          'temperature': 0, 'ignore_eos': True}, timeout=300)
        r.raise_for_status()
        body = r.json()
        assert body['usage']['completion_tokens'] == n, body['usage']
        return time.perf_counter() - t, body['choices'][0]['text']
    run(65)
    one = min(run(1)[0] for _ in range(3))
    full, text = min(run(65) for _ in range(2))
    print('step_time %s: %.2f ms per decode step (65 tokens %.1f ms, 1 token %.1f ms); text %r'
          % (label, (full - one) * 1000 / 64, full * 1000, one * 1000, text[:60]))
finally:
    server.stop()
    print('\n'.join(l for l in server.log_tail().splitlines() if 'rank' in l or 'KV cache' in l or 'error' in l.lower()))
PY
}
timeout 90 "$D/bundle/bin/tp_cuda_test" 2>&1 | tee "$OUT/tp_cuda_test.log" || status=1
if [ "$WHAT" = all ] || [ "$WHAT" = ucx ]; then
  timeout 150 "$D/bundle/bin/tp_cuda_host_staged_test" 2>&1 | tee "$OUT/tp_cuda_host_staged_test.log" || status=1
  e2e cuda_tp2_ucx_1gpu 120 "--device cuda --tp 2 --tp-backend ucx --tp-ranks-per-device 2 --no-gemm-autotune"
  ucx8b="--device cuda --tp 2 --tp-backend ucx --tp-ranks-per-device 2 --model $M/llama8b --load-format dummy"
  step_time tp2_ucx_1gpu_8b_dummy 150 "$ucx8b --max-num-seqs 8 --max-num-batched-tokens 2048"
  timeout 150 python3 "$D/tp_rank_loss.py" --tessera "$D/bundle/bin/tessera" --label cuda_tp2_ucx_1gpu \
    --serve-args "--device cuda --tp 2 --tp-backend ucx --tp-ranks-per-device 2 --no-gemm-autotune" \
    2>&1 | tee "$OUT/tp_rank_loss.log" || status=1
  step_time plain_8b_dummy 90 "--device cuda --model $M/llama8b --load-format dummy --max-num-seqs 8 --max-num-batched-tokens 2048"
fi
if [ "$WHAT" = all ] || [ "$WHAT" = nccl ]; then
  e2e cuda_tp1_nccl 100 "--device cuda --tp 1 --tp-backend nccl"
  e2e cuda_plain 90 "--device cuda"
  e2e cuda_tp1_nccl_8b_dummy 100 "--device cuda --tp 1 --tp-backend nccl --model $M/llama8b --load-format dummy"
  # Diagnosis (does not change the exit status): is greedy text batch-dependent on the CUDA backend?
  # The concurrent-streams check with no batching, and with decode batches of at most 8 (gemv sizes).
  keep=$status
  e2e diag_plain_seqs1 60 "--device cuda --max-num-seqs 1" "--only concurrent"
  e2e diag_plain_seqs8 60 "--device cuda --max-num-seqs 8" "--only concurrent"
  status=$keep
fi
grep -h "tp_rank_loss\|e2e_device \|TP=1 over NCCL\|TP=2 host-staged\|bitwise equal\|same bits\|step_time \|PASSED\|FAILED" "$OUT"/*.log
exit $status
