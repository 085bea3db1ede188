"""The paper's figures as PNG files, from run folders.

Per run (written into `<run>/figures/` unless told otherwise):
  sparsity.png        per-layer sparsity over iterations (paper Fig. 5)
  inner_grad.png      mean |inner-loop gradient| of the last feature layer (paper Fig. 2)
  mask_<param>.png    the first layer's binary mask, one square image per unit (Fig. 4)
Across runs (written into the folder given to `mtdsl report --figures`):
  inner_grad.png                  one line per table row, mean ± std over seeds (Fig. 2)
  <metric>_vs_<field>_<split>[_<other>=<value>...].png
                                  test metric against a numeric --by field, one line per
                                  experiment, mean ± std over seeds; one file per value
                                  of the other --by fields (Fig. 3's panels)

Figures are drawn on matplotlib's Agg canvas without pyplot (no global state, no display)
at fixed pixel sizes, and written atomically like every other file of a run.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from mtdsl.report.aggregate import Row, Table
from mtdsl.report.formats import scale
from mtdsl.report.rundir import FINAL, Run, atomic_write

DPI = 100
PLOT_INCHES = (6.4, 4.0)  # 640 x 400 pixels
MASK_INCHES = (8.0, 8.0)  # 800 x 800 pixels
MASK_UNITS = 64


@dataclass(frozen=True)
class Written:
    path: Path
    what: str


@dataclass(frozen=True)
class Note:
    """Why an expected figure was not drawn, or was drawn from less than usual."""

    where: str  # the run folder, or "" for a cross-run figure
    text: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text}" if self.where else self.text


@dataclass
class Figures:
    written: list[Written] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def extend(self, other: Figures) -> None:
        self.written += other.written
        self.notes += other.notes


def _save(fig: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _plot() -> tuple[Figure, object]:
    fig = Figure(figsize=PLOT_INCHES, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _title(run: Run) -> str:
    return f"{run.experiment} seed {run.seed}"


# -- one run -------------------------------------------------------------------------------


def sparsity_figure(run: Run, path: Path) -> Figures:
    """Per-layer sparsity over iterations; only the final sparsity (a bar per layer) when
    metrics.jsonl has no "layer_sparsity" history."""
    done = Figures()
    # An empty layer_sparsity is a run without masked tensors (MAML): nothing to draw.
    records = [r for r in run.training_records() if r.get("layer_sparsity")]
    final = run.result.get("sparsity") or {}
    if not records and not final:
        done.notes.append(Note(str(run.path), "no masked parameters, so no sparsity figure"))
        return done
    fig, ax = _plot()
    if records:
        names = list(records[-1]["layer_sparsity"])
        iterations = [r["iteration"] for r in records]
        for name in names:
            ax.plot(iterations, [100 * (r["layer_sparsity"].get(name) or 0.0) for r in records], label=name)
        overall = [r.get("sparsity") for r in records]
        if all(v is not None for v in overall):
            ax.plot(iterations, [100 * v for v in overall], "k--", label="all masked")
        ax.set_xlabel("meta-training iteration")
        ax.set_ylabel("pruned (%)")
        ax.legend(fontsize="small")
        ax.set_title(f"{_title(run)}: sparsity per layer", fontsize="medium")
    else:
        names = list(final)
        ax.barh(names, [100 * final[n] for n in names])
        ax.invert_yaxis()
        ax.set_xlabel("pruned (%)")
        ax.set_title(f"{_title(run)}: final sparsity only (no per-layer history)", fontsize="medium")
        done.notes.append(Note(str(run.path), "metrics.jsonl has no layer_sparsity; "
                                    "the sparsity figure shows the final sparsity only"))
    _save(fig, path)
    done.written.append(Written(path, "sparsity per layer" + ("" if records else " (final only)")))
    return done


def inner_grad_figure(run: Run, path: Path) -> Figures:
    done = Figures()
    points = [(r["iteration"], r["inner_grad"]) for r in run.training_records()
              if r.get("inner_grad") is not None]
    if not points:
        done.notes.append(Note(str(run.path), "no inner_grad in metrics.jsonl (the last feature layer "
                                    "does not adapt in the inner loop), so no gradient figure"))
        return done
    fig, ax = _plot()
    ax.plot(*zip(*points))
    _gradient_axes(ax, [v for _, v in points])
    ax.set_title(f"{_title(run)}: inner-loop gradient, last feature layer", fontsize="medium")
    _save(fig, path)
    done.written.append(Written(path, "mean |inner gradient| of the last feature layer"))
    return done


def _gradient_axes(ax, values: Sequence[float]) -> None:
    ax.set_xlabel("meta-training iteration")
    ax.set_ylabel("mean |task gradient|")
    # Log scale only when curves span orders of magnitude (MAML against Meta-ticket does);
    # over a narrow range it would only make the tick labels unreadable.
    if values and min(values) > 0 and max(values) / min(values) > 10:
        ax.set_yscale("log")


def first_weight(run: Run) -> str | None:
    """The first weight tensor (>= 2 dims) of the model, in parameter order."""
    return next((p["name"] for p in run.parameters() if len(p["shape"]) >= 2), None)


def mask_figure(run: Run, out_dir: Path, units: int = MASK_UNITS) -> Figures:
    """The first layer's mask, one image per output unit, for a linear layer on square
    single-channel images (a [units, side*side] weight, e.g. [256, 784] on Omniglot)."""
    done = Figures()
    name = first_weight(run)
    if name is None:
        done.notes.append(Note(str(run.path), "resolved.json lists no weight tensor, so no mask figure"))
        return done
    mask = run.final().masks.get(name)
    if mask is None:
        done.notes.append(Note(str(run.path), f"the first layer ({name}) is not masked, so no mask figure"))
        return done
    side = math.isqrt(mask.shape[1]) if mask.dim() == 2 else 0
    if mask.dim() != 2 or side * side != mask.shape[1]:
        done.notes.append(Note(str(run.path), f"{name} is {tuple(mask.shape)}, not a linear layer "
                                    "on square images, so no mask figure"))
        return done
    shown = min(units, mask.shape[0])
    cols = math.ceil(math.sqrt(shown))
    rows = math.ceil(shown / cols)
    fig = Figure(figsize=MASK_INCHES, dpi=DPI)
    axes = fig.subplots(rows, cols, squeeze=False)
    images = mask[:shown].reshape(shown, side, side).float().numpy()
    for i, ax in enumerate(axes.flat):
        if i < shown:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            # A frame, not axis off: an all-kept unit would otherwise vanish into the page.
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.set_axis_off()
    kept = 100 * float(mask.float().mean())
    fig.suptitle(f"{_title(run)}: {name} mask ({kept:.1f}% kept overall)\n"
                 f"units 1-{shown} of {mask.shape[0]}, each as {side}x{side} inputs; white = kept",
                 fontsize="medium")
    path = out_dir / f"mask_{name}.png"
    _save(fig, path)
    done.written.append(Written(path, f"{name} mask per unit ({side}x{side})"))
    return done


def run_figures(run: Run, out_dir: str | Path | None = None, units: int = MASK_UNITS) -> Figures:
    """Every per-run figure the run's files allow, into `out_dir` (default <run>/figures)."""
    folder = Path(out_dir) if out_dir is not None else run.path / "figures"
    done = Figures()
    done.extend(sparsity_figure(run, folder / "sparsity.png"))
    done.extend(inner_grad_figure(run, folder / "inner_grad.png"))
    if (run.path / FINAL).is_file():
        done.extend(mask_figure(run, folder, units))
    else:
        done.notes.append(Note(str(run.path), f"no {FINAL}, so no mask figure"))
    return done


