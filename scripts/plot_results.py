#!/usr/bin/env python3
"""Plot an msabench report.csv (written by `msabench report`) in the shapes of the paper's figures.

usage: plot_results.py REPORT.csv OUT.png [--caption-file FILE]

Panels: Figure 4 shape (NIAH accuracy vs memory length; measured lines with their 95% bootstrap
CI band, the paper's curves dashed and labelled "published") when the CSV has NIAH rows, and
Figure 1 shape (score vs memory size, log axis; the paper's MS MARCO judge-score curves on a
right-hand 0-5 axis, labelled "published"). The caption (model, data, sizes, machine, git) is
printed under the panels. The PNG carries no timestamp or version metadata, so the same CSV gives
the same bytes with the same matplotlib."""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "msabench"
import matplotlib.pyplot as plt  # noqa: E402


def size_label(n):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def read(src):
    # figure -> source -> label -> {tokens: (value, lo, hi)}
    curves = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    metrics = defaultdict(set)
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "figure" not in rows[0]:
        sys.exit(f"{src}: not an msabench report.csv (expected a 'figure' column)")
    for r in rows:
        if r["figure"] not in ("fig4", "fig1"):
            continue
        label = r["backend"] if r["source"] == "published" else f"{r['dataset']}: {r['backend']}"
        if r["figure"] == "fig4" and r["source"] == "measured":
            label = r["backend"]
        lo = float(r["ci_low"]) if r["ci_low"] else None
        hi = float(r["ci_high"]) if r["ci_high"] else None
        curves[r["figure"]][r["source"]][label][int(r["memory_tokens"])] = (float(r["value"]), lo, hi)
        if r["source"] == "measured":
            metrics[r["figure"]].add(r["metric"])
    return curves, metrics


def draw_measured(ax, series):
    for label, pts in sorted(series.items()):
        xs = sorted(pts)
        ys = [pts[x][0] for x in xs]
        (line,) = ax.plot(xs, ys, marker="o", label=f"measured: {label}")
        if all(pts[x][1] is not None for x in xs):
            ax.fill_between(xs, [pts[x][1] for x in xs], [pts[x][2] for x in xs], color=line.get_color(), alpha=0.15)


def draw_published(ax, series):
    cmap = plt.cm.viridis  # dashed and thin, so measured lines stay in front
    for i, (label, pts) in enumerate(sorted(series.items())):
        xs = sorted(pts)
        ax.plot(xs, [pts[x][0] for x in xs], linestyle="--", marker=".", linewidth=1, alpha=0.8,
                color=cmap(0.9 * i / max(1, len(series) - 1)), label=f"published: {label}")


def size_axis(ax, sizes):
    ax.set_xscale("log", base=2)
    ticks = sorted(sizes)
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_label(s) for s in ticks], rotation=45, fontsize=7)
    ax.set_xlabel("memory size (tokens)")
    ax.grid(alpha=0.3)


def main(src, dst, caption):
    curves, metrics = read(src)
    panels = [f for f in ("fig4", "fig1") if curves[f]["measured"] or (f == "fig1" and curves[f])]
    if not panels:
        sys.exit(f"{src}: no Figure 4 / Figure 1 rows")
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 5.2), squeeze=False)
    for ax, f in zip(axes[0], panels):
        measured, published = curves[f]["measured"], curves[f]["published"]
        sizes = {x for s in (measured, published) for pts in s.values() for x in pts}
        draw_measured(ax, measured)
        metric = "/".join(sorted(metrics[f])) or "score"
        if f == "fig4":
            draw_published(ax, published)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel(f"accuracy (measured: {metric}; published: NIAH accuracy)")
            ax.set_title("Figure 4 shape: NIAH accuracy vs memory length")
            handles, labels = ax.get_legend_handles_labels()
        else:
            # measured scores and the paper's 0-5 judge scores need separate axes unless both are judge scores
            same = metrics[f] == {"judge_score"}
            pax = ax if same else ax.twinx()
            draw_published(pax, published)
            if not same:
                ax.set_ylim(-0.02, 1.02)
                pax.set_ylim(0, 5)
                pax.set_ylabel("published: MS MARCO LLM judge score (0-5)")
            ax.set_ylabel(f"measured: {metric}")
            ax.set_title("Figure 1 shape: score vs memory size")
            handles, labels = ax.get_legend_handles_labels()
            if pax is not ax:
                h2, l2 = pax.get_legend_handles_labels()
                handles, labels = handles + h2, labels + l2
        size_axis(ax, sizes)
        ax.legend(handles, labels, fontsize=6, loc="lower left")
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=6, wrap=True, va="bottom")
    fig.tight_layout(rect=(0, 0.07 if caption else 0, 1, 1))
    # no Software/creation-time chunks: byte-identical output for identical input
    fig.savefig(dst, dpi=110, format="png", metadata={"Software": None})


if __name__ == "__main__":
    args = sys.argv[1:]
    cap = ""
    if "--caption-file" in args:
        i = args.index("--caption-file")
        if i + 1 >= len(args):
            sys.exit(__doc__)
        with open(args[i + 1]) as fh:
            cap = fh.read().strip()
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    main(args[0], args[1], cap)
