#!/usr/bin/env python3
"""Leave-one-task-out carve of a conductor trace file (HDF5, traces/trace_set.h).

    carve_task.py --input IN.h5 --task TASK --out OUT.h5 [--list-tasks]

OUT keeps the models and every per-query dataset of IN (/queries/*, /outcomes/*, with their
attributes, e.g. the encoder's sha256 on /queries/embedding), restricted to:
  * the queries of TASK, from every split of IN, as the TEST split (split code 2);
  * the queries of every other task that IN has in its train (0) or validation (1) split, with
    that split unchanged.
The other tasks' test queries of IN are dropped, so training and validation are exactly IN's minus
TASK. Queries keep their file order. Needs h5py and numpy (Debian: /usr/bin/python3).
"""
import argparse
import os
import sys

import h5py
import numpy as np

TRAIN, VALIDATION, TEST = 0, 1, 2


def tasks_of(f):
    return [t.decode() if isinstance(t, bytes) else str(t) for t in f["queries/task"][...]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--task")
    ap.add_argument("--out")
    ap.add_argument("--list-tasks", action="store_true", help="print the tasks of --input, one a line")
    a = ap.parse_args()
    with h5py.File(a.input, "r") as f:
        if "queries/task" not in f or "queries/split" not in f:
            sys.exit(f"error: {a.input} has no /queries/task or /queries/split: not a conductor trace file")
        tasks = tasks_of(f)
        if a.list_tasks:
            print("\n".join(sorted(set(tasks))))
            return
        if not a.task or not a.out:
            sys.exit("error: --task and --out are required (or --list-tasks)")
        if "decisions" in f:
            sys.exit(f"error: {a.input} holds /decisions (bandit logs); this carve handles full-information traces only")
        if a.task not in set(tasks):
            sys.exit(f"error: task {a.task!r} is not in {a.input} (tasks: {', '.join(sorted(set(tasks)))})")
        n = len(tasks)
        split = f["queries/split"][...]
        is_task = np.array([t == a.task for t in tasks])
        keep = is_task | (split == TRAIN) | (split == VALIDATION)
        idx = np.nonzero(keep)[0]
        new_split = np.where(is_task, TEST, split).astype(split.dtype)[idx]
        tmp = a.out + ".tmp"
        with h5py.File(tmp, "w") as g:
            for k, v in f.attrs.items():
                g.attrs[k] = v
            g.attrs["source"] = f"{f.attrs.get('source', '')} | leave-one-task-out: test = {a.task}"
            for grp in f:
                src_g = f[grp]
                dst_g = g.require_group(grp)
                for k, v in src_g.attrs.items():
                    dst_g.attrs[k] = v
                for name, ds in src_g.items():
                    if not isinstance(ds, h5py.Dataset):
                        sys.exit(f"error: /{grp}/{name} is a group; not expected in a trace file")
                    if grp in ("queries", "outcomes"):
                        if ds.shape[0] != n:
                            sys.exit(f"error: /{grp}/{name} has {ds.shape[0]} rows, /queries/task {n}")
                        data = new_split if (grp, name) == ("queries", "split") else ds[...][idx]
                        out = dst_g.create_dataset(name, data=data, dtype=ds.dtype)
                    else:
                        out = dst_g.create_dataset(name, data=ds[...], dtype=ds.dtype)
                    for k, v in ds.attrs.items():
                        out.attrs[k] = v
        os.replace(tmp, a.out)
        counts = {s: int((new_split == c).sum()) for s, c in (("train", TRAIN), ("validation", VALIDATION), ("test", TEST))}
        print(f"{a.out}: test = {a.task} ({counts['test']} queries), train {counts['train']}, "
              f"validation {counts['validation']} (other tasks' test queries dropped: {int((~keep).sum())})")


if __name__ == "__main__":
    main()
