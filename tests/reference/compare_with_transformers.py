#!/usr/bin/env python3
"""Device-side acceptance: the engine's CPU runner against Hugging Face transformers (eager
attention, float32 compute) on the random checkpoints of make_checkpoints.py: the same argmax token
at every position of every prompt and max relative logit error < 1e-4 (max|engine - hf| / max|hf|
per prompt). Needs torch + transformers (the GPU machine has them; Debian's CI image does not).
Usage: compare_with_transformers.py ENGINE_LOGITS_BINARY WORK_DIR"""
import json
import os
import random
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-4


def main():
    engine, work = sys.argv[1], sys.argv[2]
    ck_dir = os.path.join(work, "checkpoints")
    os.makedirs(ck_dir, exist_ok=True)
    names = subprocess.check_output([sys.executable, os.path.join(HERE, "make_checkpoints.py"), ck_dir],
                                    text=True).split()
    rng = random.Random(11)
    prompts = [[1, 17, 42, 99, 5], [rng.randrange(384) for _ in range(40)], [rng.randrange(384) for _ in range(23)]]
    prompts_path = os.path.join(work, "prompts.json")
    json.dump(prompts, open(prompts_path, "w"))
    failed = False
    for name in names:
        d = os.path.join(ck_dir, name)
        eng_out = os.path.join(work, name + ".engine.json")
        subprocess.check_call([engine, d, prompts_path, "0", eng_out])
        eng = json.load(open(eng_out))["logits"]
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        worst, positions = 0.0, 0
        for pi, ids in enumerate(prompts):
            with torch.no_grad():
                hf = model(torch.tensor([ids])).logits[0].double()
            e = torch.tensor(eng[pi], dtype=torch.float64)
            assert e.shape == hf.shape, (name, pi, e.shape, hf.shape)
            rel = ((e - hf).abs().max() / hf.abs().max()).item()
            same = bool((e.argmax(-1) == hf.argmax(-1)).all())
            positions += len(ids)
            worst = max(worst, rel)
            if rel >= TOL or not same:
                failed = True
                print(f"FAIL {name} prompt {pi}: relative error {rel:.3e}, same argmax everywhere: {same}")
        print(f"{name}: {positions} positions, same argmax at all, max relative error {worst:.3e}")
    if failed:
        sys.exit(1)
    print("all checkpoints match transformers")


if __name__ == "__main__":
    main()
