"""Runs grouped into the rows of a results table: one row per experiment and configuration
(the resolved spec, seeds and data locations aside; and per value of each `--by` field), one
cell per test dataset/split, mean ± std over the row's seeds. Runs of one experiment name but
different configurations (0 and 1000 iterations) are separate rows, labelled by the fields
that differ, so a mean never mixes them; runs without resolved.json are flagged.

The paper's convention: each seed is meta-tested on its own tasks, giving one mean per
seed; the table reports the mean and the sample standard deviation (ddof=1) of those seed
means. A seed's own 95% CI over its test tasks is kept beside it (`SeedValue.ci95`).
Values stay in result.json's units: accuracy as a fraction 0..1, mse as is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mtdsl.errors import RunError
from mtdsl.language.diagnostics import did_you_mean
from mtdsl.report.rundir import MISSING, Run
from mtdsl.report.runs import leaf_paths

# Fields that say where files are, not what ran: runs differing only there are one config.
LOCATION_FIELDS = ("root",)
# Which seeds ran is what a row averages over, not part of its configuration.
SEED_FIELDS = ("seeds",)


@dataclass(frozen=True)
class SeedValue:
    seed: int | None
    mean: float | None
    ci95: float | None
    tasks: int | None
    run: str


@dataclass(frozen=True)
class Cell:
    metric: str
    mean: float | None  # None when a seed's mean is missing or not finite
    std: float | None  # None with fewer than two seeds
    seeds: tuple[SeedValue, ...]
    delta: float | None = None  # mean minus the baseline row's mean

    @property
    def n(self) -> int:
        return len(self.seeds)


@dataclass(frozen=True)
class Row:
    experiment: str  # the name, with the fields that tell it from same-named rows: "a (outer.iterations=0)"
    group: tuple[tuple[str, Any], ...]  # (--by field, value) pairs
    runs: tuple[Run, ...]
    cells: dict[str, Cell]
    names: tuple[str, ...] = ()  # the experiment name of its runs, without the label

    @property
    def seeds(self) -> list[int | None]:
        return [run.seed for run in self.runs]


@dataclass
class Table:
    columns: list[str]  # "<dataset>/<split>", in order of first appearance
    by: tuple[str, ...]
    baseline: str | None
    rows: list[Row]
    warnings: list[str] = field(default_factory=list)

    def metric(self, column: str) -> str:
        return next(row.cells[column].metric for row in self.rows if column in row.cells)


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1); std is None for one value, both None when any value
    is missing or not finite (a diverged seed must not vanish from the average)."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _group_value(run: Run, key: str) -> Any:
    value = run.field(key)
    if value is MISSING:
        return None
    return tuple(value) if isinstance(value, list) else value


def _check_by(runs: list[Run], by: Sequence[str]) -> None:
    for key in by:
        if all(run.field(key) is MISSING for run in runs):
            known = set()
            for run in runs:
                known |= set(leaf_paths((run.resolved or {}).get("spec", {})))
            hint = did_you_mean(key, known) if known else "these runs have no resolved.json"
            raise RunError(f"--by {key}: no run has this field in resolved.json"
                           + (f"; {hint}" if hint else ""))


def _sort_key(row_key: tuple) -> tuple:
    # None (field unset) sorts last; numbers numerically, anything else as text.
    return tuple((v is None, 0 if isinstance(v, (int, float)) else 1,
                  v if isinstance(v, (int, float)) else str(v)) for v in row_key)


def configuration(run: Run, fields: set[str] | None = None) -> tuple | None:
    """What ran, as comparable (field, value) pairs: the resolved spec without seeds and data
    locations, and only `fields` when given. None for a run without resolved.json."""
    if run.resolved is None:
        return None
    return tuple(sorted((k, repr(v)) for k, v in _settings(run).items() if fields is None or k in fields))


def _settings(run: Run) -> dict[str, Any]:
    return {k: v for k, v in leaf_paths((run.resolved or {}).get("spec", {})).items() if _is_setting(k)}


def _shared_fields(runs: Sequence[Run]) -> dict[str, set[str]]:
    """Per experiment name, the fields every one of its runs records. A field only newer runs
    have (a section a later version added, at its default) tells no configurations apart."""
    shared: dict[str, set[str]] = {}
    for run in runs:
        if run.resolved is not None:
            fields = set(_settings(run))
            shared[run.experiment] = shared.get(run.experiment, fields) & fields
    return shared


def _is_setting(field: str) -> bool:
    return field not in SEED_FIELDS and field.rsplit(".", 1)[-1] not in LOCATION_FIELDS


def aggregate(runs: Sequence[Run], by: Sequence[str] = (), baseline: str | None = None) -> Table:
    """The table of `runs`. `baseline` names an experiment: every cell gets its difference
    to the baseline's cell in the same `by` group and column."""
    runs = list(runs)
    if not runs:
        raise RunError("no finished runs found (no result.json under the given paths)")
    by = tuple(by)
    _check_by(runs, by)
    groups: dict[tuple, list[Run]] = {}
    shared = _shared_fields(runs)
    for run in runs:
        key = (run.experiment, configuration(run, shared.get(run.experiment)),
               *(_group_value(run, k) for k in by))
        groups.setdefault(key, []).append(run)
    columns: list[str] = []
    for run in runs:
        columns += [c for c in run.result["test"] if c not in columns]

    rows = []
    labels = _labels(groups, by)
    for key in sorted(groups, key=lambda k: (k[0], _sort_key(k[2:]), labels[k])):
        members = sorted(groups[key], key=lambda r: (r.seed is None, r.seed or 0, str(r.path)))
        rows.append(Row(labels[key], tuple(zip(by, key[2:])), tuple(members),
                        _cells(members, columns), (key[0],)))
    table = Table(columns, by, baseline, rows)
    if baseline is not None:
        _add_deltas(table)
    table.warnings = _warnings(table)
    return table


