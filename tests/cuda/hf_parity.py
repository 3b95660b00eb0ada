#!/usr/bin/env python3
"""Device parity of Tessera's CUDA runner against Hugging Face transformers.

For each supported architecture (Llama with llama3 RoPE scaling, Mistral, Qwen2 with q/k/v bias,
Qwen3 with q/k norm and an explicit head_dim, a tied-embedding Llama with MQA) it builds a small
random-weight checkpoint with transformers (saved as safetensors, fp32), computes the fp32 logits of
512 teacher-forced tokens with transformers, and runs tessera_cuda_logits on the same checkpoint in
both compute dtypes:
  float32 (the exact mode, --dtype float32): must meet issue 6's bar: argmax agreement >= 99% of
    positions and max relative logit error < 2e-2 (per position, max|tessera - hf| / max|hf|, the
    maximum over positions);
  bfloat16 (the production default): its agreement and error are reported, not held to that bar
    (bf16 weights flip near-ties of random models; transformers' own bf16 run is reported beside it).
In both, greedy generation must be bitwise identical over two CUDA-graph runs and equal to an eager
run. Prompt logprobs (top 5, the 512 tokens as one chunked prompt) are compared with transformers'
log-softmax: float32 must match (max abs error of the prompt tokens' logprobs < 1e-3, the same top-5
tokens at >= 99% of positions); bfloat16's figures are reported. Prints one JSON line per model and dtype and exits non-zero on any failure.
Usage: hf_parity.py --tool build/tessera_cuda_logits --work DIR [--dtypes float32,bfloat16] [--models llama,qwen3]
       [--intermediate-size N] [--tool-arg=--prefill-swiglu-gemm=on]
"""
import argparse
import copy
import json
import os
import subprocess
import sys

import numpy as np
import torch
import transformers

N_TOKENS = 512
V5 = int(transformers.__version__.split(".")[0]) >= 5


def rope(theta, scaling=None):
    """RoPE settings as this transformers version takes them (v5: rope_parameters)."""
    if V5:
        params = {"rope_type": "default", "rope_theta": theta}
        params.update(scaling or {})
        return {"rope_parameters": params}
    return {"rope_theta": theta, "rope_scaling": scaling}


def to_v4_config(path):
    """Rewrites a v5 config.json's rope_parameters as rope_theta/rope_scaling (the Hub's common form)."""
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters", None)
    if rp is not None:
        rp = dict(rp)
        cfg["rope_theta"] = rp.pop("rope_theta")
        cfg["rope_scaling"] = None if rp.get("rope_type", "default") == "default" else rp
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)


def configs(intermediate_size=768):
    common = dict(vocab_size=3000, hidden_size=256, intermediate_size=intermediate_size, num_hidden_layers=3,
                  max_position_embeddings=4096, rms_norm_eps=1e-5, initializer_range=0.08)
    return {
        "llama": transformers.LlamaConfig(num_attention_heads=4, num_key_value_heads=2,
                                          **rope(500000.0, {"rope_type": "llama3", "factor": 8.0,
                                                            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                            "original_max_position_embeddings": 256}),
                                          **common),
        "llama_tied_mqa": transformers.LlamaConfig(num_attention_heads=4, num_key_value_heads=1,
                                                   tie_word_embeddings=True,
                                                   **rope(10000.0, {"rope_type": "linear", "factor": 2.0}), **common),
        "mistral": transformers.MistralConfig(num_attention_heads=4, num_key_value_heads=4, sliding_window=None,
                                              **rope(10000.0), **common),
        "qwen2": transformers.Qwen2Config(num_attention_heads=4, num_key_value_heads=2, **rope(1000000.0),
                                          tie_word_embeddings=False, use_sliding_window=False, **common),
        "qwen3": transformers.Qwen3Config(num_attention_heads=8, num_key_value_heads=2, head_dim=64,
                                          **rope(1000000.0), tie_word_embeddings=False,
                                          use_sliding_window=False, attention_bias=False, **common),
    }