# -- across runs ---------------------------------------------------------------------------


def _row_label(row: Row) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in row.group)
    return f"{row.experiment} ({extra})" if extra else row.experiment


def inner_grad_comparison(table: Table, path: Path) -> Figures:
    """Each row's inner-loop gradient curve, mean ± std over its seeds at the iterations
    every seed logged."""
    done = Figures()
    fig, ax = _plot()
    values = []
    for row in table.rows:
        curves = [{r["iteration"]: r["inner_grad"] for r in run.training_records()
                   if r.get("inner_grad") is not None} for run in row.runs]
        common = sorted(set.intersection(*(set(c) for c in curves))) if all(curves) else []
        if not common:
            continue
        per_seed = [[c[i] for c in curves] for i in common]
        means = [math.fsum(v) / len(v) for v in per_seed]
        line, = ax.plot(common, means, label=_row_label(row))
        if len(curves) > 1:
            stds = [math.sqrt(math.fsum((x - m) ** 2 for x in v) / (len(v) - 1)) for v, m in zip(per_seed, means)]
            ax.fill_between(common, [m - s for m, s in zip(means, stds)],
                            [m + s for m, s in zip(means, stds)], color=line.get_color(), alpha=0.2)
        values += means
    if not values:
        done.notes.append(Note("", "no run logged inner_grad, so no gradient comparison figure"))
        return done
    _gradient_axes(ax, values)
    ax.legend(fontsize="small")
    ax.set_title("inner-loop gradient, last feature layer (mean ± std over seeds)", fontsize="medium")
    _save(fig, path)
    done.written.append(Written(path, "inner-loop gradient per experiment"))
    return done


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sweep_axis(table: Table) -> str | None:
    """The --by field to put on the x axis: the numeric one with the most distinct values
    (model.width's 1/2/4/8 rather than task.ways' 5/20); None when no field is numeric."""
    best, most = None, 0
    for key in table.by:
        values = {dict(r.group)[key] for r in table.rows} - {None}
        if values and all(_numeric(v) for v in values) and len(values) > most:
            best, most = key, len(values)
    return best


