#!/usr/bin/env python3
"""The LOTO table from experiments/loto/run.sh's output folder (standard library only).

    summarize.py OUT_DIR        -> markdown on stdout

Per fold (held-out task) and feature set: test queries, frontier AIQ of the conductor, router,
tfidf_router, cascade, single workers and oracle, and the conductor's AIQ minus each baseline's
with the paired 95% bootstrap interval of `conductor eval`; the mean over folds (each fold on its
own cost range); encoder minus TF-IDF per fold (unpaired); wall times from OUT/times.tsv.
"""
import json
import os
import sys

FAMILIES = ["conductor", "router", "tfidf_router", "cascade", "single_workers", "oracle"]
VARIANTS = [("tfidf", "TF-IDF head"), ("encoder", "TF-IDF + encoder")]


def load(out, fold, variant):
    p = os.path.join(out, fold, variant, "report_test", "report.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def diff(r, fam):
    d = r["frontier"][fam].get("conductor_aiq_minus_this")
    if not d:
        return "-"
    lo, hi = d["ci95"]
    return f"{d['observed']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def main():
    out = sys.argv[1]
    folds = ["all"] + sorted(d for d in os.listdir(out)
                             if d != "all" and os.path.isdir(os.path.join(out, d)) and
                             any(os.path.exists(os.path.join(out, d, v)) for v, _ in VARIANTS))
    for variant, title in VARIANTS:
        print(f"### {title} (`{variant}`): frontier AIQ on the test split\n")
        print("| held-out task | test queries | conductor | router | tfidf_router | cascade | single workers | oracle "
              "| conductor − router | conductor − tfidf_router | conductor − cascade | conductor − single workers |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|")
        rows = []
        for fold in folds:
            r = load(out, fold, variant)
            if r is None:
                continue
            f = r["frontier"]
            name = "none (in-distribution control)" if fold == "all" else fold
            cells = [f"{f[k]['aiq']:.4f}" if k in f else "-" for k in FAMILIES]
            print(f"| {name} | {r['n_queries']} | " + " | ".join(cells) + " | " +
                  " | ".join(diff(r, k) for k in ("router", "tfidf_router", "cascade", "single_workers")) + " |")
            if fold != "all":
                rows.append(r)
        if rows:
            n = len(rows)
            mean = {k: sum(r["frontier"][k]["aiq"] for r in rows) / n for k in FAMILIES}
            md = {k: sum(r["frontier"][k]["conductor_aiq_minus_this"]["observed"] for r in rows) / n
                  for k in ("router", "tfidf_router", "cascade", "single_workers")}
            print(f"| **mean of {n} folds** | {sum(r['n_queries'] for r in rows)} | " +
                  " | ".join(f"{mean[k]:.4f}" for k in FAMILIES) + " | " +
                  " | ".join(f"{md[k]:+.4f}" for k in ("router", "tfidf_router", "cascade", "single_workers")) + " |")
            above = {k: sum(1 for r in rows if r["frontier"][k]["conductor_aiq_minus_this"]["ci95"][0] > 0)
                     for k in ("router", "tfidf_router", "cascade")}
            below = {k: sum(1 for r in rows if r["frontier"][k]["conductor_aiq_minus_this"]["ci95"][1] < 0)
                     for k in ("router", "tfidf_router", "cascade")}
            print("\nFolds where the conductor's interval is wholly above / wholly below: " +
                  "; ".join(f"{k} {above[k]} / {below[k]}" for k in ("router", "tfidf_router", "cascade")) + "\n")
        print()
    # Encoder minus TF-IDF, per family (not paired across runs: different feature sets, same queries).
    print("### Encoder features minus TF-IDF head (frontier AIQ, same test queries; unpaired)\n")
    print("| held-out task | conductor | router | tfidf_router |")
    print("|---|---:|---:|---:|")
    for fold in folds:
        a, b = load(out, fold, "tfidf"), load(out, fold, "encoder")
        if a is None or b is None:
            continue
        name = "none (in-distribution control)" if fold == "all" else fold
        print(f"| {name} | " + " | ".join(f"{b['frontier'][k]['aiq'] - a['frontier'][k]['aiq']:+.4f}"
                                         for k in ("conductor", "router", "tfidf_router")) + " |")
    print()
    tp = os.path.join(out, "times.tsv")
    if os.path.exists(tp):
        tot = {}
        with open(tp) as f:
            next(f)
            for line in f:
                fold, variant, stage, sec = line.rstrip("\n").split("\t")
                tot[(variant, stage)] = tot.get((variant, stage), 0) + int(sec)
        print("Wall time (s, summed over folds): " +
              ", ".join(f"{v} {s} {t}" for (v, s), t in sorted(tot.items())))


if __name__ == "__main__":
    main()