def build(name, config, work):
    path = os.path.join(work, name)
    torch.manual_seed(1234 + len(name))
    kw = {"dtype": torch.float32} if V5 else {"torch_dtype": torch.float32}
    model = transformers.AutoModelForCausalLM.from_config(config, **kw)
    with torch.no_grad():  # norms away from exactly 1 and biases away from 0, so they are exercised
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif n.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
    model.save_pretrained(path, safe_serialization=True)
    to_v4_config(path)
    return model, path


def cpu_engine_check(engine, path, tokens, ref, n_last=16):
    """The CPU engine (issue 2) on the same fp32 checkpoint: logits of the last n_last positions of
    two prompts (prefixes of `tokens`), against transformers' fp32 logits at those positions."""
    prompts = [tokens[:48], tokens[:100]]
    pj, oj = os.path.join(path, "cpu_prompts.json"), os.path.join(path, "cpu_logits.json")
    with open(pj, "w") as f:
        json.dump(prompts, f)
    proc = subprocess.run([engine, path, pj, str(n_last), oj], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"cpu_ok": False, "cpu_error": proc.stderr[-1000:]}
    with open(oj) as f:
        got = json.load(f)["logits"]
    worst, same = 0.0, True
    for p, rows in zip(prompts, got):
        for i, row in enumerate(rows):
            pos = len(p) - n_last + i
            g = np.asarray(row, dtype=np.float64)
            r = ref[pos]
            same = same and int(g.argmax()) == int(r.argmax())
            worst = max(worst, float(np.max(np.abs(g - r)) / np.max(np.abs(r))))
    return {"cpu_ok": same and worst < 1e-4, "cpu_same_argmax": same, "cpu_max_rel_logit_error": worst}


def prompt_logprobs_check(plp_path, ref):
    """Tessera's prompt logprobs against transformers' log-softmax of the same positions."""
    with open(plp_path) as f:
        got = json.load(f)
    lsm = ref - np.log(np.sum(np.exp(ref - ref.max(-1, keepdims=True)), -1, keepdims=True)) - ref.max(-1, keepdims=True)
    n = ref.shape[0]
    with open(os.path.dirname(plp_path) + "/tokens.json") as f:
        tokens = json.load(f)
    shape_ok = (got["first_position"] == 1 and got["seq_id"] == 7 and len(got["chosen"]) == n - 1
                and got["chosen_tokens"] == tokens[1:] and all(len(t) == 5 for t in got["top_tokens"]))
    if not shape_ok:
        return {"prompt_logprobs_ok": False, "prompt_logprobs_error": "wrong positions, tokens or top-k sizes"}
    want = np.array([lsm[p, tokens[p + 1]] for p in range(n - 1)])
    err = float(np.max(np.abs(np.array(got["chosen"]) - want)))
    top_ref = np.argsort(-ref[:n - 1], axis=-1, kind="stable")[:, :5]
    top_same = float(np.mean([list(top_ref[p]) == got["top_tokens"][p] for p in range(n - 1)]))
    top_err = float(max(abs(got["top_logprobs"][p][j] - lsm[p, got["top_tokens"][p][j]])
                        for p in range(n - 1) for j in range(5)))
    return {"prompt_logprobs_ok": err < 1e-3 and top_err < 1e-3 and top_same >= 0.99,
            "prompt_logprob_max_abs_error": err, "prompt_top5_same": top_same, "prompt_top5_max_abs_error": top_err}


