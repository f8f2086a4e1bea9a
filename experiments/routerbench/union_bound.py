#!/usr/bin/env python3
"""How far could the conductor's frontier get above the router's by matching the router where the
router is ahead? Copies `conductor eval` report folders and gives the conductor family every
operating point of a second family as well (default: the router), so that `conductor eval-pool` on
the copies measures the conductor-or-router hull against the router: an upper bound on what any
conductor with the same escalation points and the router's single-call points could score.

  python3 experiments/routerbench/union_bound.py --out /tmp/ub RUN1/report RUN2/report RUN3/report
  build/bin/conductor eval-pool --report /tmp/ub/run1 --report /tmp/ub/run2 --report /tmp/ub/run3

Standard library only. The input folders are not modified.
"""
import argparse
import json
import os
import shutil
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", nargs="+", help="report folders written by `conductor eval --report`")
    ap.add_argument("--out", required=True, help="folder for the modified copies (run1, run2, ...)")
    ap.add_argument("--add", default="router", help="family whose points join the conductor's (default router)")
    args = ap.parse_args()
    for i, src in enumerate(args.reports, 1):
        path = os.path.join(src, "outcomes.json")
        try:
            with open(path) as f:
                outcomes = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"error: {path}: {e} (expected the outcomes.json of a `conductor eval --report` folder)")
        families = outcomes.get("families")
        if not isinstance(families, dict):
            sys.exit(f"error: {path}: no 'families' object")
        for name in ("conductor", args.add):
            if not isinstance(families.get(name), list) or not families[name]:
                sys.exit(f"error: {path}: family '{name}' is missing or has no operating point")
        families["conductor"] = families["conductor"] + families[args.add]
        dst = os.path.join(args.out, f"run{i}")
        shutil.copytree(src, dst, dirs_exist_ok=True)
        tmp = os.path.join(dst, "outcomes.json.tmp")
        with open(tmp, "w") as f:
            json.dump(outcomes, f)
        os.replace(tmp, os.path.join(dst, "outcomes.json"))
        print(f"{dst}: conductor family with {len(families['conductor'])} points (+{len(families[args.add])} of '{args.add}')")


if __name__ == "__main__":
    main()
