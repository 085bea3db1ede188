"""`mtdsl run`: which runs a reference means (experiments, seeds, sweep points), where each
one's folder is, which are already finished — then the meta-training recipe for each."""

from __future__ import annotations

import io
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
                made = [p for p in (Path("runs") / u.group, Path("runs")) if not p.exists()]
                bases[u.group] = RunDir.create(u.group).path
                if created is not None:  # innermost first, so each is empty when it is removed
                    created += [bases[u.group]] + made
        folder = bases[u.group] / u.label if u.label else bases[u.group]
        for s in seeds:
            runs.append((u, s, folder / f"seed{s}" if len(seeds) > 1 else folder))
    return runs


def print_warnings(units: list[Unit]) -> None:
    """What `mtdsl check` warns about, said before anything runs: a `--set outer.iterations`
    that cuts the run below its warmup is news worth reading before the hours it takes."""
    said: list[str] = []
    for unit in units:
        said += [text for d in unit.compiled.warnings if (text := d.render()) not in said]
    err = Console(stderr=True, highlight=False)
    for text in said:
        err.print(text, markup=False, soft_wrap=True, style="yellow")


def finished(folder: Path) -> dict | None:
    """The folder's result.json document when it holds a finished run."""
    from ..report.rundir import RESULT, open_run

    return open_run(folder).result if (folder / RESULT).is_file() else None


def run_ref(ref: str | None, overrides: list[str], **options) -> list[Path]:
    """Every run `ref` means (or the one `resume` names), with SIGINT and SIGTERM turned into
    a stop with a checkpoint (recipe/signals.py); options as `_run_ref`'s."""
    from ..recipe import signals
    from ..recipe.communicator import this_process

    with signals.handled():
        try:
            folders = _run_ref(ref, overrides, **options)
        except signals.Interrupted as stop:  # a second signal between runs (a run handles its own)
            raise signals.Stopped(stop.signum, f"stopped by {signals.name(stop.signum)}") from None
    this_process().finish()
    return folders


def _run_ref(ref: str | None, overrides: list[str], *, out_dir: str | None, seed: int | None,
             device: str | None, console: Console, resume: str | None = None, jobs: int = 1,
             log: tuple[str, ...] = (), profile: bool = False, cluster: str | None = None,
             retries: int = 1) -> list[Path]:
    """`log`: experiment trackers to log to besides those the specs ask for (--log).
    Under torchrun every process runs this; the main one plans the folders and speaks."""
    from ..recipe.communicator import this_process
    from ..report.trackers import check_installed, wanted

    comm = this_process()
    if not comm.is_main:
        console = Console(file=io.StringIO())
    if comm.world_size > 1 and (jobs > 1 or cluster):
        raise RunError("--jobs and --cluster run several experiments side by side; under torchrun the "
                       "processes share one run instead: drop them")
    if resume is not None:
        return [_resume(resume, device, console, log)]
    units = compile_units(ref, overrides)
    print_warnings(units)
    check_installed(tuple({t for u in units for t in wanted(u.compiled.experiment, log)}))
    created: list[Path] = []
    # Folder names hold the time: one process picks them, so all processes use the same.
    planned = [(units[i], s, f) for i, s, f in comm.on_main(
        lambda: [(units.index(u), s, f) for u, s, f in plan_folders(units, out_dir, seed, created)])]
    try:
        return _run_all(ref, planned, units, overrides, device, console, jobs, log, profile, cluster, retries)
    finally:  # a run that failed before writing anything leaves no empty folders behind
        for folder in [f for _, _, f in reversed(planned)] + created if comm.is_main else []:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _run_all(ref, planned, units, overrides, device, console, jobs, log, profile=False, cluster=None,
             retries=1) -> list[Path]:
    from ..recipe.meta_train import run_hashes

    todo = []
    for unit, s, folder in planned:
        done = finished(folder)
        if done is not None and done.get("spec_sha256") in run_hashes(unit.compiled, s):
            console.print(f"{folder}: already finished, skipped")
        else:
            todo.append((units.index(unit), s, folder))
    if profile and jobs > 1 and len(todo) > 1:
        raise RunError("--profile times one run at a time; drop --jobs")
    errors: dict[str, str | None] = {}
    if todo and (cluster or (jobs > 1 and len(todo) > 1)):
        from .executors import Job, executor_for, run_jobs

        here = Path.cwd()
        work = [Job(_absolute_ref(ref), tuple(overrides), device, index, s, str(here / folder), log)
                for index, s, folder in todo]
        errors = run_jobs(executor_for(cluster, jobs, device), work, console, retries)
    else:
        for index, s, folder in todo:
            _run_one(units[index], s, folder, overrides, device, console, log, profile)
    results = [(unit, s, folder, finished(folder), errors.get(str(Path.cwd() / folder)))
               for unit, s, folder in planned]
    if len(results) > 1:
        _print_overview(console, results)
    failed = [f"{folder}: {error}" for _, _, folder, _, error in results if error]
    if failed:
        raise RunError(f"{len(failed)} of {len(todo)} runs failed (the others finished):\n" + "\n".join(failed))
    return [folder for _, _, folder, _, _ in results]


