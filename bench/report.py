"""Turns bench JSON lines into the Markdown tables of docs/RESULTS.md.

``python bench/report.py results/*.jsonl``
"""

import collections
import json
import sys


def load(paths):
    records = []
    for path in paths:
        with open(path) as f:
            records += [json.loads(line) for line in f if line.startswith("{")]
    return records


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def main(paths):
    records = load(paths)
    inference = [r for r in records if r.get("bench") == "inference"]
    if inference:
        print(table(["layers", "path", "size", "median s", "GFLOP/s", "runs (s)", "load1"],
                    [(r.get("layers", "current"), r["path"], f"{r['size']}²", f"{r['median_s']:.3f}", r["gflops_per_s"],
                      " ".join(f"{t:.3f}" for t in r["times_s"]), r["load1"]) for r in inference]))
        print()
    train = [r for r in records if r.get("bench") == "train_step"]
    if train:
        print(table(["precision", "strategy", "jit_compile", "s/step (median)", "images/s", "steps (s)", "load1"],
                    [(r["precision"], r["strategy"], r["jit_compile"],
                      f"{r['median_step_s']:.2f}" if "median_step_s" in r else "error: " + r.get("error", ""),
                      r.get("images_per_s", "-"), " ".join(f"{t:.2f}" for t in r.get("step_times_s", [])),
                      r.get("load1", "-")) for r in train]))
        print()
    profile = [r for r in records if r.get("bench") == "profile_ops" and "kind_total" in r]
    if profile:
        groups = collections.defaultdict(dict)
        for r in profile:
            groups[(r["kind_total"])][(r.get("layers", "current"), r["mode"])] = r["ms"]
        cols = sorted({k for g in groups.values() for k in g})
        sums = {(r.get("layers", "current"), r["mode"]): r["sum_of_ops_ms"] for r in records
                if r.get("bench") == "profile_ops" and "sum_of_ops_ms" in r}
        rows = [(kind, *[groups[kind].get(c, "-") for c in cols]) for kind in
                sorted(groups, key=lambda k: -max(v for v in groups[k].values()))]
        rows.append(("**sum of ops**", *[sums.get(c, "-") for c in cols]))
        print(table(["op kind (ms)", *[f"{layers} {mode}" for layers, mode in cols]], rows))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
