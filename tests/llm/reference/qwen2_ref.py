#!/usr/bin/python3
"""Independent reference forward pass of a Qwen2ForCausalLM checkpoint, for checking llm/qwen2.cpp.

Written from the published architecture (Qwen2 technical report; transformers' Qwen2Config and
modeling_qwen2.py as the description of the math) with Debian's python3-torch only: no
transformers, no safetensors package. Deliberately plain: K and V are repeated for every query head
(repeat_kv) and the causal mask is additive, the way the HF eager path computes, so it shares no code
path with the C++ implementation's grouped matmul.

    x = embed_tokens[ids]
    per layer:  x = x + o_proj(attn(rope(q_proj(rms1(x))), rope(k_proj(rms1(x))), v_proj(rms1(x))))
                x = x + down_proj(silu(gate_proj(rms2(x))) * up_proj(rms2(x)))
    logits = norm(x) @ W.T     (W = lm_head.weight, or embed_tokens.weight when tied)

Usage:
    qwen2_ref.py logits --checkpoint DIR --token-ids 1,2,3 --out FILE.safetensors [--dtype f64|f32|bf16]
    qwen2_ref.py bench --checkpoint DIR --tokens T --threads N [--dtype f32|bf16] [--repeats R]
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch

ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32}
ST_NAMES = {v: k for k, v in ST_DTYPES.items()}


# ---- safetensors (the published format: u64 LE header size, JSON header, data buffer) ----

def read_safetensors(path):
    """name -> tensor; the tensors are views of one buffer holding the file (no second copy)."""
    size = os.path.getsize(path)
    blob = bytearray(size)
    with open(path, "rb") as f:
        assert f.readinto(blob) == size
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    out = {}
    base = 8 + n
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = ST_DTYPES[entry["dtype"]]
        count = (end - begin) // torch.tensor([], dtype=dtype).element_size()
        t = torch.frombuffer(blob, dtype=dtype, count=count, offset=base + begin) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(entry["shape"])
    return out


def write_safetensors(path, tensors, metadata=None):
    """Tensors laid out by name, header padded with spaces to a multiple of 8 bytes."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        # bytes of any dtype (numpy has no bfloat16): view the storage as uint8
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def load_checkpoint(directory):
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    assert config["architectures"] == ["Qwen2ForCausalLM"], config["architectures"]
    single = os.path.join(directory, "model.safetensors")
    if os.path.exists(single):
        weights = read_safetensors(single)
    else:
        with open(os.path.join(directory, "model.safetensors.index.json")) as f:
            index = json.load(f)
        weights = {}
        for shard in sorted(set(index["weight_map"].values())):
            weights.update(read_safetensors(os.path.join(directory, shard)))
    return config, weights


# ---- the model ----

def rms_norm(x, weight, eps):
    dtype = x.dtype
    h = x.to(torch.float32) if dtype != torch.float64 else x
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(dtype)


def rotary(config, positions, dtype):
    d = config["hidden_size"] // config["num_attention_heads"]
    # inv_freq as transformers computes it: 1 / theta^(arange(0, d, 2) / d) in float32 (float64 for
    # the float64 reference).
    ftype = torch.float64 if dtype == torch.float64 else torch.float32
    inv_freq = 1.0 / (config.get("rope_theta", 10000.0) ** (torch.arange(0, d, 2, dtype=torch.int64).to(ftype) / d))
    freqs = positions.to(ftype)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat([-x2, x1], dim=-1)


def forward(config, w, ids, dtype=torch.float32):
    """ids: int64 [B, T]. Returns logits [B, T, vocab] in `dtype`."""
    H = config["hidden_size"]
    nh = config["num_attention_heads"]
    nkv = config.get("num_key_value_heads", nh)
    d = H // nh
    eps = config.get("rms_norm_eps", 1e-6)
    B, T = ids.shape
    W = {k: v.to(dtype) for k, v in w.items()}
    x = W["model.embed_tokens.weight"][ids]
    cos, sin = rotary(config, torch.arange(T), dtype)
    mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = torch.nn.functional.linear(h, W[p + "self_attn.q_proj.weight"], W[p + "self_attn.q_proj.bias"])
        k = torch.nn.functional.linear(h, W[p + "self_attn.k_proj.weight"], W[p + "self_attn.k_proj.bias"])
        v = torch.nn.functional.linear(h, W[p + "self_attn.v_proj.weight"], W[p + "self_attn.v_proj.bias"])
        q = q.view(B, T, nh, d).transpose(1, 2)
        k = k.view(B, T, nkv, d).transpose(1, 2)
        v = v.view(B, T, nkv, d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)  # head j reads KV head j // (nh / nkv)
        v = v.repeat_interleave(nh // nkv, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(d) + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32 if dtype != torch.float64 else dtype).to(dtype)
        a = torch.matmul(probs, v).transpose(1, 2).reshape(B, T, H)
        x = x + torch.nn.functional.linear(a, W[p + "self_attn.o_proj.weight"])
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        gate = torch.nn.functional.linear(h, W[p + "mlp.gate_proj.weight"])
        up = torch.nn.functional.linear(h, W[p + "mlp.up_proj.weight"])
        x = x + torch.nn.functional.linear(torch.nn.functional.silu(gate) * up, W[p + "mlp.down_proj.weight"])
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if config.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return torch.nn.functional.linear(x, head)


DTYPES = {"f64": torch.float64, "f32": torch.float32, "bf16": torch.bfloat16}


def cmd_logits(args):
    config, weights = load_checkpoint(args.checkpoint)
    ids = torch.tensor([[int(t) for t in args.token_ids.split(",")]], dtype=torch.int64)
    with torch.no_grad():
        logits = forward(config, weights, ids, DTYPES[args.dtype])[0].to(torch.float32)
    write_safetensors(args.out, {"logits": logits})


def cmd_bench(args):
    torch.set_num_threads(args.threads)
    config, weights = load_checkpoint(args.checkpoint)
    dtype = DTYPES[args.dtype]
    W = {k: v.to(dtype) for k, v in weights.items()}
    del weights
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config["vocab_size"], (1, args.tokens), generator=gen)
    times, cpu = [], []
    with torch.inference_mode():
        forward(config, W, ids, dtype)  # warm-up
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()  # process_time: CPU time of every thread
            forward(config, W, ids, dtype)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    best = min(times)
    median = sorted(times)[len(times) // 2]
    print(json.dumps({"impl": "python3-torch " + torch.__version__, "tokens": args.tokens, "threads": args.threads,
                      "dtype": args.dtype, "best_s": best, "median_s": median, "cpu_s": sorted(cpu)[len(cpu) // 2],
                      "tokens_per_s": args.tokens / median}))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("--checkpoint", required=True)
    lg.add_argument("--token-ids", required=True)
    lg.add_argument("--out", required=True)
    lg.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    bn = sub.add_parser("bench")
    bn.add_argument("--checkpoint", required=True)
    bn.add_argument("--tokens", type=int, default=128)
    bn.add_argument("--threads", type=int, default=1)
    bn.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    bn.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    {"logits": cmd_logits, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main(sys.argv[1:])
