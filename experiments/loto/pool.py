#!/usr/bin/env python3
"""Pool the LOTO folds per query, and compare with the in-distribution control on the same queries.

    pool.py OUT_DIR [--resamples 1000] [--seed 1]      -> markdown on stdout (numpy; /usr/bin/python3)

Every query of the source trace file is in the test split of exactly one fold (the fold that holds
out its task), so the folds' per-query outcomes (`conductor eval`'s outcomes.json) put together give
each family's frontier on all queries, every one of them answered by a model that never saw its
task. A family's frontier point k pooled over folds is point k of every fold (the same cost weight
for conductor, router and tfidf_router, the same threshold for the cascade, the same worker for the
single workers), each fold on its own queries. AIQ as `conductor eval` computes it (eval/metrics.cpp:
non-decreasing convex hull, 0 below the cheapest point, flat above the dearest, over [0, c_max] with
c_max the most expensive point of all families compared); intervals by a paired percentile bootstrap
over queries (the same resampled rows for every family and both sides of a comparison).

Tables: (A) all queries, per feature set: each family's AIQ with its interval and the conductor's
AIQ minus each baseline's; (B) the encoder feature set minus the TF-IDF one, per family; (C) the
queries of the in-distribution control's test split (folder `all`): the same family trained with the
task seen (control) and unseen (LOTO), and LOTO minus control. One training seed: the intervals
cover the sampling of queries only.
"""
import argparse
import json
import os
import sys

import numpy as np

FAMS = ["conductor", "router", "tfidf_router", "cascade", "single_workers", "oracle"]
VARIANTS = [("tfidf", "TF-IDF head"), ("encoder", "TF-IDF + encoder")]


def load(path):
    with open(os.path.join(path, "report_test", "outcomes.json")) as f:
        o = json.load(f)
    fams = {k: (np.array([p["cost_usd"] for p in v]), np.array([p["quality"] for p in v]))
            for k, v in o["families"].items()}
    return o["query_ids"], fams


def pool_folds(out, variant, folds):
    """ids (sorted) and family -> (cost [P, n], quality [P, n]) over all folds' test queries."""
    cols, ids_all = {}, []
    for fold in folds:
        ids, fams = load(os.path.join(out, fold, variant))
        ids_all += ids
        for k, (c, q) in fams.items():
            cols.setdefault(k, []).append((c, q))
    for k, parts in cols.items():
        if len({p[0].shape[0] for p in parts}) != 1 or len(parts) != len(folds):
            sys.exit(f"error: family {k} has different numbers of points across folds ({[p[0].shape[0] for p in parts]})")
    order = np.argsort(np.array(ids_all, dtype=object))
    if len(set(ids_all)) != len(ids_all):
        sys.exit("error: a query is in the test split of two folds")
    fams = {k: (np.concatenate([p[0] for p in parts], axis=1)[:, order],
                np.concatenate([p[1] for p in parts], axis=1)[:, order]) for k, parts in cols.items()}
    return [ids_all[i] for i in order], fams


def restrict(ids, fams, keep):
    idx = np.array([i for i, q in enumerate(ids) if q in keep])
    return [ids[i] for i in idx], {k: (c[:, idx], q[:, idx]) for k, (c, q) in fams.items()}


