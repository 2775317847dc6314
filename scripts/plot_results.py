#!/usr/bin/env python3
"""Plot accuracy vs memory size from an msabench report.csv (written by `msabench report`).

usage: plot_results.py REPORT.csv OUT.png
One panel per dataset; one line per backend; the y value is the first accuracy metric present
(ruler_string_match_all, then token_f1, then recall@1)."""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PREFERENCE = ["ruler_string_match_all", "token_f1", "recall@1"]


def size_label(n):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def main(src, dst):
    data = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    with open(src, newline="") as f:
        for row in csv.DictReader(f):
            data[row["dataset"]][row["metric"]][row["backend"]][int(row["memory_tokens"])] = float(row["value"])
    if not data:
        sys.exit(f"{src}: no rows")
    datasets = sorted(data)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        metric = next((m for m in PREFERENCE if m in data[ds]), None)
        if metric is None:
            ax.set_title(f"{ds}: no accuracy metric")
            continue
        sizes = set()
        for backend, points in sorted(data[ds][metric].items()):
            xs = sorted(points)
            sizes.update(xs)
            ax.plot(xs, [points[x] for x in xs], marker="o", label=backend)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sizes))
        ax.set_xticklabels([size_label(s) for s in sorted(sizes)])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("memory size (tokens)")
        ax.set_ylabel(metric)
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(dst, dpi=110, format="png")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