def _panel_name(panel: tuple) -> str:
    return "".join(f"_{k}={v}" for k, v in panel)


def sweep_figures(table: Table, out_dir: Path) -> Figures:
    """The test metric against a numeric --by field (see _sweep_axis), one line per
    experiment, one figure per test split and per value of the other --by fields (the
    paper's Fig. 3 panels: 5-way 1-shot, 5-way 5-shot, ...)."""
    done = Figures()
    key = _sweep_axis(table)
    if key is None:
        if table.by:
            done.notes.append(Note("", f"--by {', '.join(table.by)}: no numeric field, "
                                       "so no sweep figure"))
        return done
    for column in table.columns:
        metric = table.metric(column)
        panels: dict[tuple, dict[str, list[tuple[float, float, float]]]] = {}
        for row in table.rows:
            cell, x = row.cells.get(column), dict(row.group)[key]
            if cell is None or cell.mean is None or x is None:
                continue
            panel = tuple((k, v) for k, v in row.group if k != key)
            panels.setdefault(panel, {}).setdefault(row.experiment, []).append(
                (x, cell.mean * scale(metric), (cell.std or 0.0) * scale(metric)))
        for panel, lines in panels.items():
            fig, ax = _plot()
            xs = set()
            for label, points in lines.items():
                points.sort()
                ax.errorbar(*zip(*points), marker="o", capsize=3, label=label)
                xs |= {p[0] for p in points}
            ax.set_xticks(sorted(xs))
            ax.set_xlabel(key)
            ax.set_ylabel(f"test {'accuracy (%)' if metric == 'accuracy' else metric}")
            where = ", ".join(f"{k}={v}" for k, v in panel)
            ax.set_title(f"{column}{' (' + where + ')' if where else ''}: mean ± std over seeds",
                         fontsize="medium")
            ax.legend(fontsize="small")
            path = out_dir / f"{metric}_vs_{key}_{column.replace('/', '-')}{_panel_name(panel)}.png"
            _save(fig, path)
            done.written.append(Written(path, f"{column} {metric} against {key}"
                                              + (f" at {where}" if where else "")))
    return done


def report_figures(table: Table, out_dir: str | Path, units: int = MASK_UNITS) -> Figures:
    """Every run's own figures (into its run folder) and the cross-run ones (into out_dir)."""
    folder = Path(out_dir)
    done = Figures()
    for row in table.rows:
        for run in row.runs:
            done.extend(run_figures(run, units=units))
    done.extend(inner_grad_comparison(table, folder / "inner_grad.png"))
    done.extend(sweep_figures(table, folder))
    return done
