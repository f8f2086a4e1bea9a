"""scripts/gpu-check.sh's reference step: HF transformers' Qwen2ForCausalLM on the checkpoint that
`conductor model logits` just ran, same token ids, same device and dtype; prints one JSON line with the
largest absolute and relative (to the largest logit) difference.

    python3 scripts/gpu_check_logits.py CHECKPOINT OURS.safetensors TOKEN_IDS DEVICE DTYPE
"""
import json
import sys

import torch
import transformers
from safetensors.torch import load_file


def main(ckpt, ours_path, ids, device, dtype):
    torch.backends.cuda.matmul.allow_tf32 = False  # the C++ side leaves TF32 off too (LibTorch's default)
    torch.backends.cudnn.allow_tf32 = False
    dt = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    m = transformers.Qwen2ForCausalLM.from_pretrained(ckpt, dtype=dt).to(device).eval()
    x = torch.tensor([[int(t) for t in ids.split(",")]], device=device)
    with torch.no_grad():
        theirs = m(x).logits[0].float().cpu()
    ours = load_file(ours_path)["logits"].float()
    diff = (ours - theirs).abs().max().item()
    print(json.dumps({"max_abs_diff": diff, "rel_diff": diff / theirs.abs().max().item(),
                      "transformers": transformers.__version__, "torch": torch.__version__,
                      "device": str(device), "tokens": x.shape[1]}))


if __name__ == "__main__":
    main(*sys.argv[1:6])
