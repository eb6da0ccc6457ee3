#!/usr/bin/python3
"""ASHA against random search: best validation accuracy so far against time, from the journals.

    scripts/search_curves.py ROOT OUT.png [MINUTES]

ROOT holds asha_N/ and random_N/ search directories (N = 1, 2, 3: the seeds); prints each
search's best validation accuracy and draws one panel per seed (docs/search.md, Measured).
Only epochs that ended within MINUTES (default 30, the searches' --time) count: --time stops at
the next epoch boundary, so the epochs under way at the deadline end after it, and counting them
would give a search more time than the comparison allows."""
import json, sys, os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

minutes = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0

def curve(path):
    pts = []
    for line in open(path):
        r = json.loads(line)
        if r["type"] == "epoch" and r["t"] <= minutes * 60:
            pts.append((r["t"], r["val_acc"], r["trial"], r["epoch"]))
    pts.sort()
    best, out = -1, []
    for t, v, tr, e in pts:
        if v > best:
            best = v
            out.append((t, v, tr, e))
    return out, pts

root = sys.argv[1]
seeds = [s for s in (1, 2, 3) if os.path.exists(f"{root}/asha_{s}/search.jsonl") and os.path.exists(f"{root}/random_{s}/search.jsonl")]
fig, axes = plt.subplots(1, len(seeds), figsize=(5 * len(seeds), 3.6), squeeze=False)
for ax, s in zip(axes[0], seeds):
    for name, style in (("asha", "-"), ("random", "--")):
        c, pts = curve(f"{root}/{name}_{s}/search.jsonl")
        xs = [p[0] / 60 for p in c] + [minutes]
        ys = [p[1] for p in c] + [c[-1][1]]
        label = "ASHA + TPE" if name == "asha" else "random, no pruning"
        ax.step(xs, ys, style, where="post", label=label)
        trials = len({p[2] for p in pts})
        last = max(p[3] for p in pts)
        at_last = max((p for p in pts if p[3] == last), key=lambda p: p[1])
        print(f"seed {s} {name:7s}: best val_acc {c[-1][1]:.2f}% (trial {c[-1][2]}, epoch {c[-1][3]}, at {c[-1][0]/60:.1f} min); "
              f"best at epoch {last} {at_last[1]:.2f}% (trial {at_last[2]}); {len(pts)} epochs, {trials} trials")
    ax.set_title(f"search seed {s}")
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel("best validation accuracy (%)")
    ax.set_ylim(88, 95)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
