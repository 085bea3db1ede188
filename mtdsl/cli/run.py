"""`mtdsl run`: which runs a reference means (experiments, seeds, sweep points), where each
one's folder is, which are already finished — then the meta-training recipe for each."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..errors import RunError, SpecError
from .select import Unit, compile_units


def plan_folders(units: list[Unit], out_dir: str | None, seed: int | None,
                 created: list[Path] | None = None) -> list[tuple[Unit, int, Path]]:
    """(unit, seed, folder) for every run, in order; folders made here go into `created`."""
    from ..report.rundir import RunDir

    groups = list(dict.fromkeys(u.group for u in units))
    if out_dir and len(groups) > 1:
        raise RunError(f"this file defines {len(groups)} experiments or sweeps ({', '.join(groups)}); "
                       "pick one with FILE::NAME to use --out")
    bases: dict[str, Path] = {}
    runs = []
    for u in units:
        seeds = [seed] if seed is not None else u.compiled.experiment.seeds
        if u.group not in bases:
            if out_dir:
                bases[u.group] = Path(out_dir)
            else:
                parent_existed = (Path("runs") / u.group).exists()
                bases[u.group] = RunDir.create(u.group).path
                if created is not None:
                    created += [bases[u.group]] + ([] if parent_existed else [bases[u.group].parent])
        folder = bases[u.group] / u.label if u.label else bases[u.group]
        for s in seeds:
            runs.append((u, s, folder / f"seed{s}" if len(seeds) > 1 else folder))
    return runs


def finished(folder: Path) -> dict | None:
    path = folder / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def run_ref(ref: str | None, overrides: list[str], *, out_dir: str | None, seed: int | None,
            device: str | None, console: Console, resume: str | None = None) -> list[Path]:
    if resume is not None:
        return [_resume(resume, device, console)]
    units = compile_units(ref, overrides)
    created: list[Path] = []
    planned = plan_folders(units, out_dir, seed, created)
    try:
        return _run_all(planned, overrides, device, console)
    finally:  # a run that failed before writing anything leaves no empty folders behind
        for folder in [f for _, _, f in reversed(planned)] + created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _run_all(planned, overrides, device, console) -> list[Path]:
    from ..recipe.meta_train import RunRequest, operative, pick_device, run, source_of

    results = []
    for unit, s, folder in planned:
        c = unit.compiled
        done = finished(folder)
        if done is not None and done.get("spec_sha256") == operative(c)[1]:
            console.print(f"{folder}: already finished, skipped")
        else:
            dev = pick_device(device or c.experiment.device.type)
            run(RunRequest(c, s, folder, overrides, dev, source_of(c)), console)
            done = finished(folder)
        results.append((unit, s, folder, done))
    if len(results) > 1:
        _print_overview(console, results)
    return [folder for _, _, folder, _ in results]


def _resume(folder: str, device: str | None, console: Console) -> Path:
    """Continue a run from its folder alone: its operative spec is self-contained."""
    from ..recipe.meta_train import RunRequest, pick_device, run
    from ..validate.loader import load
    from ..compile.compiler import compile_experiment

    path = Path(folder)
    try:
        resolved = json.loads((path / "resolved.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"{path} is not a run folder (no readable resolved.json: {e})") from None
    ws = load(path / "spec.mt")
    if ws.diagnostics:
        raise SpecError(ws.diagnostics)
    c = compile_experiment(ws, resolved["experiment"])
    dev = pick_device(device or c.experiment.device.type)
    # spec.mt already holds the overrides: it compiles to the same operative text and sha256.
    return run(RunRequest(c, resolved["seed"], path, resolved.get("overrides", []), dev, resolved["source"]),
               console)


def _print_overview(console: Console, results) -> None:
    table = Table(title="Runs")
    for col in ("run", "seed", "test", "folder"):
        table.add_column(col)
    for unit, s, folder, done in results:
        cells = []
        for split, entry in (done or {}).get("test", {}).items():
            value = f"{entry['mean'] * 100:.2f}%" if entry["metric"] == "accuracy" else f"{entry['mean']:.3f}"
            cells.append(f"{split} {value}")
        table.add_row(unit.label or unit.group, str(s), ", ".join(cells) or "-", str(folder))
    console.print(table)
