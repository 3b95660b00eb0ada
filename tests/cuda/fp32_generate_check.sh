#!/usr/bin/env bash
# Device check of the exact mode behind the real front end: greedy `tessera generate --device cuda
# --dtype float32` on the built-in default model must give the same tokens as `--device cpu` (both
# compute in fp32); the bf16 default's agreement is printed for the record. Exits non-zero when the
# fp32 tokens differ. Usage (on the GPU machine): tests/cuda/fp32_generate_check.sh BUNDLE_DIR TOKENIZER_DIR
set -uo pipefail
B=$1
export TESSERA_DEFAULT_TOKENIZER_DIR=$2 TESSERA_CACHE_DIR=${TESSERA_CACHE_DIR:-/tmp/tessera-cache}
OUT=${OUT:-/tmp/out}
args=(generate --json --temperature 0 --max-tokens 48 --ignore-eos "The capital of France is")
for run in "cpu:--device cpu" "cuda_fp32:--device cuda --dtype float32" "cuda_bf16:--device cuda --dtype bfloat16"; do
  name=${run%%:*}
  # shellcheck disable=SC2086
  timeout 120 "$B/bin/tessera" "${args[@]}" ${run#*:} > "$OUT/gen_$name.json" 2> "$OUT/gen_$name.err"
  echo "generate $name rc=$?"
done
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
runs = {n: json.load(open(os.path.join(out, f"gen_{n}.json")))["generated_ids"] for n in ("cpu", "cuda_fp32", "cuda_bf16")}
def prefix(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
print(json.dumps({"tokens": len(runs["cpu"]), "cuda_fp32_equals_cpu": runs["cuda_fp32"] == runs["cpu"],
                  "cuda_fp32_common_prefix": prefix(runs["cuda_fp32"], runs["cpu"]),
                  "cuda_bf16_common_prefix": prefix(runs["cuda_bf16"], runs["cpu"]),
                  "cpu": runs["cpu"], "cuda_fp32": runs["cuda_fp32"]}))
sys.exit(0 if runs["cuda_fp32"] == runs["cpu"] and len(runs["cpu"]) == 48 else 1)
PY
