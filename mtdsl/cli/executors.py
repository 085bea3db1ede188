"""Where the runs of `mtdsl run` execute, behind one interface: in this process one after
another, in local worker processes (`--jobs N`), or as tasks of a Ray cluster (`--cluster
ray`). `run_jobs` drives the parallel ones the same way: every run is submitted, a failed run
is retried `retries` times and then reported while the others go on, the overview says how
many are done, running, queued and failed, and a stop signal (Ctrl-C) cancels cleanly.

A run is described by a `Job` of plain values (the spec reference, overrides, seed, absolute
folder), so it can be sent to another process or another machine that sees the same files.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..errors import RunError


@dataclass(frozen=True)
class Job:
    ref: str  # the spec reference, its file absolute: a worker may start in another folder
    overrides: tuple[str, ...]
    device: str | None
    index: int  # which of the units `compile_units(ref, overrides)` gives
    seed: int
    folder: str  # absolute
    log: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.folder


def run_job(job: Job) -> str | None:
    """One run in a worker (a local process or a Ray task): None when it finished, else what
    went wrong, as a message; the worker's output goes to output.log in the run folder."""
    from ..errors import MtdslError
    from ..recipe import signals
    from ..report.rundir import OUTPUT_LOG
    from .run import _run_one
    from .select import compile_units

    console = Console(file=io.StringIO(), width=120)
    try:
        with signals.handled():
            unit = compile_units(job.ref, list(job.overrides))[job.index]
            _run_one(unit, job.seed, Path(job.folder), list(job.overrides), job.device, console, job.log)
        return None
    except MtdslError as e:
        return str(e)
    except signals.Interrupted as stop:  # a second signal before the run began
        return f"stopped by {signals.name(stop.signum)}"
    finally:
        if Path(job.folder).is_dir():
            (Path(job.folder) / OUTPUT_LOG).write_text(console.file.getvalue())


# -- the executors -------------------------------------------------------------------------


class LocalPool:
    """`--jobs N`: each run in its own process (spawned, so CUDA starts clean), N at a time;
    on a machine with several GPUs each worker holds one. A stop signal goes on to every
    worker (they left the terminal's process group), each checkpoints and ends its run."""

    def __init__(self, jobs: int, device: str | None):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from ..recipe import signals

        self.slots = jobs
        self.what = f"{jobs} worker processes"
        context = multiprocessing.get_context("spawn")
        gpus = context.Queue()
        for gpu in _gpus_for(device, jobs):
            gpus.put(gpu)
        self._pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_start,
                                         initargs=(gpus, jobs))
        self._forwarding = signals.forwarded(
            lambda signum: signals.send_to([p.pid for p in multiprocessing.active_children()], signum))
        self._forwarding.__enter__()

    def submit(self, job: Job):
        return self._pool.submit(run_job, job)

    def wait(self, handles: list, timeout: float) -> list:
        from concurrent.futures import FIRST_COMPLETED, wait

        return list(wait(handles, timeout=timeout, return_when=FIRST_COMPLETED).done)

    def outcome(self, handle) -> str | None:
        try:
            return handle.result()
        except Exception as e:  # noqa: BLE001 - a worker process that died (killed, out of memory)
            return f"its worker process ended abruptly ({type(e).__name__})"

    def cancel(self, handles: list) -> None:
        for handle in handles:
            handle.cancel()  # queued ones; running ones got the stop signal and checkpoint

    def close(self) -> None:
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._forwarding.__exit__(None, None, None)


def _gpus_for(device: str | None, jobs: int) -> list[int]:
    import torch

    count = torch.cuda.device_count() if device in (None, "auto", "cuda") else 0
    return [i % count for i in range(jobs)] if count > 1 else []


def _worker_start(gpus, jobs: int) -> None:
    import queue

    from ..recipe import signals

    signals.detach_from_terminal_group()
    signals.install()  # a stop signal is recorded even between runs
    try:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get_nowait())
    except queue.Empty:
        pass
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))


class RayCluster:
    """`--cluster ray`: each run a Ray task needing one GPU where the cluster has GPUs (and
    the run may use one), one CPU otherwise. Connects to RAY_ADDRESS as Ray's own tools do,
    else starts a local Ray. Run folders must be on a path every node sees."""

    def __init__(self, device: str | None):
        try:
            import ray
        except ImportError:
            raise RunError("--cluster ray needs Ray: pip install 'mtdsl[cluster]' (or ray)") from None
        import logging

        self.ray = ray
        if not ray.is_initialized():
            # Without RAY_ADDRESS, a new Ray for this command alone (not one some other `ray
            # start` left on the machine), on the loopback address, which always routes.
            local = ({} if os.environ.get("RAY_ADDRESS")
                     else {"address": "local", "_node_ip_address": "127.0.0.1"})
            if local:
                # Ray's token authentication would write a token into ~/.ray that later
                # connections to clusters without tokens then fail on; a Ray on the loopback
                # address for one command does not need one (RAY_AUTH_MODE set by the user wins).
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            try:
                ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                         configure_logging=False, runtime_env={"env_vars": _forwarded_env()}, **local)
            except (ConnectionError, RuntimeError, ValueError) as e:
                where = os.environ.get("RAY_ADDRESS")
                raise RunError(f"cannot reach the Ray cluster{f' at RAY_ADDRESS={where}' if where else ''}: "
                               f"{e}") from None
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if device != "cpu" else 0
        self.slots = gpus or max(1, int(resources.get("CPU", 1)))
        self.what = f"a Ray cluster ({gpus} GPUs)" if gpus else f"a Ray cluster ({self.slots} CPUs)"
        # Ray's own retries are off: run_jobs retries every failure the same way.
        self._task = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                                max_retries=0)(run_job)

    def submit(self, job: Job):
        return self._task.remote(job)

    def wait(self, handles: list, timeout: float) -> list:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def outcome(self, handle) -> str | None:
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayError as e:  # the task's worker died, or the task was cancelled
            return f"its Ray task failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]})"

    def cancel(self, handles: list) -> None:
        for handle in handles:
            self.ray.cancel(handle)

    def close(self) -> None:
        pass


