"""Sweeps: `sweep NAME over EXPERIMENT [grid|zip] { path: [values], ... }` as a list of points.

Each point is the base experiment with one value per axis assigned, in declared order:
`grid` takes every combination (the last axis varies fastest), `zip` takes the i-th value
of every axis. `seeds: [1, 2, 3]` is an axis like any other; each point runs one seed.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from ..language import ast, printer
from ..language.diagnostics import Diagnostic, did_you_mean
from ..language.limits import MAX_SWEEP_POINTS
from .loader import Workspace


@dataclass
class Point:
    label: str  # e.g. "model.width=2,seeds=1": unique within the sweep, a folder name
    assigns: list[ast.Assign]


def expand(ws: Workspace, name: str) -> tuple[list[Point], list[Diagnostic]]:
    sweep = ws.sweeps[name]
    diags: list[Diagnostic] = []
    if sweep.base not in ws.experiments:
        diags.append(Diagnostic(f"sweep `{name}` is over unknown experiment `{sweep.base}`",
                                sweep.base_span, did_you_mean(sweep.base, ws.experiments)))
    axes: list[tuple[ast.Path, list[ast.Value]]] = []
    first: dict[str, ast.Path] = {}
    for e in sweep.entries:
        if isinstance(e, ast.Section):
            diags.append(Diagnostic("a sweep axis is `path: [values]`; write `section.field: [...]`",
                                    e.name_span))
            continue
        if len(e.targets) != 1 or not isinstance(e.targets[0], ast.Path):
            diags.append(Diagnostic("a sweep axis names one field path", e.span))
            continue
        if not isinstance(e.value, ast.List) or not e.value.items:
            diags.append(Diagnostic(f"sweep axis `{e.targets[0]}` needs a non-empty list of values",
                                    e.value.span, f"write `{e.targets[0]}: [value1, value2]`"))
            continue
        path = e.targets[0]
        if str(path) in first:  # the first would be silently ignored, yet stay in the labels
            diags.append(Diagnostic(f"sweep axis `{path}` is given twice", path.span,
                                    "give all its values in one list",
                                    notes=[("first given here", first[str(path)].span)]))
            continue
        first[str(path)] = path
        axes.append((path, e.value.items))
    if sweep.mode == "zip" and len({len(values) for _, values in axes}) > 1:
        sizes = ", ".join(f"{path} has {len(values)}" for path, values in axes)
        diags.append(Diagnostic(f"a zip sweep needs axes of one length: {sizes}", sweep.name_span,
                                "give every axis as many values, or use a grid"))
    sizes = [len(values) for _, values in axes]
    points = (min(sizes, default=0) if sweep.mode == "zip" else math.prod(sizes))
    if points > MAX_SWEEP_POINTS:
        diags.append(Diagnostic(f"sweep `{name}` has {points:,} points; a sweep has at most {MAX_SWEEP_POINTS}",
                                sweep.name_span, "split it into several sweeps"))
    if diags:
        return [], diags
    combos = (zip(*(values for _, values in axes)) if sweep.mode == "zip"
              else itertools.product(*(values for _, values in axes)))
    points = []
    for combo in combos:
        assigns, label = [], []
        for (path, _), value in zip(axes, combo):
            if path.parts == ["seeds"] and path.index is None:  # one seed per point
                value = ast.List(value.span, [value])
                label.append(f"seed={printer.value(value.items[0])}")
            else:
                label.append(f"{path}={printer.value(value)}")
            assigns.append(ast.Assign(value.span, [path], value))
        points.append(Point(_folder_name(",".join(label)), assigns))
    return points, []


def _folder_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", label)