def _labels(groups: dict[tuple, list[Run]], by: tuple[str, ...]) -> dict[tuple, str]:
    """Each group's experiment name, plus the fields (other than --by ones) that tell it from
    the other groups of that name."""
    named: dict[str, list[tuple]] = {}
    for key in groups:
        named.setdefault(key[0], []).append(key)
    labels = {}
    for name, keys in named.items():
        configs = [dict(k[1] or ()) for k in keys]
        fields = sorted({f for c in configs for f in c if f not in by
                         and len({c.get(f) for c in configs}) > 1})
        for key, config in zip(keys, configs):
            shown = ", ".join(f"{f}={_plain(config.get(f))}" for f in fields)
            labels[key] = f"{name} ({shown})" if shown else name
    return labels


def _plain(text: str | None) -> str:
    """A value as repr() stored it, shown as a spec would write it."""
    if text is None:
        return "unset"
    return text.strip("'") if text.startswith("'") else text


def _cells(runs: list[Run], columns: list[str]) -> dict[str, Cell]:
    cells = {}
    for column in columns:
        entries = [(run, run.result["test"][column]) for run in runs if column in run.result["test"]]
        if not entries:
            continue
        seeds = tuple(SeedValue(run.seed, _number(e.get("mean")), _number(e.get("ci95")),
                                e.get("tasks"), str(run.path)) for run, e in entries)
        mean, std = mean_std([s.mean for s in seeds])
        cells[column] = Cell(entries[0][1].get("metric", "accuracy"), mean, std, seeds)
    return cells


def _add_deltas(table: Table) -> None:
    names = {name for row in table.rows for name in row.names}
    if table.baseline not in names:
        hint = did_you_mean(table.baseline, names)
        raise RunError(f"--baseline {table.baseline}: no such experiment among the runs"
                       + (f"; {hint}" if hint else ""))
    base: dict[tuple, Row] = {}
    for row in table.rows:
        if table.baseline in row.names:
            base.setdefault(row.group, row)
    for i, row in enumerate(table.rows):
        reference = base.get(row.group)
        cells = {}
        for column, cell in row.cells.items():
            other = reference.cells.get(column) if reference else None
            delta = (cell.mean - other.mean
                     if other is not None and cell.mean is not None and other.mean is not None else None)
            cells[column] = Cell(cell.metric, cell.mean, cell.std, cell.seeds, delta)
        table.rows[i] = Row(row.experiment, row.group, row.runs, cells, row.names)


def _label(row: Row) -> str:
    return row.experiment + "".join(f" [{k}={v}]" for k, v in row.group)


def _warnings(table: Table) -> list[str]:
    """What makes a row's mean ± std mislead: runs whose configuration is unknown in one row,
    a seed counted twice, a column some seeds lack."""
    out = []
    for row in table.rows:
        label = _label(row)
        unknown = [run for run in row.runs if run.resolved is None]
        if unknown:
            out.append(f"{label}: {len(unknown)} of its {len(row.runs)} runs have no resolved.json, "
                       "so they are grouped by experiment name and may mix configurations")
        repeated = sorted(s for s, n in Counter(row.seeds).items() if n > 1 and s is not None)
        if repeated:
            out.append(f"{label}: seed{'s' * (len(repeated) > 1)} {', '.join(map(str, repeated))} "
                       "ran more than once; each run counts in the mean and std")
        for column, cell in row.cells.items():
            if cell.n < len(row.runs):
                out.append(f"{label}: {column} has {cell.n} of the row's {len(row.runs)} runs")
    return out