def _forwarded_env() -> dict[str, str]:
    """Environment a Ray worker needs to compile and run the spec as here: MTDSL_* (data
    root made absolute, since workers start in another folder) and thread settings."""
    env = {k: v for k, v in os.environ.items() if k.startswith("MTDSL_") or k == "OMP_NUM_THREADS"}
    if "MTDSL_DATA" in env:
        env["MTDSL_DATA"] = str(Path(env["MTDSL_DATA"]).expanduser().resolve())
    return env


# -- driving -----------------------------------------------------------------------------------


@dataclass
class Tally:
    total: int
    done: int = 0
    failed: int = 0
    retried: int = 0

    def line(self, unfinished: int, slots: int) -> str:
        running = min(unfinished, slots)
        return (f"{self.done} done · {running} running · {unfinished - running} queued · "
                f"{self.failed} failed" + (f" · {self.retried} retried" if self.retried else "")
                + f" (of {self.total})")


def run_jobs(executor, jobs: list[Job], console: Console, retries: int) -> dict[str, str | None]:
    """Every job through `executor`; the outcome of each (None, or the error of its last
    attempt), keyed by folder. Failed attempts are retried up to `retries` times."""
    from ..recipe import signals

    outcomes: dict[str, str | None] = {}
    tally = Tally(len(jobs))
    pending = {}
    console.print(f"running {len(jobs)} runs on {executor.what}")
    try:
        pending = {executor.submit(job): (job, 1) for job in jobs}
        with Live(Text(tally.line(len(pending), executor.slots)), console=console,
                  transient=True, auto_refresh=False) as live:
            while pending:
                if signals.requested():
                    return _stop(executor, pending, outcomes, console, signals.name(signals.requested()))
                for handle in executor.wait(list(pending), timeout=0.5):
                    job, attempt = pending.pop(handle)
                    error = executor.outcome(handle)
                    if error and attempt <= retries and not signals.requested():
                        tally.retried += 1
                        console.print(f"failed (attempt {attempt} of {retries + 1}), retrying: "
                                      f"{job.name}: {_first_line(error)}", markup=False)
                        pending[executor.submit(job)] = (job, attempt + 1)
                        continue
                    outcomes[job.folder] = error
                    if error:
                        tally.failed += 1
                        console.print(f"failed: {job.name}: {_first_line(error)}", markup=False)
                    else:
                        tally.done += 1
                        console.print(f"finished: {job.name}", markup=False)
                live.update(Text(tally.line(len(pending), executor.slots)), refresh=True)
        if signals.requested():  # the last runs stopped on the signal inside the last wait
            return _stop(executor, pending, outcomes, console, signals.name(signals.requested()))
    except KeyboardInterrupt:
        return _stop(executor, pending, outcomes, console, "Ctrl-C")
    finally:
        executor.close()
    console.print(tally.line(0, executor.slots), markup=False)
    return outcomes


def _stop(executor, pending: dict, outcomes: dict, console: Console, why: str) -> dict:
    """Cancel what has not finished, give running runs a moment to end with a checkpoint."""
    executor.cancel(list(pending))
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for handle in executor.wait(list(pending), timeout=0.5):
            job, _ = pending.pop(handle)
            outcomes[job.folder] = executor.outcome(handle) or None
    for job, _ in pending.values():
        outcomes[job.folder] = f"cancelled ({why})"
    base = Path(os.path.commonpath(list(outcomes)))
    unfinished = [f"{folder}: {error}" for folder, error in outcomes.items() if error]
    message = (f"stopped by {why}: each run stopped with a checkpoint, or before it started. Continue "
               f"them all with the same command and `--out {base}`:\n" + "\n".join(unfinished))
    from ..recipe import signals

    if signals.requested():
        raise signals.Stopped(signals.requested(), message)
    raise RunError(message)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def executor_for(cluster: str | None, jobs: int, device: str | None):
    if cluster == "ray":
        return RayCluster(device)
    if cluster is not None:
        raise RunError(f"--cluster {cluster}: the clusters mtdsl runs on are: ray")
    return LocalPool(jobs, device)
