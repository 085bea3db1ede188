"""The summary printed when a run ends: test results, per-layer sparsity, where files went."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from rich.console import Console
from rich.table import Table
from rich.text import Text


class SparsityRow(NamedTuple):
    """One masked parameter tensor: `kept` of its `total` weights survive the mask."""

    name: str
    shape: tuple[int, ...]
    kept: int
    total: int

    @property
    def sparsity(self) -> float:
        """Fraction pruned, 0..1 (0 for an empty tensor)."""
        return 1.0 - self.kept / self.total if self.total else 0.0


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def format_metric(metric: str, mean: float | None, ci95: float | None) -> str:
    """'91.20% ± 0.80' for accuracy (a 0..1 fraction), '0.123 ± 0.004' for mse.

    A missing or non-finite mean (a diverged run; null in JSON) reads 'n/a'.
    """
    if not _is_number(mean):
        return "n/a"
    if metric == "accuracy":
        text = f"{mean * 100:.2f}%"
        spread = f"{ci95 * 100:.2f}" if _is_number(ci95) else None
    elif metric == "mse":
        text = f"{mean:.3f}"
        spread = f"{ci95:.3f}" if _is_number(ci95) else None
    else:
        raise ValueError(f"unknown metric {metric!r}; expected 'accuracy' or 'mse'")
    return f"{text} ± {spread}" if spread is not None else text


def format_duration(seconds: float) -> str:
    """'42.0s', '4m 05s', '1h 02m 03s'."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _test_table(test: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="Test results", title_justify="left")
    table.add_column("Dataset / split")
    table.add_column("Metric")
    table.add_column("Mean ± 95% CI", justify="right", no_wrap=True)
    table.add_column("Tasks", justify="right")
    for key, entry in test.items():
        metric = entry["metric"]
        table.add_row(
            Text(key),  # Text, not str: names are data, never rich markup
            metric,
            format_metric(metric, entry.get("mean"), entry.get("ci95")),
            str(entry.get("tasks", "")),
        )
    return table


def _sparsity_table(rows: list[SparsityRow]) -> Table:
    table = Table(title="Mask sparsity", title_justify="left")
    table.add_column("Parameter")
    table.add_column("Shape", no_wrap=True)
    table.add_column("Kept / total", justify="right", no_wrap=True)
    table.add_column("Sparsity", justify="right")
    for row in rows:
        table.add_row(
            Text(row.name),
            "×".join(str(s) for s in row.shape),
            f"{row.kept:,} / {row.total:,}",
            f"{row.sparsity * 100:.2f}%",
        )
    if len(rows) > 1:
        kept, total = sum(r.kept for r in rows), sum(r.total for r in rows)
        overall = SparsityRow("all masked", (), kept, total)
        table.add_section()
        table.add_row(overall.name, "", f"{kept:,} / {total:,}", f"{overall.sparsity * 100:.2f}%")
    return table


def print_summary(
    console: Console,
    result: Mapping[str, Any],
    sparsity_rows: Iterable[SparsityRow | tuple[str, tuple[int, ...], int, int]] = (),
    run_dir: str | Path | None = None,
) -> None:
    """Print the end-of-run summary of a result.json-shaped dict.

    `sparsity_rows` are (name, shape, kept, total) per masked tensor; none prints no table
    (a MAML run has no masks).
    """
    rows = [SparsityRow(*row) for row in sparsity_rows]
    console.print()
    if result.get("test"):
        console.print(_test_table(result["test"]))
    else:
        console.print("No test results.")
    if rows:
        console.print(_sparsity_table(rows))
    facts = [
        f"experiment {result.get('experiment', '?')}",
        f"seed {result.get('seed', '?')}",
        f"{result.get('iterations', '?')} iterations",
    ]
    console.print(" · ".join(facts), markup=False, highlight=False)
    if run_dir is not None:
        console.print(f"Run folder: {run_dir}", markup=False, highlight=False, soft_wrap=True)
    if _is_number(result.get("wall_seconds")):
        console.print(f"Wall time: {format_duration(result['wall_seconds'])}", highlight=False)
