#!/usr/bin/python3
"""The reference-numerics test: generates the random checkpoints, runs the engine (engine_logits)
and the float64 torch reference on several prompts, and checks max relative error < 1e-4, where
relative error is max|engine - reference| / max|reference| over the compared logits of a prompt.
Usage: compare_with_reference.py ENGINE_LOGITS_BINARY WORK_DIR"""
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-4
N_LAST = 4


def main():
    engine, work = sys.argv[1], sys.argv[2]
    ck_dir = os.path.join(work, "checkpoints")
    os.makedirs(ck_dir, exist_ok=True)
    names = subprocess.check_output([sys.executable, os.path.join(HERE, "make_checkpoints.py"), ck_dir],
                                    text=True).split()
    rng = random.Random(7)
    prompts = [[1, 17, 42, 99, 5], [rng.randrange(384) for _ in range(40)], [3, 3, 3, 3, 3, 3, 3, 3],
               [rng.randrange(384) for _ in range(19)]]
    prompts_path = os.path.join(work, "prompts.json")
    json.dump(prompts, open(prompts_path, "w"))
    failed = False
    for name in names:
        d = os.path.join(ck_dir, name)
        eng_out, ref_out = os.path.join(work, name + ".engine.json"), os.path.join(work, name + ".ref.json")
        subprocess.check_call([engine, d, prompts_path, str(N_LAST), eng_out])
        subprocess.check_call([sys.executable, os.path.join(HERE, "reference_forward.py"), d, prompts_path,
                               str(N_LAST), ref_out])
        eng, ref = json.load(open(eng_out))["logits"], json.load(open(ref_out))["logits"]
        worst = 0.0
        for pi, (e_rows, r_rows) in enumerate(zip(eng, ref)):
            assert len(e_rows) == len(r_rows) == N_LAST, (name, pi, len(e_rows), len(r_rows))
            scale = max(abs(v) for row in r_rows for v in row)
            err = max(abs(a - b) for er, rr in zip(e_rows, r_rows) for a, b in zip(er, rr))
            argmax_same = all(er.index(max(er)) == rr.index(max(rr)) for er, rr in zip(e_rows, r_rows))
            worst = max(worst, err / scale)
            if err / scale >= TOL or not argmax_same:
                failed = True
                print(f"FAIL {name} prompt {pi}: relative error {err / scale:.3e}, argmax same: {argmax_same}")
        print(f"{name}: max relative error {worst:.3e}")
    if failed:
        sys.exit(1)
    print("all checkpoints match the reference")


if __name__ == "__main__":
    main()
