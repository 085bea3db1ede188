#!/usr/bin/env python3
"""Draw the width curve of docs/results.md (the paper's Fig. 3): Omniglot 5-shot meta-test
accuracy against the MLP's width factor, one panel per number of ways, one line per method,
mean ± std over seeds, from the run folders under docs/results/runs named
omniglot_{WAYS}w5s_w{WIDTH}_{METHOD}_it{ITERATIONS}.

    .venv/bin/python scripts/plot-widths.py ITERATIONS [OUT]   (OUT: docs/figures/omniglot_widths.png)

Only runs at the given number of iterations are drawn, so every point had the same budget.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"omniglot_(\d+)w5s_w(\d+)_(maml|ticket|ticket_iterand)_it(\d+)$")
LABEL = {"maml": "MAML", "ticket": "Meta-ticket", "ticket_iterand": "Meta-ticket + IteRand"}


def points(iterations: int) -> dict[int, dict[str, list[tuple[int, list[float]]]]]:
    """ways -> method -> [(width, every seed's accuracy)]"""
    found: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for folder in sorted((ROOT / "docs/results/runs").iterdir()):
        m = NAME.match(folder.name)
        if not m or int(m[4]) != iterations:
            continue
        accs = [json.loads(p.read_text())["test"]["omniglot/test"]["mean"] * 100
                for p in folder.glob("seed*/result.json")]
        if accs:
            found[int(m[1])][m[3]].append((int(m[2]), accs))
    return found


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    iterations = int(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else ROOT / "docs/figures/omniglot_widths.png"
    found = points(iterations)
    if not found:
        print(f"no finished runs at {iterations} iterations", file=sys.stderr)
        return 1
    fig, axes = plt.subplots(1, len(found), figsize=(4.5 * len(found), 3.6), squeeze=False)
    for ax, ways in zip(axes[0], sorted(found)):
        for method in LABEL:
            series = sorted(found[ways].get(method, []))
            if not series:
                continue
            widths = [w for w, _ in series]
            means = [statistics.fmean(a) for _, a in series]
            stds = [statistics.stdev(a) if len(a) > 1 else 0.0 for _, a in series]
            seeds = "/".join(str(len(a)) for _, a in series)
            ax.errorbar(widths, means, yerr=stds, marker="o", capsize=3,
                        label=f"{LABEL[method]} (seeds {seeds})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({w for s in found[ways].values() for w, _ in s}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("width factor")
        ax.set_ylabel("meta-test accuracy (%)")
        ax.set_title(f"Omniglot {ways}-way 5-shot, {iterations} iterations")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
