#!/usr/bin/env bash
# On a GPU machine: the CUDA tensor-parallel runtime's device checks. Usage:
#   tp_cuda_device.sh DIR OUT
# DIR holds bundle/ (deploy/bundle/make-bundle of tessera and tp_cuda_test), e2e_device.py,
# tessera_api.desc (protoc --include_imports of proto/) and models.tar.gz (tok-qwen3/: Qwen3's
# tokenizer for the built-in random checkpoint; llama8b/: a Llama-3-8B config.json + Llama 3's
# tokenizer for dummy weights). Runs tp_cuda_test (shard slices; TP=1 over NCCL vs the plain runner)
# and tests/cuda/e2e_device.py against `tessera serve --device cuda --tp 1 --tp-backend nccl` and
# plain `--device cuda` on the random checkpoint, then TP=1 over NCCL on the 8B shape. Logs in OUT.
set -u -o pipefail
D=$(cd "$1" && pwd)
OUT=$2
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
timeout 90 "$D/bundle/bin/tp_cuda_test" 2>&1 | tee "$OUT/tp_cuda_test.log" || status=1
e2e() {  # label, seconds, serve flags, more e2e_device.py flags
  timeout "$2" python3 "$D/e2e_device.py" --tessera "$D/bundle/bin/tessera" --descriptors "$D/tessera_api.desc" \
    --label "$1" --serve-args "$3" ${4:-} 2>&1 | tee "$OUT/e2e_$1.log" || status=1
}
e2e cuda_tp1_nccl 100 "--device cuda --tp 1 --tp-backend nccl"
e2e cuda_plain 90 "--device cuda"
e2e cuda_tp1_nccl_8b_dummy 100 "--device cuda --tp 1 --tp-backend nccl --model $M/llama8b --load-format dummy"
# Diagnosis (does not change the exit status): is greedy text batch-dependent on the CUDA backend?
# The concurrent-streams check with no batching, and with decode batches of at most 8 (gemv sizes).
keep=$status
e2e diag_plain_seqs1 60 "--device cuda --max-num-seqs 1" "--only concurrent"
e2e diag_plain_seqs8 60 "--device cuda --max-num-seqs 8" "--only concurrent"
status=$keep
grep -h "e2e_device \|TP=1 over NCCL\|PASSED\|FAILED" "$OUT"/*.log
exit $status