def _absolute_ref(ref: str) -> str:
    path, sep, name = ref.partition("::")
    return str(Path(path).resolve()) + sep + name


def _run_one(unit: Unit, seed: int, folder: Path, overrides, device, console, log=(),
             profile: bool = False) -> None:
    from ..recipe.communicator import this_process
    from ..recipe.meta_train import MetaTraining, RunRequest, pick_device, source_of
    from ..recipe.profiler import RunProfile
    from ..report.trackers import for_run

    c = unit.compiled
    comm = this_process()
    trackers = for_run(c.experiment, log, unit.group, unit.label, seed, folder) if comm.is_main else []
    MetaTraining(RunRequest(c, seed, folder, overrides, pick_device(device or c.experiment.device.type),
                            source_of(c)), console, comm=comm, sinks=trackers,
                 profile=RunProfile() if profile else None).run()


def _resume(folder: str, device: str | None, console: Console, log=()) -> Path:
    """Continue a run from its folder alone: its operative spec is self-contained."""
    from ..compile.compiler import compile_experiment
    from ..recipe.communicator import this_process
    from ..recipe.meta_train import MetaTraining, RunRequest, pick_device
    from ..report.rundir import open_run
    from ..report.trackers import check_installed, for_resumed, wanted
    from ..validate.loader import load

    run = open_run(folder, finished=False)
    ws = load(run.spec_file)
    if ws.diagnostics:
        raise SpecError(ws.diagnostics)
    c = compile_experiment(ws, run.resolved["experiment"])
    dev = pick_device(device or c.experiment.device.type)
    check_installed(wanted(c.experiment, log))
    comm = this_process()
    trackers = for_resumed(c.experiment, log, run.resolved["experiment"], run.seed, run.path) if comm.is_main else []
    # spec.mt already holds the overrides: it compiles to the same operative text and sha256.
    return MetaTraining(RunRequest(c, run.seed, run.path, run.resolved.get("overrides", []), dev,
                                   run.resolved["source"]), console, comm=comm, sinks=trackers).run()


def _print_overview(console: Console, results) -> None:
    table = Table(title="Runs")
    for col in ("run", "seed", "test", "folder"):
        table.add_column(col)
    for unit, s, folder, done, error in results:
        cells = []
        for split, entry in (done or {}).get("test", {}).items():
            value = f"{entry['mean'] * 100:.2f}%" if entry["metric"] == "accuracy" else f"{entry['mean']:.3f}"
            cells.append(f"{split} {value}")
        status = ", ".join(cells) or (f"failed: {error.strip().splitlines()[0]}" if error else "-")
        table.add_row(unit.label or unit.group, str(s), status, str(folder))
    console.print(table)
