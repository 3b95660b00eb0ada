#!/usr/bin/env bash
# Device serving benchmark (issue 9's curve): `tessera serve --device cuda` on a Llama-3-8B-shaped
# model with dummy weights and Llama 3's real tokenizer, loaded by `tessera bench serve` at several
# concurrency levels over HTTP (and one point over gRPC). Runs the CUDA serve smoke test first.
# Usage (on the GPU machine): tests/cuda/serve_bench_device.sh BUNDLE_DIR LLAMA3_TOKENIZER_DIR QWEN3_TOKENIZER_DIR OUT
set -uo pipefail
B=$1 TOK=$2 QWEN=$3 OUT=$4
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv
mkdir -p /tmp/smoke && OUT=/tmp/smoke bash "$(dirname "$0")/serve_smoke.sh" "$B" "$QWEN" 2>&1 | tail -12

M=/tmp/llama3-8b-dummy
mkdir -p "$M" && cp "$TOK"/tokenizer*.json "$M"/
cat > "$M/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
 "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
 "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
 "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "bos_token_id": 128000, "eos_token_id": 128001,
 "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
JSON
rm -f /tmp/p8.json
"$B/bin/tessera" serve --model "$M" --load-format dummy --device cuda --max-model-len 2048 \
  --max-num-seqs 256 --max-num-batched-tokens 8192 --max-queue-len 4096 --http-port 0 --grpc-port 0 \
  --port-file /tmp/p8.json > "$OUT/serve-8b.log" 2>&1 &
pid=$!
for i in $(seq 1 240); do [ -s /tmp/p8.json ] && break; kill -0 $pid 2>/dev/null || break; sleep 1; done
[ -s /tmp/p8.json ] || { echo "serve did not come up"; tail -20 "$OUT/serve-8b.log"; exit 1; }
http=$(python3 -c 'import json; print(json.load(open("/tmp/p8.json"))["http"])')
grpc=$(python3 -c 'import json; print(json.load(open("/tmp/p8.json"))["grpc"])')
common=(--input-len 512 --output-len 128 --ignore-eos --seed 0 --slo-ttft-ms 500 --slo-tpot-ms 50 --no-progress)
"$B/bin/tessera" bench serve --url "http://127.0.0.1:$http" --concurrency 1,4,16 --num-requests 24 \
  --warmup-requests 4 "${common[@]}" --output-dir "$OUT/low" 2>&1 | tee "$OUT/bench.log"
"$B/bin/tessera" bench serve --url "http://127.0.0.1:$http" --concurrency 64,128,256 --num-requests 256 \
  --warmup-requests 16 "${common[@]}" --output-dir "$OUT/high" 2>&1 | tee -a "$OUT/bench.log"
"$B/bin/tessera" bench serve --grpc "127.0.0.1:$grpc" --concurrency 64 --num-requests 128 \
  --warmup-requests 8 "${common[@]}" --output-dir /tmp/grpc 2>&1 | tee -a "$OUT/bench.log"
kill -TERM $pid; wait $pid; echo "serve exit code $?"
tail -3 "$OUT/serve-8b.log"
