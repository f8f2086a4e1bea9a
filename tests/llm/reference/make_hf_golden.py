"""Golden logits from the ecosystem's own implementation: HF transformers' Qwen2ForCausalLM run on every
checked-in random HF-layout fixture (tests/llm/fixtures/*: tied and untied, one file and sharded, stored
in f32, bf16 and f16), for the token sequences of each fixture's reference.safetensors.

    PY=$(bash scripts/pyref.sh | tail -1)/bin/python      # torch 2.11.0, transformers 5.25.0 (pinned)
    HF_HUB_OFFLINE=1 $PY tests/llm/reference/make_hf_golden.py tests/llm/fixtures

Writes <fixture>/hf_reference.safetensors: f32_logits_K (transformers with torch_dtype=float32) and
bf16_logits_K (torch_dtype=bfloat16, logits cast to f32), K = 0, 1, 2, plus metadata naming the versions.
Deterministic: no randomness, CPU only. The C++ tests read these files; they never run Python.
"""
import os
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file


def main(root):
    torch.use_deterministic_algorithms(True)
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not os.path.isfile(os.path.join(d, "reference.safetensors")):
            continue
        ids = load_file(os.path.join(d, "reference.safetensors"))
        out = {}
        for dtype, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
            m = transformers.Qwen2ForCausalLM.from_pretrained(d, dtype=dtype).eval()
            for k in range(3):
                x = ids[f"ids_{k}"].to(torch.int64)[None]
                with torch.no_grad():
                    out[f"{tag}_logits_{k}"] = m(x).logits[0].float().contiguous()
            if tag == "f32":
                err = max(((out[f"f32_logits_{k}"].double() - ids[f"logits_{k}"].double()).abs().max()
                           / ids[f"logits_{k}"].double().abs().max()).item() for k in range(3))
                print(f"{name}: transformers f32 vs the float64 reference: {err:.2e} (relative to max logit)")
        meta = {"transformers": transformers.__version__, "torch": torch.__version__,
                "model": "Qwen2ForCausalLM", "attn_implementation": m.config._attn_implementation}
        save_file(out, os.path.join(d, "hf_reference.safetensors"), metadata=meta)
        print(f"wrote {d}/hf_reference.safetensors ({meta})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures"))
