#!/usr/bin/python3
"""The pooling study's table (docs/results.md) from a finished `tailor sweep
experiments/pooling.toml`: test accuracy per budget and pool as mean +- sample
sd over the seeds, and the paired per-seed difference of avg and l2 to max
(same seed: same split, initialisation draw and batch order), with its paired
t statistic.

    /usr/bin/python3 scripts/pooling_table.py runs/pooling
"""
import glob
import json
import math
import os
import sys
import tomllib

# Two-sided 5% critical values of Student's t, by degrees of freedom.
T_CRIT = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 8: 2.31, 11: 2.20}


def mean_sd(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd


def paired(d):
    if len(d) < 2:
        return "%+.2f (one pair)" % d[0] if d else "-"
    m, sd = mean_sd(d)
    t = m / (sd / math.sqrt(len(d))) if sd > 0 else float("inf")
    crit = T_CRIT.get(len(d) - 1)
    sig = crit is not None and abs(t) > crit
    return "%+.2f ± %.2f (t = %.1f%s)" % (m, sd, t, ", p < 0.05" if sig else "")


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s SWEEP_DIR\n" % argv[0])
        return 2
    runs = {}  # (budget, pool) -> {seed: (test, val, seconds, weights, widths)}
    for summary in glob.glob(os.path.join(argv[1], "trials", "*", "summary.json")):
        d = os.path.dirname(summary)
        with open(summary) as f:
            s = json.load(f)
        with open(os.path.join(d, "config.toml"), "rb") as f:
            cfg = tomllib.load(f)
        budget = cfg["model"]["weights_target"]
        pool = s["model"].get("pool", "max")
        widths = "conv %s; fc %s" % (",".join(map(str, s["model"]["channels"])),
                                      ",".join(map(str, s["model"]["hidden"])))
        runs.setdefault((budget, pool), {})[s["seed"]] = (
            s["test_acc"], s["val_acc"], s["train_seconds"], s["weights"], widths)
    budgets = sorted({b for b, _ in runs})
    pools = ["max", "avg", "l2"]
    print("| budget | widths | weights | max | avg | l2 | avg − max (paired) | l2 − max (paired) | s/run max, avg, l2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    all_d = {"avg": [], "l2": []}
    for b in budgets:
        if any(len(runs.get((b, p), {})) < 2 for p in pools):
            print("| %dk | (fewer than two seeds of every pool have finished) |" % (b // 1000))
            continue
        cells, secs, diffs = [], [], {}
        for p in pools:
            r = runs.get((b, p), {})
            m, sd = mean_sd([v[0] for v in r.values()])
            cells.append("%.2f ± %.2f" % (m, sd))
            secs.append("%.0f" % mean_sd([v[2] for v in r.values()])[0])
        base = runs[(b, "max")]
        for p in ("avg", "l2"):
            seeds = sorted(set(base) & set(runs[(b, p)]))
            d = [runs[(b, p)][s][0] - base[s][0] for s in seeds]
            all_d[p] += d
            diffs[p] = paired(d)
        any_run = next(iter(base.values()))
        print("| %dk | %s | %d | %s | %s | %s | %s |" % (
            b // 1000, any_run[4], any_run[3], " | ".join(cells), diffs["avg"], diffs["l2"], ", ".join(secs)))
    print()
    for p in ("avg", "l2"):
        print("All budgets, %s − max over %d paired runs: %s" % (p, len(all_d[p]), paired(all_d[p])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