def run_tessera(tool, path, dtype, ref, hf_gen, tool_args=()):
    """tessera_cuda_logits in one compute dtype: its teacher-forced logits against ref, and the
    determinism of its greedy generation. ok: the determinism holds, and for float32 the issue's bar."""
    logits_path = os.path.join(path, f"tessera_logits_{dtype}.f32")
    plp_path = os.path.join(path, f"prompt_logprobs_{dtype}.json")
    proc = subprocess.run([tool, "--model", path, "--tokens", os.path.join(path, "tokens.json"),
                           "--logits", logits_path, "--gen", "64", "--dtype", dtype, "--prompt-logprobs", plp_path,
                           *tool_args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"dtype": dtype, "ok": False, "error": proc.stderr[-2000:]}
    det = json.loads(proc.stdout.strip().splitlines()[-1])
    got = np.fromfile(logits_path, dtype=np.float32).reshape(N_TOKENS, -1).astype(np.float64)
    agree = float(np.mean(got.argmax(-1) == ref.argmax(-1)))
    rel = float(np.max(np.max(np.abs(got - ref), axis=-1) / np.max(np.abs(ref), axis=-1)))
    same_prefix = 0
    for a, b in zip(hf_gen, det["graph_tokens"]):
        if a != b:
            break
        same_prefix += 1
    deterministic = det["graph_runs_identical"] and det["graph_equals_eager"] and det["dtype"] == dtype
    meets_bar = agree >= 0.99 and rel < 2e-2
    plp = prompt_logprobs_check(plp_path, ref)
    ok = deterministic and (meets_bar and plp["prompt_logprobs_ok"] or dtype != "float32")
    return {"dtype": dtype, "ok": ok, "meets_issue_bar": meets_bar, "argmax_agreement": agree,
            "max_rel_logit_error": rel, "graph_runs_identical": det["graph_runs_identical"],
            "graph_equals_eager": det["graph_equals_eager"], "greedy_prefix_equal_to_hf": same_prefix, **plp}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cpu-engine", help="tests/reference engine_logits binary: also compare the CPU engine "
                                         "(fp32) with transformers: same argmax everywhere, max rel error < 1e-4")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="compute dtypes of the CUDA runner to check")
    ap.add_argument("--models", help="comma-separated architectures to check (default: all)")
    ap.add_argument("--intermediate-size", type=int, default=768,
                    help="the models' MLP width (768 by default, a multiple of 128, so the SwiGLU GEMM takes the "
                         "prefill chunks on compute 9.0; 704 checks the cuBLASLt + silu_mul fallback)")
    ap.add_argument("--tool-arg", action="append", default=[], help="an extra argument for the tool (repeatable)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    failures = 0
    for name, config in configs(args.intermediate_size).items():
        if args.models and name not in args.models.split(","):
            continue
        model, path = build(name, config, args.work)
        rng = np.random.default_rng(99)
        tokens = rng.integers(0, config.vocab_size, N_TOKENS).tolist()
        with open(os.path.join(path, "tokens.json"), "w") as f:
            json.dump(tokens, f)
        model = model.to(dev).eval()
        with torch.no_grad():
            ref = model(torch.tensor([tokens], device=dev)).logits[0].double().cpu().numpy()
            # Baseline for scale: the same model run by transformers itself in bf16 (weights rounded as
            # Tessera's are), against the same fp32 reference.
            m16 = copy.deepcopy(model).to(torch.bfloat16)
            hf16 = m16(torch.tensor([tokens], device=dev)).logits[0].double().cpu().numpy()
            del m16
        hf16_agree = float(np.mean(hf16.argmax(-1) == ref.argmax(-1)))
        hf16_rel = float(np.max(np.max(np.abs(hf16 - ref), axis=-1) / np.max(np.abs(ref), axis=-1)))
        # HF greedy continuation of a 32-token prompt, for the record (not a pass criterion: a near-tie
        # may legitimately go either way).
        with torch.no_grad():
            hf_gen = model.generate(torch.tensor([tokens[:32]], device=dev), max_new_tokens=64, do_sample=False,
                                    min_new_tokens=64)[0, 32:].tolist()
        cpu = {}
        if args.cpu_engine:
            cpu = cpu_engine_check(args.cpu_engine, path, tokens, ref)
            failures += 0 if cpu["cpu_ok"] else 1
        for dtype in args.dtypes.split(","):
            row = run_tessera(args.tool, path, dtype, ref, hf_gen, args.tool_arg)
            failures += 0 if row["ok"] else 1
            print(json.dumps({"model": name, **row, "hf_bf16_argmax_agreement": hf16_agree,
                              "hf_bf16_max_rel_logit_error": hf16_rel, **cpu,
                              "transformers": transformers.__version__}), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
