#!/usr/bin/env python3
"""Per cost weight, the validation reward of every candidate and which one was chosen, from the
`selection` section of `conductor eval --select-on validation` reports (one per seed).

    selection_table.py OUT_DIR/s1/report_selected OUT_DIR/s2/report_selected ...

Prints a Markdown table: weight, each candidate's mean validation reward over the reports (its kind
is the folder name before `_w`: ppo, bc_router, bc_cascade), PPO minus the best imitation, and how
many seeds chose each kind. Standard library only.
"""
import json
import os
import re
import sys
from collections import defaultdict


def kind_of(checkpoint: str) -> str:
    run = os.path.basename(os.path.dirname(os.path.dirname(checkpoint)))  # .../RUN/checkpoints/update_N
    m = re.match(r"(.*)_w[0-9.eE+-]+$", run)
    return m.group(1) if m else run


def main(reports):
    reward = defaultdict(lambda: defaultdict(list))  # weight -> kind -> rewards
    chosen = defaultdict(lambda: defaultdict(int))
    kinds = []
    for rep in reports:
        with open(os.path.join(rep, "report.json")) as f:
            sel = json.load(f)["selection"]
        for g in sel["groups"]:
            w = g["w_cost"]
            for c in g["candidates"]:
                k = kind_of(c["checkpoint"])
                if k not in kinds:
                    kinds.append(k)
                reward[w][k].append(c["reward"])
            chosen[w][kind_of(g["chosen"])] += 1
    imitations = [k for k in kinds if k != "ppo"]
    head = ["w_cost"] + [f"{k} reward" for k in kinds] + ["ppo - best imitation"] + [f"chose {k}" for k in kinds]
    print("| " + " | ".join(head) + " |")
    print("|" + "---:|" * len(head))
    below = 0
    for w in sorted(reward):
        mean = {k: sum(v) / len(v) for k, v in reward[w].items()}
        gap = mean["ppo"] - max(mean[k] for k in imitations) if "ppo" in mean and imitations else float("nan")
        below += gap < 0
        cells = [f"{w:g}"] + [f"{mean[k]:.4f}" if k in mean else "-" for k in kinds] + [f"{gap:+.4f}"]
        cells += [str(chosen[w][k]) for k in kinds]
        print("| " + " | ".join(cells) + " |")
    print(f"\nPPO below the best imitation at {below} of {len(reward)} cost weights (mean over {len(reports)} reports).")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
