"""`mtdsl report | figures | export`: results tables, the paper's figures and the found
network, from run folders. Registered on the shared app (cli.app) when mtdsl.cli.main imports this."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import MtdslError
from .app import _fail, app, err, out


def _warn(lines) -> None:
    for line in lines:
        err.print(f"warning: {line}", style="yellow", markup=False, highlight=False)


def _note_lines(notes) -> list[str]:
    """One line per distinct note: the same reason in many runs is said once, with a count."""
    where: dict[str, list[str]] = {}
    for note in notes:
        where.setdefault(note.text, []).append(note.where)
    lines = []
    for text, places in where.items():
        places = [p for p in places if p]
        if len(places) > 1:
            lines.append(f"{len(places)} runs ({places[0]} ...): {text}")
        else:
            lines.append(f"{places[0]}: {text}" if places else text)
    return lines


def _list_figures(console, figures) -> None:
    for written in figures.written:
        console.print(f"figure: {written.path}  ({written.what})", markup=False, highlight=False,
                      soft_wrap=True)
    for line in _note_lines(figures.notes):
        console.print(f"note: {line}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def report(paths: List[str] = typer.Argument(..., help="run folders, folders of runs, or result.json files"),
           format: str = typer.Option("table", "--format", help="table, md, csv or json"),
           by: List[str] = typer.Option([], "--by", help="also group rows by a resolved spec field, e.g. model.width"),
           baseline: Optional[str] = typer.Option(None, "--baseline", help="add each row's difference to this experiment"),
           per_seed: bool = typer.Option(False, "--per-seed", help="also show each seed's mean ± 95% CI over tasks"),
           figures: Optional[str] = typer.Option(None, "--figures", help="draw the figures: per run into its folder, "
                                                 "across runs into this folder"),
           units: int = typer.Option(64, "--units", help="mask figure: how many first-layer units to draw")) -> None:
    """Tabulate finished runs: one row per experiment, mean ± std over seeds per test split."""
    from ..report.aggregate import aggregate
    from ..report.formats import FORMATS, print_table, to_csv, to_json, to_markdown
    from ..report.runs import find_runs

    if format not in FORMATS:
        raise typer.BadParameter(f"{format!r}; expected one of {', '.join(FORMATS)}", param_hint="--format")
    try:
        found = find_runs(paths)
        table = aggregate(found.runs, by=by, baseline=baseline)
        drawn = None
        if figures is not None:
            from ..report.figures import report_figures

            drawn = report_figures(table, figures, units=units)
    except MtdslError as e:
        _fail(e)
    if found.unfinished:
        _warn([f"skipped {len(found.unfinished)} unfinished run folder(s) without result.json: "
               + ", ".join(map(str, found.unfinished[:3])) + (" ..." if len(found.unfinished) > 3 else "")])
    _warn(table.warnings)
    if format == "json":
        listed = [{"path": str(w.path), "what": w.what} for w in drawn.written] if drawn else []
        document = to_json(table, listed)
        if drawn:
            document["notes"] = [{"run": n.where or None, "note": n.text} for n in drawn.notes]
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return
    if format == "table":
        print_table(out, table, per_seed)
    else:
        print(to_markdown(table, per_seed) if format == "md" else to_csv(table, per_seed), end="")
    if drawn:
        # md and csv go to stdout to be pasted or piped; the file list must not end up there.
        _list_figures(out if format == "table" else err, drawn)


@app.command()
def figures(run_dir: str = typer.Argument(..., help="a finished run folder"),
            out_dir: Optional[str] = typer.Option(None, "--out", help="folder for the PNGs (default RUN_DIR/figures)"),
            units: int = typer.Option(64, "--units", help="mask figure: how many first-layer units to draw")) -> None:
    """Draw one run's figures: sparsity per layer, inner-loop gradient, first-layer mask."""
    from ..report.figures import run_figures
    from ..report.rundir import open_run

    try:
        drawn = run_figures(open_run(run_dir), out_dir, units=units)
    except MtdslError as e:
        _fail(e)
    _list_figures(out, drawn)


@app.command()
def export(run_dir: str = typer.Argument(..., help="a finished run folder"),
           out_file: Optional[str] = typer.Option(None, "--out", help="ticket.safetensors or ticket.pt "
                                                  "(default RUN_DIR/ticket.safetensors)")) -> None:
    """Write the found network (pruned weights and masks, keyed by parameter name) for plain PyTorch."""
    from ..report.export import export_ticket

    try:
        done = export_ticket(run_dir, out_file)
    except MtdslError as e:
        _fail(e)
    out.print(f"wrote {done.path}: {done.values} parameter tensors, {done.masks} masks",
              markup=False, highlight=False, soft_wrap=True)
    for note in done.notes:
        out.print(note, markup=False, highlight=False, soft_wrap=True)
    reader = "safetensors.torch.load_file" if Path(done.path).suffix == ".safetensors" else "torch.load"
    out.print(f"load: state = {reader}(path); module.load_state_dict("
              "{k: v for k, v in state.items() if not k.startswith('masks/')})",
              markup=False, highlight=False, soft_wrap=True)
