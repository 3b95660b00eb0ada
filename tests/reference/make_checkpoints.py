#!/usr/bin/python3
"""Writes small random Hugging Face checkpoints (config.json, generation_config.json and
model.safetensors or a sharded model.safetensors.index.json), one per architecture and feature,
with plain struct/json (no safetensors package). Usage: make_checkpoints.py OUT_DIR
It must never share code with the engine: it is half of the independent reference."""
import json
import os
import struct
import sys

import torch

VARIANTS = {
    # name: (config overrides, storage dtype, shards)
    "llama_llama3_gqa_f32": ({"architectures": ["LlamaForCausalLM"], "num_attention_heads": 4,
                              "num_key_value_heads": 2, "rope_theta": 500000.0,
                              "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}},
                             "float32", 1),
    "llama_linear_mha_bf16": ({"architectures": ["LlamaForCausalLM"], "num_attention_heads": 4,
                               "num_key_value_heads": 4, "rope_scaling": {"type": "linear", "factor": 2.0}},
                              "bfloat16", 1),
    "mistral_mqa_f16": ({"architectures": ["MistralForCausalLM"], "num_attention_heads": 4,
                         "num_key_value_heads": 1, "sliding_window": None}, "float16", 1),
    "qwen2_bias_tied_f32": ({"architectures": ["Qwen2ForCausalLM"], "num_attention_heads": 4,
                             "num_key_value_heads": 2, "tie_word_embeddings": True, "use_sliding_window": False,
                             "sliding_window": 16, "rope_theta": 1000000.0}, "float32", 1),
    "qwen3_qknorm_headdim_sharded_bf16": ({"architectures": ["Qwen3ForCausalLM"], "num_attention_heads": 4,
                                           "num_key_value_heads": 2, "head_dim": 24, "rope_theta": 1000000.0},
                                          "bfloat16", 3),
    "llama_tied_sharded_f32": ({"architectures": ["LlamaForCausalLM"], "num_attention_heads": 8,
                                "num_key_value_heads": 2, "tie_word_embeddings": True}, "float32", 2),
}

BASE = {"vocab_size": 384, "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 3,
        "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
        "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False}

ST_DTYPE = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}
TORCH_DTYPE = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def tensors_for(cfg, gen):
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // nh
    arch = cfg["architectures"][0]

    def mat(rows, cols):
        return (torch.rand(rows, cols, generator=gen, dtype=torch.float64) * 2 - 1) * (3.0 / cols) ** 0.5

    def vec(n, center, spread):
        return center + (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * spread

    out = {"model.embed_tokens.weight": mat(v, h), "model.norm.weight": vec(h, 1.0, 0.2)}
    if not cfg["tie_word_embeddings"]:
        out["lm_head.weight"] = mat(v, h)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = vec(h, 1.0, 0.2)
        out[p + "post_attention_layernorm.weight"] = vec(h, 1.0, 0.2)
        out[p + "self_attn.q_proj.weight"] = mat(nh * hd, h)
        out[p + "self_attn.k_proj.weight"] = mat(nkv * hd, h)
        out[p + "self_attn.v_proj.weight"] = mat(nkv * hd, h)
        out[p + "self_attn.o_proj.weight"] = mat(h, nh * hd)
        if arch == "Qwen2ForCausalLM":
            out[p + "self_attn.q_proj.bias"] = vec(nh * hd, 0.0, 0.3)
            out[p + "self_attn.k_proj.bias"] = vec(nkv * hd, 0.0, 0.3)
            out[p + "self_attn.v_proj.bias"] = vec(nkv * hd, 0.0, 0.3)
        if arch == "Qwen3ForCausalLM":
            out[p + "self_attn.q_norm.weight"] = vec(hd, 1.0, 0.2)
            out[p + "self_attn.k_norm.weight"] = vec(hd, 1.0, 0.2)
        out[p + "mlp.gate_proj.weight"] = mat(inter, h)
        out[p + "mlp.up_proj.weight"] = mat(inter, h)
        out[p + "mlp.down_proj.weight"] = mat(h, inter)
    return out


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].to(TORCH_DTYPE[dtype]).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dtype != "float32" else t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPE[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def make(out_dir, name, seed):
    overrides, dtype, shards = VARIANTS[name]
    cfg = dict(BASE)
    cfg.update(overrides)
    cfg["torch_dtype"] = dtype
    gen = torch.Generator().manual_seed(seed)
    tensors = tensors_for(cfg, gen)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    # model_type is what transformers' AutoConfig dispatches on (the engine reads `architectures`).
    model_types = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2",
                   "Qwen3ForCausalLM": "qwen3"}
    cfg = dict(cfg, model_type=model_types[cfg["architectures"][0]])
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [2, 3]}, f)
    names = sorted(tensors)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, dtype)
        return
    weight_map = {}
    for s in range(shards):
        part = {n: tensors[n] for n in names[s::shards]}
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors(os.path.join(d, fname), part, dtype)
        weight_map.update({n: fname for n in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)


if __name__ == "__main__":
    for i, name in enumerate(sorted(VARIANTS)):
        make(sys.argv[1], name, 1000 + i)
    print("\n".join(sorted(VARIANTS)))
