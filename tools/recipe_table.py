#!/usr/bin/env python3
"""Writes the ablation table of docs/results/recipe.md from the finished runs
of tools/recipe_ablation.sh.

Each finished run folder (runs/recipe/<row>-s<seed>/) is first archived, its
results.json, metrics.jsonl and config.json copied to
docs/results/runs/recipe/<row>-s<seed>/ (committed; the checkpoints are not),
then the table is built from the archive, so it can be rebuilt on a machine
that holds none of the run folders. Every row is compared with the "base"
row (or the one --base names): the starting recipe (today's default without
label smoothing), same epochs, same seeds; the third round's base is "d20".

    python3 tools/recipe_table.py [--runs runs/recipe] [--archive docs/results/runs/recipe] [--base base]
"""

import argparse
import json
import math
import os
import statistics
import sys

from archive_runs import archive_run

# The settings a row may change, in the order the table names them.
SETTINGS = (
    "epochs", "batch_size", "lr", "loc_lr", "optimizer", "schedule", "warmup",
    "clip", "ema", "label_smoothing", "weight_decay",
)


def archive(runs, dest):
    if not os.path.isdir(runs):
        return
    for name in sorted(os.listdir(runs)):
        archive_run(os.path.join(runs, name), dest)


def load(dest):
    rows = {}
    for name in sorted(os.listdir(dest)) if os.path.isdir(dest) else []:
        d = os.path.join(dest, name)
        row, _, seed = name.rpartition("-s")
        with open(os.path.join(d, "results.json")) as f:
            r = json.load(f)
        with open(os.path.join(d, "config.json")) as f:
            c = json.load(f)
        curve = []
        with open(os.path.join(d, "metrics.jsonl")) as f:
            for line in f:
                v = json.loads(line)
                if v.get("type") == "epoch" and "val_error" in v:
                    curve.append((v["epoch"] + 1, 100 * v["val_error"]))
        rows.setdefault(row, []).append(
            {"seed": int(seed), "err": 100 * r["val_error"], "wall": r["wall_s"],
             "rate": r["images_per_sec"], "threads": r.get("threads"),
             "kernels": r.get("kernels"), "cfg": c, "curve": curve})
    return rows


def change(cfg, base):
    diff = [f"{k} {cfg[k]}" for k in SETTINGS if base and cfg.get(k) != base.get(k)]
    return ", ".join(diff) if diff else "(the reference row)"


def mean_std(xs):
    m = statistics.fmean(xs)
    s = statistics.stdev(xs) if len(xs) > 1 else float("nan")
    return m, s


def table(rows, name="base"):
    base = rows.get(name, [{}])[0].get("cfg")
    out = [f"| row | change | seeds | val error % (mean ± std) | per seed | vs {name} | wall time / run | images/s |",
           "|---|---|---|---|---|---|---|---|"]
    bm = mean_std([r["err"] for r in rows[name]])[0] if name in rows else None
    order = [name] + [k for k in rows if k != name]
    for k in order:
        if k not in rows:
            continue
        rs = sorted(rows[k], key=lambda r: r["seed"])
        m, s = mean_std([r["err"] for r in rs])
        std = "" if math.isnan(s) else f" ± {s:.2f}"
        vs = "" if bm is None or k == name else f"{m - bm:+.2f}"
        wall = statistics.fmean(r["wall"] for r in rs)
        rate = statistics.fmean(r["rate"] for r in rs)
        per = ", ".join(f"{r['err']:.2f}" for r in rs)
        out.append(f"| {k} | {change(rs[0]['cfg'], base)} | {len(rs)} | {m:.2f}{std} | {per} | {vs} | {wall / 60:.0f} min | {rate:.0f} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs/recipe")
    ap.add_argument("--archive", default="docs/results/runs/recipe")
    ap.add_argument("--base", default="base", help="the row every other row is compared with")
    a = ap.parse_args()
    archive(a.runs, a.archive)
    rows = load(a.archive)
    if not rows:
        sys.exit(f"no finished runs under {a.runs} or {a.archive}")
    print(table(rows, a.base))


if __name__ == "__main__":
    main()
