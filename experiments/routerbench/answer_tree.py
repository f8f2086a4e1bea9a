#!/usr/bin/env python3
"""How far answer signals alone carry on RouterBench (analysis for issue 14, standard library only).

Per task, fits on the train CSVs a decision tree of up to three calls whose state is what a gateway
sees after each call: the called workers and, for multiple-choice tasks, the answer letter each gave
(unparseable = its own value), for MBPP whether the answer is longer than the worker's median on
train. At each state it calls the worker with the best expected (quality - w_cost x cost) of the
subtree, or finishes with the called worker whose answers were best in that state on train. States
seen fewer than MIN times on train finish. No query text is used.

  python3 answer_tree.py --data DIR --fit train --eval val test --min 10 20 40 --w 10 15 20 30 50
"""
import argparse, ast, csv, os, statistics as st

csv.field_size_limit(10**9)
TASKS = {'arc_challenge': 'choice', 'mbpp': 'code', 'winograde': 'choice'}
GPT4 = 'gpt-4-1106-preview'


def letter(s):
    s = s.strip()
    if s.startswith('('):
        s = s[1:]
    if not s or s[0] not in 'ABCDE':
        return -1
    if len(s) == 1 or s[1] in ').:,':
        return ord(s[0]) - 65
    if s[1].isspace() and s[1:].lstrip().startswith('('):
        return ord(s[0]) - 65
    return -1


def load(data, split):
    rows, models = [], None
    for t in TASKS:
        path = os.path.join(data, f'{t}_{split}.csv')
        with open(path) as fh:
            r = csv.DictReader(fh)
            models = [h for h in r.fieldnames if '|' not in h and h not in ('', 'sample_id', 'prompt', 'eval_name', 'oracle_model_to_route_to')]
            for row in r:
                if any(row[m] == '' for m in models):
                    continue  # a quality not logged: left out, as conductor eval does
                d = {'task': t, 'q': {}, 'c': {}, 'txt': {}}
                for m in models:
                    d['q'][m] = float(row[m])
                    d['c'][m] = float(row[m + '|total_cost'] or 0)
                    resp = row[m + '|model_response']
                    d['txt'][m] = '\n'.join(ast.literal_eval(resp)) if resp else ''
                rows.append(d)
    return rows, models


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--fit', default='train')
    ap.add_argument('--eval', nargs='+', default=['test'])
    ap.add_argument('--min', nargs='+', type=int, default=[20])
    ap.add_argument('--w', nargs='+', type=float, default=[10, 15, 20, 30, 50])
    a = ap.parse_args()
    fit, models = load(a.data, a.fit)
    evals = {s: load(a.data, s)[0] for s in a.eval}
    med = {}
    for t in TASKS:
        for m in models:
            L = sorted(len(r['txt'][m]) for r in fit if r['task'] == t)
            med[(t, m)] = L[len(L) // 2]

    def obs(r, m):
        if TASKS[r['task']] == 'code':
            return 'long' if len(r['txt'][m]) > med[(r['task'], m)] else 'short'
        return letter(r['txt'][m])

    def solve(R, w, min_n):
        policy = {}

        def V(state, R):
            called = [m for m, _ in state]
            best = None
            for m in called:
                v = st.mean(r['q'][m] for r in R)
                if best is None or v > best[0]:
                    best = (v, ('finish', m))
            if len(called) < 3 and (not called or len(R) >= min_n):
                for m in models:
                    if m in called:
                        continue
                    groups = {}
                    for r in R:
                        groups.setdefault(obs(r, m), []).append(r)
                    v = -w * st.mean(r['c'][m] for r in R) + sum(len(g) / len(R) * V(state + [(m, o)], g)[0] for o, g in groups.items())
                    if best is None or v > best[0]:
                        best = (v, ('call', m))
            policy[tuple(state)] = best[1]
            return best

        V([], R)
        return policy

    def run(policy, r, trust):
        state, cost = [], 0.0
        while True:
            act = policy.get(tuple(state))
            if act is None:  # a state never seen on train: the most trusted called worker answers
                m = max((m for m, _ in state), key=lambda m: trust[m])
                return r['q'][m], cost, len(state)
            if act[0] == 'finish':
                return r['q'][act[1]], cost, len(state)
            m = act[1]
            cost += r['c'][m]
            state.append((m, obs(r, m)))

    print('| MIN | w_cost | split | quality | cost/query | x gpt-4 quality | x gpt-4 cost | calls/query |')
    print('|---:|---:|---|---:|---:|---:|---:|---:|')
    for min_n in a.min:
        for w in a.w:
            pols = {}
            for t in TASKS:
                R = [r for r in fit if r['task'] == t]
                pols[t] = (solve(R, w, min_n), {m: st.mean(r['q'][m] for r in R) for m in models})
            for s, rows in evals.items():
                Q = C = K = 0.0
                for r in rows:
                    q, c, k = run(*pols[r['task']][:1], r, pols[r['task']][1])
                    Q += q; C += c; K += k
                n = len(rows)
                gq = st.mean(r['q'][GPT4] for r in rows); gc = st.mean(r['c'][GPT4] for r in rows)
                print(f'| {min_n} | {w:g} | {s} | {Q/n:.4f} | {C/n:.6f} | {Q/n/gq:.3f} | {C/n/gc:.3f} | {K/n:.2f} |')


if __name__ == '__main__':
    main()
