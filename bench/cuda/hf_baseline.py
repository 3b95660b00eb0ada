#!/usr/bin/env python3
"""Hugging Face transformers baseline for `tessera bench engine --device cuda`, run in the same device
call: a Llama-3-8B-shaped model with random bf16 weights, SDPA attention, a static KV cache, eager and
torch.compile'd, timed on batch-1 decode at a 512-token context, batch-64 decode at 1,024-token
contexts and a 4,096-token prefill, each next to the copy bandwidth and 8192^3 bf16 matmul rate
measured here by torch. Prints one JSON object per (mode, measurement).
compile mode: decode steps run through torch.compile(mode="reduce-overhead") (CUDA graphs) with
torch.compiler.cudagraph_mark_step_begin() before each step and the logits cloned out of the graph's
memory; the prompt step of generate() runs eagerly, so the static cache's tensors are allocated
outside any CUDA graph (allocated inside one, the next replay overwrote them: the crash of
2026-11-25). The prefill measurement compiles the forward without CUDA graphs (mode "default").
Usage: hf_baseline.py [--modes eager,compile] [--decode-steps 32] [--only decode1,decode64,prefill]
"""
import argparse
import json
import time

import torch
import transformers


def limits():
    x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda").random_(0, 255)
    y = torch.empty_like(x)
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")

    def timed(fn, reps=10):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(); fn(); e.record(); e.synchronize()
            ts.append(s.elapsed_time(e) / 1e3)
        return sorted(ts)[len(ts) // 2]

    bw = 2 * x.numel() / timed(lambda: y.copy_(x))
    mm = 2 * 8192 ** 3 / timed(lambda: a @ b)
    del x, y, a, b
    torch.cuda.empty_cache()
    return bw, mm


def build():
    cfg = transformers.LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                                   rms_norm_eps=1e-5)
    cfg._attn_implementation = "sdpa"
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(cfg)
    model = model.to_empty(device="cuda").to(torch.bfloat16)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
    model.eval()
    nbytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "embed_tokens" not in n)
    return model, cfg, nbytes


def decode_ms(model, cfg, batch, ctx, steps):
    ids = torch.randint(0, cfg.vocab_size, (batch, ctx), device="cuda")
    kw = dict(do_sample=False, cache_implementation="static", pad_token_id=0)

    def run(n):
        torch.cuda.synchronize(); t = time.perf_counter()
        model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kw)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    run(steps + 1); run(2)  # warm-up (and compilation)
    t1 = sorted(run(2) for _ in range(3))[1]
    tn = sorted(run(steps + 2) for _ in range(3))[1]
    return (tn - t1) / steps * 1e3


def prefill_ms(forward, cfg, tokens):
    ids = torch.randint(0, cfg.vocab_size, (1, tokens), device="cuda")
    with torch.no_grad():
        for _ in range(2):
            forward(input_ids=ids, use_cache=False, logits_to_keep=1)
        torch.cuda.synchronize()
        ts = []
        for _ in range(5):
            t = time.perf_counter(); forward(input_ids=ids, use_cache=False, logits_to_keep=1); torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
    return sorted(ts)[2] * 1e3


def compiled_decode_forward(eager_forward, mode):
    """model.forward for compile mode: multi-token (prompt) steps eager, one-token steps through
    torch.compile(mode); under CUDA graphs ("reduce-overhead") each step is marked as a new graph
    iteration and its logits are copied out of graph memory."""
    compiled = torch.compile(eager_forward, mode=mode, fullgraph=True)
    graphs = mode == "reduce-overhead"

    def forward(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or ids.shape[1] > 1:
            return eager_forward(*args, **kwargs)
        if graphs:
            torch.compiler.cudagraph_mark_step_begin()
        out = compiled(*args, **kwargs)
        if graphs:
            out.logits = out.logits.clone()
        return out

    return forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="eager", help="eager and/or compile, comma-separated")
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--only", default="decode1,decode64,prefill", help="measurements to run, comma-separated")
    args = ap.parse_args()
    bw, mm = limits()
    model, cfg, nbytes = build()
    model.generation_config.disable_compile = True  # eager means eager: no automatic compile in generate()
    eager_forward = model.forward
    H, I, L, V = 4096, 14336, 32, 128256
    layer = H * (4096 + 2 * 1024) + 4096 * H + 3 * H * I
    only = args.only.split(",")
    for mode in args.modes.split(","):
        decode_mode = "reduce-overhead"
        model.forward = compiled_decode_forward(eager_forward, decode_mode) if mode == "compile" else eager_forward
        base = {"baseline": "transformers " + transformers.__version__, "torch": torch.__version__, "mode": mode,
                "copy_bandwidth_GBps": bw / 1e9, "matmul_8192_bf16_TFLOPs": mm / 1e12}
        # The prefill first: one compiled shape; the two decode batches took ~170 s to compile and time
        # on 2026-11-25, and a step limit that cut them left the prefill unmeasured.
        if "prefill" in only:
            T = 4096
            t0 = time.perf_counter()
            fwd = torch.compile(eager_forward, mode="default", fullgraph=True) if mode == "compile" else eager_forward
            p = prefill_ms(fwd, cfg, T)
            flops = 2.0 * layer * L * T + 2.0 * H * V + 4.0 * 128 * T * (T + 1) / 2 * 32 * L
            print(json.dumps(dict(base, prefill_tokens=T, prefill_ms=p, pct_of_matmul_rate=100 * flops / (p / 1e3) / mm,
                                  compile_mode="default" if mode == "compile" else None,
                                  wall_s=time.perf_counter() - t0)), flush=True)
        for batch, ctx, name in ((1, 512, "decode1"), (64, 1024, "decode64")):
            if name not in only:
                continue
            steps = args.decode_steps if batch == 1 else max(4, args.decode_steps // 2)
            t0 = time.perf_counter()
            try:
                d = decode_ms(model, cfg, batch, ctx, steps)
            except Exception as e:  # reported, then the same measurement without CUDA graphs
                print(json.dumps(dict(base, batch=batch, context=ctx, compile_mode=decode_mode,
                                      error=f"{type(e).__name__}: {e}"[:400])), flush=True)
                if mode != "compile" or decode_mode != "reduce-overhead":
                    continue
                decode_mode = "default"
                model.forward = compiled_decode_forward(eager_forward, decode_mode)
                d = decode_ms(model, cfg, batch, ctx, steps)
            kv = 2 * L * 8 * 128 * 2 * (ctx + steps // 2) * batch  # KV bytes read per step, mid-run context
            bound = (nbytes + kv) / bw * 1e3
            print(json.dumps(dict(base, batch=batch, context=ctx, decode_ms=d, tokens_per_s=batch * 1e3 / d,
                                  bandwidth_bound_ms=bound, pct_of_bandwidth_bound=100 * bound / d,
                                  compile_mode=decode_mode if mode == "compile" else None,
                                  wall_s=time.perf_counter() - t0)), flush=True)


if __name__ == "__main__":
    main()
