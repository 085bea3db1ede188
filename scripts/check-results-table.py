#!/usr/bin/env python3
"""Check that the numbers in docs/results.md are those of the run folders it cites.

    .venv/bin/python scripts/check-results-table.py [docs/results.md]

Every table row that links a run folder, `[NAME](results/runs/NAME)`, is checked against
the seedN/result.json files in that folder: the `test` column names the result entry
(e.g. `sinusoid/test`; `folder/test` also names an entry `folder(...)/test`); `iterations` and `n` must match every seed; `mean ± std` is the
mean and sample standard deviation (ddof=1) over seeds; `each seed ± 95% CI` lists every
seed's mean and ci95 in seed order; `wall per run` is the mean wall time. MSE prints with 3
decimals, accuracy in percent with 2. Exit 1 and one line per disagreement when they differ.

    .venv/bin/python scripts/check-results-table.py --row NAME TEST LABEL [PAPER]

prints the table row of docs/results/runs/NAME for the result entry TEST, computed by the
same code that checks it, for pasting into the page.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

LINK = re.compile(r"\[[^\]]*\]\((results/runs/[^)]+)\)")


def number(metric: str, value: float) -> str:
    return f"{value * 100:.2f}" if metric == "accuracy" else f"{value:.3f}"


def wall(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def expected(folder: Path, key: str) -> dict[str, str]:
    results = [json.loads(p.read_text()) for p in
               sorted(folder.glob("seed*/result.json"), key=lambda p: int(p.parent.name[4:]))]
    if not results:
        raise ValueError(f"no seed*/result.json under {folder}")
    entries = []
    for r in results:
        entries.append(r["test"][_entry(r, key, folder)])
    metric = entries[0]["metric"]
    means = [e["mean"] for e in entries]
    iterations = sorted({str(r["iterations"]) for r in results})
    spread = f" ± {number(metric, statistics.stdev(means))}" if len(means) > 1 else ""
    return {
        "iterations": "/".join(iterations),
        "n": str(len(results)),
        "mean ± std": number(metric, statistics.fmean(means)) + spread,
        "each seed ± 95% CI": "; ".join(f"{number(metric, e['mean'])} ± {number(metric, e['ci95'])}"
                                        for e in entries),
        "wall per run": wall(statistics.fmean(r["wall_seconds"] for r in results)),
    }


def _entry(result: dict, key: str, folder: Path) -> str:
    """The result entry `key` names: itself, or the one entry that reads as `key` once its
    dataset's arguments are left out (`mtdsl test --on` names an entry by its whole dataset,
    `folder(path=..., size=28)/test`, which the table cites as `folder/test`)."""
    if key in result["test"]:
        return key
    short = [k for k in result["test"] if re.sub(r"\(.*\)", "", k) == key]
    if len(short) != 1:
        raise ValueError(f"{folder}/seed{result['seed']}: no single test entry `{key}` "
                         f"(has {', '.join(result['test'])})")
    return short[0]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def check(doc: Path) -> list[str]:
    problems, header, rows = [], None, 0
    for number_, line in enumerate(doc.read_text().splitlines(), 1):
        if not line.lstrip().startswith("|"):
            header = None
            continue
        row = cells(line)
        if header is None:
            header = row
            continue
        link = LINK.search(line)
        if not link or len(row) != len(header):
            continue
        rows += 1
        fields = dict(zip(header, row))
        where = f"{doc}:{number_}"
        try:
            want = expected(doc.parent / link.group(1), fields.get("test", "").strip("`"))
        except (ValueError, OSError, KeyError, json.JSONDecodeError) as e:
            problems.append(f"{where}: {e}")
            continue
        for column, value in want.items():
            if column in fields and fields[column] != value:
                problems.append(f"{where}: `{column}` says {fields[column]!r}, the run folders give {value!r}")
    if rows == 0:
        problems.append(f"{doc}: no table row cites a run folder")
    return problems


def row(name: str, key: str, label: str, paper: str = "-") -> str:
    want = expected(Path(__file__).resolve().parent.parent / "docs/results/runs" / name, key)
    return (f"| {label} | `{key}` | {want['iterations']} | [{name}](results/runs/{name}) | {want['n']} | "
            f"{want['mean ± std']} | {want['each seed ± 95% CI']} | {want['wall per run']} | {paper} |")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--row":
        print(row(*sys.argv[2:]))
        return 0
    doc = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs/results.md"
    problems = check(doc)
    for p in problems:
        print(p)
    if not problems:
        print(f"{doc}: every cited run folder agrees with the table")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