def hull(points):
    pts = sorted(points, key=lambda p: (p[0], -p[1]))
    front = []
    for p in pts:
        if not front or p[1] > front[-1][1] + 1e-12:
            front.append(p)
    h = []
    for p in front:
        while len(h) >= 2:
            a, b = h[-2], h[-1]
            if (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0:
                h.pop()
            else:
                break
        h.append(p)
    return h


def hull_value(h, c):
    if not h or c < h[0][0]:
        return 0.0
    if c >= h[-1][0]:
        return h[-1][1]
    for i in range(1, len(h)):
        if c <= h[i][0]:
            a, b = h[i - 1], h[i]
            return a[1] + (b[1] - a[1]) * (c - a[0]) / (b[0] - a[0])
    return h[-1][1]


def aiq(points, cmax):
    h = hull(points)
    xs = sorted({0.0, cmax} | {p[0] for p in h if 0.0 < p[0] < cmax})
    area = 0.0
    for a, b in zip(xs, xs[1:]):
        if b <= h[0][0]:
            continue
        area += 0.5 * (hull_value(h, a) + hull_value(h, b)) * (b - a)
    return area / cmax


def means(fams, w):
    """family -> list of (mean cost, mean quality) per point, with query weights w (sum 1)."""
    return {k: list(zip(c @ w, q @ w)) for k, (c, q) in fams.items()}


def aiqs(sides, w):
    """sides: list of fams dicts over the same queries -> list of {family: AIQ} on a common range."""
    m = [means(f, w) for f in sides]
    cmax = max(p[0] for side in m for pts in side.values() for p in pts)
    return [{k: aiq(pts, cmax) for k, pts in side.items()} for side in m]


def boot(sides, n, resamples, seed):
    rng = np.random.default_rng(seed)
    obs = aiqs(sides, np.full(n, 1.0 / n))
    reps = [aiqs(sides, rng.multinomial(n, np.full(n, 1.0 / n)) / n) for _ in range(resamples)]
    return obs, reps


def ci(xs):
    lo, hi = np.percentile(np.array(xs), [2.5, 97.5])
    return f"[{lo:+.4f}, {hi:+.4f}]"


def ci_plain(xs):
    lo, hi = np.percentile(np.array(xs), [2.5, 97.5])
    return f"[{lo:.4f}, {hi:.4f}]"


def print_difference_table(ks, obs, reps, a, b, diff):
    """Per family: side A, side B and B - A with its bootstrap interval."""
    print(f"| family | {a} | {b} | {diff} [95% CI] |")
    print("|---|---:|---:|---|")
    for k in ks:
        print(f"| {k} | {obs[0][k]:.4f} | {obs[1][k]:.4f} | {obs[1][k] - obs[0][k]:+.4f} "
              f"{ci([r[1][k] - r[0][k] for r in reps])} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    folds = sorted(d for d in os.listdir(a.out) if d != "all" and
                   os.path.exists(os.path.join(a.out, d, "tfidf", "report_test", "outcomes.json")))
    variants = [(v, t) for v, t in VARIANTS
                if all(os.path.exists(os.path.join(a.out, d, v, "report_test", "outcomes.json")) for d in folds)]
    pooled = {v: pool_folds(a.out, v, folds) for v, _ in variants}
    R = a.resamples
    print(f"Folds pooled: {len(folds)} ({', '.join(folds)}); paired bootstrap over queries, {R} resamples, seed {a.seed}.\n")

    print("### (A) All queries, each answered by the fold that held out its task\n")
    for v, title in variants:
        ids, fams = pooled[v]
        fams = {k: fams[k] for k in FAMS if k in fams}
        obs, reps = boot([fams], len(ids), R, a.seed)
        print(f"{title} (`{v}`), {len(ids)} queries:\n")
        print("| family | AIQ | 95% CI | conductor − family [95% CI] |")
        print("|---|---:|---:|---|")
        for k in fams:
            d = "-" if k == "conductor" else \
                f"{obs[0]['conductor'] - obs[0][k]:+.4f} {ci([r[0]['conductor'] - r[0][k] for r in reps])}"
            print(f"| {k} | {obs[0][k]:.4f} | {ci_plain([r[0][k] for r in reps])} | {d} |")
        print()

    if len(variants) == 2:
        (ia, fa), (ib, fb) = pooled["tfidf"], pooled["encoder"]
        assert ia == ib
        ks = [k for k in ("conductor", "router", "tfidf_router", "cascade") if k in fa and k in fb]
        obs, reps = boot([{k: fa[k] for k in ks}, {k: fb[k] for k in ks}], len(ia), R, a.seed)
        print(f"### (B) Encoder features minus TF-IDF head, all {len(ia)} queries (common cost range)\n")
        print_difference_table(ks, obs, reps, "TF-IDF", "+ encoder", "difference")
        print()

    if os.path.isdir(os.path.join(a.out, "all")):
        print("### (C) The control's test queries: task seen in training (control) against unseen (LOTO)\n")
        for v, title in variants:
            if not os.path.exists(os.path.join(a.out, "all", v, "report_test", "outcomes.json")):
                continue
            cids, cf = load(os.path.join(a.out, "all", v))
            lids, lf = restrict(*pooled[v], set(cids))   # the control's queries that some fold tested
            keep = set(lids)
            order = sorted((i for i, q in enumerate(cids) if q in keep), key=lambda i: cids[i])
            cids = [cids[i] for i in order]
            cf = {k: (c[:, order], q[:, order]) for k, (c, q) in cf.items()}
            if cids != lids:
                sys.exit(f"error: {v}: the control's and the folds' query ids do not line up")
            ks = [k for k in FAMS if k in cf and k in lf]
            obs, reps = boot([{k: cf[k] for k in ks}, {k: lf[k] for k in ks}], len(cids), R, a.seed)
            print(f"{title} (`{v}`), {len(cids)} queries (common cost range):\n")
            print_difference_table(ks, obs, reps, "task seen (control)", "task unseen (LOTO)", "LOTO − control")
            print(f"\nconductor − router: control {obs[0]['conductor'] - obs[0]['router']:+.4f} "
                  f"{ci([r[0]['conductor'] - r[0]['router'] for r in reps])}, LOTO "
                  f"{obs[1]['conductor'] - obs[1]['router']:+.4f} {ci([r[1]['conductor'] - r[1]['router'] for r in reps])}\n")


if __name__ == "__main__":
    main()
