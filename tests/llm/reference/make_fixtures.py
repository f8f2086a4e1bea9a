#!/usr/bin/python3
"""Writes the checked-in fixtures of tests/llm: small random HF-layout Qwen2 checkpoints and the
reference logits of a few token sequences (qwen2_ref.py, computed in float64 from the stored
weights, i.e. after their rounding to bf16/f16 when stored so).

    /usr/bin/python3 tests/llm/reference/make_fixtures.py tests/llm/fixtures

Each fixture directory holds config.json, model.safetensors or model-0000K-of-0000N.safetensors with
model.safetensors.index.json, and reference.safetensors with ids_K (I64 [T]) and logits_K
(F32 [T, vocab]) for K = 0, 1, 2. Deterministic (fixed seeds): rerunning rewrites the same bytes.
Weights are drawn at scales that keep activations of order one (std 1/sqrt(fan_in), biases and norm
weights away from 0 and 1), so attention is far from uniform and every term of the forward matters.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_ref  # noqa: E402

BASE = {
    "vocab_size": 128, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
    "rms_norm_eps": 1e-6,
}

FIXTURES = [
    # name, tied, stored dtype, shards (1 = model.safetensors), rope_theta
    ("tied_f32_single", True, torch.float32, 1, 10000.0),
    ("untied_f32_sharded", False, torch.float32, 3, 1000000.0),
    ("tied_bf16_sharded", True, torch.bfloat16, 2, 1000000.0),
    ("untied_bf16_single", False, torch.bfloat16, 1, 10000.0),
    ("tied_f16_single", True, torch.float16, 1, 10000.0),
]
HF_DTYPE = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
SEQUENCE_LENGTHS = [1, 7, 16]


def random_weights(config, gen):
    H, I, V = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = config["num_key_value_heads"] * H // config["num_attention_heads"]

    def normal(*shape, std):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * std

    w = {"model.embed_tokens.weight": normal(V, H, std=1.0)}
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = normal(H, H, std=H ** -0.5)
        w[p + "self_attn.q_proj.bias"] = normal(H, std=0.5)
        w[p + "self_attn.k_proj.weight"] = normal(kv, H, std=H ** -0.5)
        w[p + "self_attn.k_proj.bias"] = normal(kv, std=0.5)
        w[p + "self_attn.v_proj.weight"] = normal(kv, H, std=H ** -0.5)
        w[p + "self_attn.v_proj.bias"] = normal(kv, std=0.5)
        w[p + "self_attn.o_proj.weight"] = normal(H, H, std=H ** -0.5)
        w[p + "mlp.gate_proj.weight"] = normal(I, H, std=H ** -0.5)
        w[p + "mlp.up_proj.weight"] = normal(I, H, std=H ** -0.5)
        w[p + "mlp.down_proj.weight"] = normal(H, I, std=I ** -0.5)
        w[p + "input_layernorm.weight"] = 1.0 + normal(H, std=0.3)
        w[p + "post_attention_layernorm.weight"] = 1.0 + normal(H, std=0.3)
    w["model.norm.weight"] = 1.0 + normal(H, std=0.3)
    if not config["tie_word_embeddings"]:
        w["lm_head.weight"] = normal(V, H, std=H ** -0.5)
    return w


def write_checkpoint(directory, config, weights, shards):
    os.makedirs(directory, exist_ok=True)
    for f in os.listdir(directory):
        os.remove(os.path.join(directory, f))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")
    meta = {"format": "pt"}
    if shards == 1:
        qwen2_ref.write_safetensors(os.path.join(directory, "model.safetensors"), weights, meta)
        return
    names = list(weights)  # model order; split into `shards` contiguous groups
    per = -(-len(names) // shards)
    weight_map, total = {}, 0
    for s in range(shards):
        part = {n: weights[n] for n in names[s * per:(s + 1) * per]}
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        qwen2_ref.write_safetensors(os.path.join(directory, file), part, meta)
        for n, t in part.items():
            weight_map[n] = file
            total += t.numel() * t.element_size()
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")


def main(out_root):
    for k, (name, tied, dtype, shards, theta) in enumerate(FIXTURES):
        gen = torch.Generator().manual_seed(1000 + k)
        config = dict(BASE, architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_act="silu",
                      tie_word_embeddings=tied, rope_theta=theta, torch_dtype=HF_DTYPE[dtype],
                      use_sliding_window=False, sliding_window=None, rope_scaling=None, attention_dropout=0.0,
                      bos_token_id=1, eos_token_id=2)
        stored = {n: t.to(dtype) for n, t in random_weights(config, gen).items()}
        directory = os.path.join(out_root, name)
        write_checkpoint(directory, config, stored, shards)

        # Reference logits in float64 from what was stored (read back through the file reader).
        config_read, weights_read = qwen2_ref.load_checkpoint(directory)
        ref = {}
        worst_f32 = 0.0
        for s, T in enumerate(SEQUENCE_LENGTHS):
            ids = torch.randint(0, config["vocab_size"], (1, T), generator=gen)
            with torch.no_grad():
                truth = qwen2_ref.forward(config_read, weights_read, ids, torch.float64)[0]
                f32 = qwen2_ref.forward(config_read, weights_read, ids, torch.float32)[0].double()
                bf16 = qwen2_ref.forward(config_read, weights_read, ids, torch.bfloat16)[0].double()
            scale = truth.abs().max().item()
            worst_f32 = max(worst_f32, (f32 - truth).abs().max().item() / scale)
            print(f"{name}: T={T:2d} max|logit| {scale:.3f}  python f32 rel.err {(f32 - truth).abs().max().item() / scale:.2e}"
                  f"  python bf16 rel.err {(bf16 - truth).abs().max().item() / scale:.2e}")
            ref[f"ids_{s}"] = ids[0].clone()
            ref[f"logits_{s}"] = truth.to(torch.float32)
        qwen2_ref.write_safetensors(os.path.join(directory, "reference.safetensors"), ref,
                                    {"generator": "tests/llm/reference/make_fixtures.py", "precision": "float64"})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
