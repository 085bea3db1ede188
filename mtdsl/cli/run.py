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
                parent_existed = (Path("runs") / u.group).exists()
                bases[u.group] = RunDir.create(u.group).path
                if created is not None:
                    created += [bases[u.group]] + ([] if parent_existed else [bases[u.group].parent])
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


def run_ref(ref: str | None, overrides: list[str], *, out_dir: str | None, seed: int | None,
            device: str | None, console: Console, resume: str | None = None, jobs: int = 1,
            log: tuple[str, ...] = ()) -> list[Path]:
    """`log`: experiment trackers to log to besides those the specs ask for (--log).
    Under torchrun every process runs this; the main one plans the folders and speaks."""
    from ..recipe.communicator import this_process
    from ..report.trackers import check_installed, wanted

    comm = this_process()
    if not comm.is_main:
        console = Console(file=io.StringIO())
    if comm.world_size > 1 and jobs > 1:
        raise RunError("--jobs runs several experiments side by side; under torchrun the processes "
                       "share one run instead: drop --jobs")

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
        return _run_all(ref, planned, units, overrides, device, console, jobs, log)
    finally:  # a run that failed before writing anything leaves no empty folders behind
        for folder in [f for _, _, f in reversed(planned)] + created if comm.is_main else []:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _run_all(ref, planned, units, overrides, device, console, jobs, log) -> list[Path]:
    from ..recipe.meta_train import run_hashes

    todo = []
    for unit, s, folder in planned:
        done = finished(folder)
        if done is not None and done.get("spec_sha256") in run_hashes(unit.compiled, s):
            console.print(f"{folder}: already finished, skipped")
        else:
            todo.append((units.index(unit), s, folder))
    if jobs > 1 and len(todo) > 1:
        _in_parallel(ref, overrides, device, todo, jobs, console, log)
    else:
        for index, s, folder in todo:
            _run_one(units[index], s, folder, overrides, device, console, log)
    results = [(unit, s, folder, finished(folder)) for unit, s, folder in planned]
    if len(results) > 1:
        _print_overview(console, results)
    return [folder for _, _, folder, _ in results]


def _run_one(unit: Unit, seed: int, folder: Path, overrides, device, console, log=()) -> None:
    from ..recipe.communicator import this_process
    from ..recipe.meta_train import MetaTraining, RunRequest, pick_device, source_of
    from ..report.trackers import for_run

    c = unit.compiled
    comm = this_process()
    trackers = for_run(c.experiment, log, unit.group, unit.label, seed, folder) if comm.is_main else []
    MetaTraining(RunRequest(c, seed, folder, overrides, pick_device(device or c.experiment.device.type),
                            source_of(c)), console, comm=comm, sinks=trackers).run()


# ---- --jobs N: runs in worker processes -------------------------------------------------------

def _in_parallel(ref, overrides, device, todo, jobs: int, console: Console, log=()) -> None:
    """Each run in its own process (spawned, so CUDA starts clean), N at a time; on a machine
    with several GPUs each worker holds one. A worker's output goes to `output.log` in its
    run folder; this process reports starts, ends and failures."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    gpus = context.Queue()
    for gpu in _gpus_for(device, jobs):
        gpus.put(gpu)
    failures = []
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_start, initargs=(gpus, jobs)) as pool:
        futures = {pool.submit(_worker_run, ref, overrides, device, i, s, str(f), log): f for i, s, f in todo}
        console.print(f"running {len(todo)} runs, {jobs} at a time")
        for future in as_completed(futures):
            folder = futures[future]
            error = future.result()
            if error:
                failures.append(f"{folder}: {error}")
                console.print(f"failed: {folder}: {error}", markup=False)
            else:
                console.print(f"finished: {folder}", markup=False)
    if failures:
        raise RunError(f"{len(failures)} of {len(todo)} runs failed:\n" + "\n".join(failures))


def _gpus_for(device: str | None, jobs: int) -> list[int]:
    import torch

    count = torch.cuda.device_count() if device in (None, "auto", "cuda") else 0
    return [i % count for i in range(jobs)] if count > 1 else []


def _worker_start(gpus, jobs: int) -> None:
    import os
    import queue

    try:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get_nowait())
    except queue.Empty:
        pass
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))


def _worker_run(ref, overrides, device, index: int, seed: int, folder: str, log=()) -> str | None:
    """One run in a worker; returns an error message instead of raising, so one failed run
    does not stop the others."""
    from ..errors import MtdslError
    from ..report.rundir import OUTPUT_LOG

    console = Console(file=io.StringIO(), width=120)
    try:
        unit = compile_units(ref, overrides)[index]
        _run_one(unit, seed, Path(folder), overrides, device, console, log)
        return None
    except MtdslError as e:
        return str(e)
    finally:
        if Path(folder).is_dir():
            (Path(folder) / OUTPUT_LOG).write_text(console.file.getvalue())


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
    for unit, s, folder, done in results:
        cells = []
        for split, entry in (done or {}).get("test", {}).items():
            value = f"{entry['mean'] * 100:.2f}%" if entry["metric"] == "accuracy" else f"{entry['mean']:.3f}"
            cells.append(f"{split} {value}")
        table.add_row(unit.label or unit.group, str(s), ", ".join(cells) or "-", str(folder))
    console.print(table)
