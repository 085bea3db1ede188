"""A results Table as text: a terminal table, Markdown, CSV or JSON.

Display formats (table, md) show accuracy in percent with two decimals and mse with three;
machine formats (csv, json) keep result.json's units (accuracy as a fraction) and full
precision. Both say the same thing: rounding the json numbers gives the md numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from mtdsl.report.aggregate import Cell, Row, SeedValue, Table

FORMATS = ("table", "md", "csv", "json")
SEED_MARK = "↳ seed"


def scale(metric: str) -> float:
    return 100.0 if metric == "accuracy" else 1.0


def _num(value: float, metric: str) -> str:
    return f"{value * scale(metric):.2f}" if metric == "accuracy" else f"{value:.3f}"


def cell_text(cell: Cell | None) -> str:
    """'91.23 ± 0.45' (accuracy %, std over seeds), '91.23' for one seed, 'n/a', or ''."""
    if cell is None:
        return ""
    if cell.mean is None:
        return "n/a"
    text = _num(cell.mean, cell.metric)
    return f"{text} ± {_num(cell.std, cell.metric)}" if cell.std is not None else text


def seed_text(seed: SeedValue, metric: str) -> str:
    """One seed: mean ± 95% CI over its test tasks."""
    if seed.mean is None:
        return "n/a"
    text = _num(seed.mean, metric)
    return f"{text} ± {_num(seed.ci95, metric)}" if seed.ci95 is not None else text


def delta_text(cell: Cell | None) -> str:
    if cell is None or cell.delta is None:
        return ""
    return f"{cell.delta * scale(cell.metric):+.2f}" if cell.metric == "accuracy" else f"{cell.delta:+.3f}"


def column_title(column: str, metric: str) -> str:
    return f"{column} ({'acc. %' if metric == 'accuracy' else metric})"


def _value_text(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def headers(table: Table) -> list[str]:
    out = ["experiment", *table.by, "seeds"]
    for column in table.columns:
        out.append(column_title(column, table.metric(column)))
        if table.baseline:
            out.append(f"Δ {column}")
    return out


def _row_cells(table: Table, row: Row) -> list[str]:
    out = [row.experiment, *(_value_text(v) for _, v in row.group), str(len(row.runs))]
    for column in table.columns:
        cell = row.cells.get(column)
        out.append(cell_text(cell))
        if table.baseline:
            out.append("" if row.experiment == table.baseline else delta_text(cell))
    return out


def _seed_rows(table: Table, row: Row) -> list[list[str]]:
    lines = []
    for i, run in enumerate(row.runs):
        line = [f"{SEED_MARK} {run.seed}", *([""] * len(table.by)), ""]
        for column in table.columns:
            cell = row.cells.get(column)
            value = next((s for s in cell.seeds if s.run == str(run.path)), None) if cell else None
            line.append(seed_text(value, cell.metric) if value else "")
            if table.baseline:
                line.append("")
        lines.append(line)
    return lines


def body(table: Table, per_seed: bool = False) -> list[list[str]]:
    lines = []
    for row in table.rows:
        lines.append(_row_cells(table, row))
        if per_seed:
            lines += _seed_rows(table, row)
    return lines


def caption(table: Table, per_seed: bool = False) -> str:
    parts = ["mean ± std over seeds"]
    if table.baseline:
        points = any(table.metric(c) == "accuracy" for c in table.columns)
        parts.append(f"Δ: difference to {table.baseline}" + (" (accuracy in points)" if points else ""))
    if per_seed:
        parts.append(f"{SEED_MARK} rows: that seed's mean ± 95% CI over its test tasks")
    return "; ".join(parts) + "."


def to_markdown(table: Table, per_seed: bool = False) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    head = headers(table)
    align = ["---"] * (len(table.by) + 1) + ["---:"] * (len(head) - len(table.by) - 1)
    lines = [line(head), "|" + "|".join(align) + "|"]
    lines += [line(cells) for cells in body(table, per_seed)]
    return "\n".join(lines) + "\n\n" + caption(table, per_seed) + "\n"


def print_table(console: Console, table: Table, per_seed: bool = False) -> None:
    rich = RichTable(caption=caption(table, per_seed), caption_justify="left")
    head = headers(table)
    lines = body(table, per_seed)
    for i, title in enumerate(head):
        # Names are never cut: the experiment column is as wide as its longest name.
        width = max([len(title)] + [len(cells[i]) for cells in lines]) if i == 0 else None
        rich.add_column(title, justify="left" if i <= len(table.by) else "right",
                        no_wrap=i == 0 or i > len(table.by), min_width=width)
    for cells in lines:
        rich.add_row(*(Text(c) for c in cells))  # Text: names are data, never rich markup
    console.print(rich)


def to_csv(table: Table, per_seed: bool = False) -> str:
    """One line per row and column (tidy). Per-seed lines (with --per-seed) fill `seed`,
    `ci95` and `tasks`; the row's lines fill `seeds`, `std` and `delta`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["experiment", *table.by, "split", "metric", "seeds", "seed", "mean", "std",
                     "ci95", "tasks", "delta"])
    for row in table.rows:
        group = [_csv_value(v) for _, v in row.group]
        for column in table.columns:
            cell = row.cells.get(column)
            if cell is None:
                continue
            writer.writerow([row.experiment, *group, column, cell.metric, cell.n, "",
                             _csv_value(cell.mean), _csv_value(cell.std), "", "", _csv_value(cell.delta)])
            if per_seed:
                for s in cell.seeds:
                    writer.writerow([row.experiment, *group, column, cell.metric, "", s.seed,
                                     _csv_value(s.mean), "", _csv_value(s.ci95), s.tasks, ""])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    return _value_text(value) if isinstance(value, tuple) else value


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def to_json(table: Table, figures: Sequence[dict] = ()) -> dict:
    """The whole table: every row's cells with their per-seed values, warnings, figures."""
    return {
        "by": list(table.by),
        "baseline": table.baseline,
        "columns": table.columns,
        "rows": [{
            "experiment": row.experiment,
            "group": {k: _json_value(v) for k, v in row.group},
            "seeds": row.seeds,
            "runs": [str(run.path) for run in row.runs],
            "cells": {column: {
                "metric": cell.metric, "mean": cell.mean, "std": cell.std, "n": cell.n,
                "delta": cell.delta,
                "per_seed": [{"seed": s.seed, "mean": s.mean, "ci95": s.ci95, "tasks": s.tasks,
                              "run": s.run} for s in cell.seeds],
            } for column, cell in row.cells.items()},
        } for row in table.rows],
        "warnings": list(table.warnings),
        "figures": list(figures),
    }
