"""Forward throughput of HF transformers' Qwen2ForCausalLM on a checkpoint, in the JSON line format of
tests/llm/reference/qwen2_ref.py's bench (bench/model_vs_pytorch.sh --reference hf reads it).

    python3 bench/hf_forward.py --checkpoint DIR --tokens 128 --threads 2 --dtype f32 --repeats 5
"""
import argparse
import json
import time

import torch
import transformers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    m = transformers.Qwen2ForCausalLM.from_pretrained(args.checkpoint, dtype=dtype).eval()
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, m.config.vocab_size, (1, args.tokens), generator=gen)
    times, cpu = [], []
    with torch.inference_mode():
        m(ids, use_cache=False)  # warm-up
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            m(ids, use_cache=False)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    median = sorted(times)[len(times) // 2]
    print(json.dumps({"impl": f"transformers {transformers.__version__} on torch {torch.__version__} "
                              f"({m.config._attn_implementation})",
                      "tokens": args.tokens, "threads": args.threads, "dtype": args.dtype, "best_s": min(times),
                      "median_s": median, "cpu_s": sorted(cpu)[len(cpu) // 2], "tokens_per_s": args.tokens / median}))


if __name__ == "__main__":
    main()
