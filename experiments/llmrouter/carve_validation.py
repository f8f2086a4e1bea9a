#!/usr/bin/env python3
"""Carve a validation split out of the training files of a public router benchmark.

    carve_validation.py --format llmrouter|routerbench --input DATA_DIR --out OUT_DIR [--fraction 0.2]

Writes OUT_DIR with the same files as DATA_DIR, except that every training file is cut in two: the
queries whose key hashes into the first `fraction` of [0, 1) go to a validation file (which the
conductor importers read as split 1), the rest stay in the training file. The test files and the
side files (prices, task maps) are symbolic links to the originals: the test split is untouched and
nothing is copied from the shared data into a repository.

The key is the question text (llmrouter) or the sample id (routerbench), hashed with SHA-256, so the
carve is the same on every machine and does not depend on file order. Standard library only.
"""
import argparse
import csv
import hashlib
import json
import os
import sys


def in_validation(key: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return h / 2.0**64 < fraction


def link(src: str, dst: str) -> None:
    if os.path.lexists(dst):
        os.remove(dst)
    os.symlink(os.path.abspath(src), dst)


def carve_llmrouter(inp: str, out: str, fraction: float) -> None:
    for name in sorted(os.listdir(inp)):
        src = os.path.join(inp, name)
        if name != "train.json":
            link(src, os.path.join(out, name))
            continue
        with open(src, encoding="utf-8") as f:
            entries = json.load(f)
        train = [e for e in entries if not in_validation(e["question"], fraction)]
        val = [e for e in entries if in_validation(e["question"], fraction)]
        for fname, part in (("train.json", train), ("val.json", val)):
            with open(os.path.join(out, fname), "w", encoding="utf-8") as f:
                json.dump(part, f, ensure_ascii=False)
        print(f"{name}: {len(train)} train, {len(val)} validation", file=sys.stderr)


def carve_routerbench(inp: str, out: str, fraction: float) -> None:
    csv.field_size_limit(1 << 30)
    for name in sorted(os.listdir(inp)):
        src = os.path.join(inp, name)
        if not name.endswith("_train.csv"):
            link(src, os.path.join(out, name))
            continue
        with open(src, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        key = header.index("sample_id")
        train = [r for r in body if not in_validation(r[key], fraction)]
        val = [r for r in body if in_validation(r[key], fraction)]
        stem = name[: -len("_train.csv")]
        for fname, part in ((name, train), (stem + "_val.csv", val)):
            with open(os.path.join(out, fname), "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(part)
        print(f"{name}: {len(train)} train, {len(val)} validation", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--format", required=True, choices=["llmrouter", "routerbench"])
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fraction", type=float, default=0.2)
    a = p.parse_args()
    if not 0 < a.fraction < 1:
        sys.exit(f"error: --fraction {a.fraction}: expected a share in (0, 1)")
    if not os.path.isdir(a.input):
        sys.exit(f"error: --input {a.input}: not a directory")
    os.makedirs(a.out, exist_ok=True)
    (carve_llmrouter if a.format == "llmrouter" else carve_routerbench)(a.input, a.out, a.fraction)


if __name__ == "__main__":
    main()
