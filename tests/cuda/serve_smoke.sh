#!/usr/bin/env bash
# Device smoke test of the CUDA runner behind the real front ends: `tessera generate --device cuda`
# (greedy, built-in default model) against `--device cpu`, then `tessera serve --device cuda` with one
# OpenAI completion over HTTP. Usage (on the GPU machine): tests/cuda/serve_smoke.sh BUNDLE_DIR TOKENIZER_DIR
set -uo pipefail
B=$1
export TESSERA_DEFAULT_TOKENIZER_DIR=$2 TESSERA_CACHE_DIR=${TESSERA_CACHE_DIR:-/tmp/tessera-cache}
OUT=${OUT:-/tmp/out}
args=(generate --json --temperature 0 --max-tokens 12 --ignore-eos "The capital of France is")
timeout 120 "$B/bin/tessera" "${args[@]}" --device cuda > "$OUT/gen_cuda.json" 2> "$OUT/gen_cuda.err"; echo "generate cuda rc=$?"
timeout 120 "$B/bin/tessera" "${args[@]}" --device cpu > "$OUT/gen_cpu.json" 2> "$OUT/gen_cpu.err"; echo "generate cpu rc=$?"
cat "$OUT/gen_cuda.json" "$OUT/gen_cpu.json"; tail -2 "$OUT/gen_cuda.err"
python3 - "$OUT/gen_cuda.json" "$OUT/gen_cpu.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
same = sum(1 for x, y in zip(a["generated_ids"], b["generated_ids"]) if x == y)
print(f"generate: cuda and cpu agree on the first {next((i for i,(x,y) in enumerate(zip(a['generated_ids'], b['generated_ids'])) if x!=y), len(a['generated_ids']))} of {len(a['generated_ids'])} greedy tokens ({same} equal positions)")
PY
rm -f /tmp/ports.json
timeout 100 "$B/bin/tessera" serve --device cuda --http-port 0 --no-grpc --port-file /tmp/ports.json > "$OUT/serve.log" 2>&1 &
pid=$!
for i in $(seq 1 60); do [ -s /tmp/ports.json ] && break; sleep 1; done
port=$(python3 -c 'import json; print(json.load(open("/tmp/ports.json"))["http"])' 2>/dev/null)
python3 - "$port" <<'PY'
import json, sys, urllib.request
port = sys.argv[1]
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", method="POST",
                             headers={"Content-Type": "application/json"},
                             data=json.dumps({"prompt": "Hello", "max_tokens": 8, "temperature": 0}).encode())
r = json.load(urllib.request.urlopen(req, timeout=60))
print("serve --device cuda: completion", json.dumps(r["choices"][0])[:300], "usage", r.get("usage"))
PY
echo "serve rc=$?"
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
head -5 "$OUT/serve.log"
