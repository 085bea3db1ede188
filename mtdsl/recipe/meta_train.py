"""The meta-training recipe: one experiment, one seed, one run folder.

  setup (open data, the folder, the learner; resume from checkpoint.pt) -> train (live
  progress, metrics, validation, checkpoints) -> test (every test dataset) -> finish
  (final.pt, result.json, the summary)

`MetaTraining` is the same recipe in one process and in N data-parallel ones: the
communicator it is given says which share of each meta-batch, validation and test set this
process computes, and sums or gathers the shares. Only the main rank writes the run folder,
prints and feeds the sinks (recipe/sinks.py).

On CPU a resumed run ends with exactly the numbers of an uninterrupted one: the task
sampler's generator, the learner (weights, scores, optimizer, IteRand generator) and the
best state are all in the checkpoint, and validation and test tasks come from fresh
generators seeded by the run's seed.
"""

from __future__ import annotations

import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from ..compile.compiler import Compiled
from ..compile.module import CompiledModel
from ..compile.operative import operative_text, sha256
from ..data.batch import TaskBatch
from ..engine.init import seeded_generator
from ..engine.meta import MetaLearner, StepStats
from ..errors import RunError
from ..report.live import LiveDisplay
from ..report.recompile import parameter_table
from ..report.result import build_result, split_entry
from ..report.rundir import RESOLVED, Checkpoint, FinalTensors, Run, RunDir, WriteError, open_run
from ..report.stats import mean_ci95
from ..report.summary import SparsityRow, print_summary
from .communicator import PeerLost, SingleProcess, launched_by_torchrun
from .estimate import estimate, print_estimate, worth_timing
from . import signals
from .profiler import RunProfile
from .sinks import Sink, open_sinks
from .sources import open_sources

# Tasks sampled and evaluated at once at validation and test: bounds memory, not results.
EVAL_CHUNK = 100


@dataclass
class RunRequest:
    compiled: Compiled
    seed: int
    folder: Path
    overrides: list[str]
    device: torch.device
    source: str  # the spec file it came from (absolute), recorded in resolved.json


def pick_device(wanted: str) -> torch.device:
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RunError("device cuda was asked for, but no CUDA device is available here; "
                       "use --device cpu, or `device: auto` in the spec")
    if wanted == "cuda" and launched_by_torchrun():  # one GPU per process of the node
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(wanted)


def source_of(c: Compiled) -> str:
    return str(Path(c.resolved.definition.span.file).resolve())


def operative(c: Compiled, seed: int | None = None) -> tuple[str, str]:
    """The operative spec of the run of `seed` (its `seeds` is that one seed; all of them
    without one) and its sha256. Where it came from (source file, --set lines) is kept in
    resolved.json, not here, so one run has one hash wherever it ran."""
    text = operative_text(c, f"// Operative spec of `{c.resolved.name}`: imports, inheritance, "
                             "overrides and defaults applied.", seed)
    return text, sha256(text)


def run_hashes(c: Compiled, seed: int) -> tuple[str, str]:
    """The sha256s a finished or resumable run of `seed` may carry: its own, and the one of
    folders written before spec.mt named its seed (all the experiment's seeds)."""
    return operative(c, seed)[1], operative(c)[1]


def resolved_document(c: Compiled) -> dict:
    """The resolved spec as JSON, for tools: every default, inherited value and override."""
    exp = c.experiment.model_dump(mode="json", exclude={"model"})
    exp["model"] = {"model": c.experiment.model.func, **c.experiment.model.kwargs}
    return {"experiment": c.resolved.name, "spec": exp, "parameters": parameter_table(c)}


def metric_of(c: Compiled) -> str:
    return "accuracy" if c.plan.loss == "cross_entropy" else "mse"


def evaluate(learner: MetaLearner, source, n_tasks: int, generator, metric: str,
             comm=None) -> list[float]:
    """Per-task values of `n_tasks` tasks drawn from `generator`, in drawing order. Every
    rank draws every task (so the tasks do not depend on the world size) and evaluates its
    share of each chunk."""
    comm = comm or SingleProcess()
    values: list[float] = []
    for start in range(0, n_tasks, EVAL_CHUNK):
        batch = source.sample(min(EVAL_CHUNK, n_tasks - start), generator)
        mine = comm.share(batch.tasks)
        part = getattr(learner.evaluate(share_of(batch, mine)), metric).tolist() if mine.stop > mine.start else []
        values += comm.gather(part)
    return values


def share_of(batch: TaskBatch, part: slice) -> TaskBatch:
    return TaskBatch(*(t[part] for t in (batch.support_x, batch.support_y, batch.query_x, batch.query_y)))


class MetaTraining:
    """One seed of one experiment, run (or continued) into `req.folder`.

    `run()` calls setup, train, test and finish in order. Extension points: `comm` (how
    the ranks talk), `sinks` (extra record receivers, added to those the spec asks for),
    `checkpoint_due` / `validation_due` (when), `save_checkpoint` / `load_checkpoint`
    (what), and `interrupted` (what a stop asked for by a signal does at the end of a step).
    """

    def __init__(self, req: RunRequest, console: Console, *, comm=None, sinks: list[Sink] = (),
                 profile: RunProfile | None = None):
        self.req = req
        self.profile = profile  # `mtdsl run --profile`: times the phases once set up
        self.c = req.compiled
        self.plan = req.compiled.plan
        self.name = req.compiled.resolved.name
        self.seed = req.seed
        self.comm = comm or SingleProcess()
        self.main = self.comm.is_main
        # Other ranks compute in silence; the main rank speaks for the run.
        self.console = console if self.main else Console(file=io.StringIO())
        self.extra_sinks = list(sinks)
        self.metric = metric_of(self.c)
        self.sinks: list[Sink] = []
        self.best = None  # (validation value, learner state) when eval.checkpoint is "best"
        self.elapsed_before = 0.0  # training seconds before this process started
        self.started = time.monotonic()
        self.lock = None  # the run folder's lock (report/lock.py), held by the main rank
        self.checkpointed: int | None = None  # the iteration of checkpoint.pt on disk

    # -- the whole run -------------------------------------------------------------------

    def run(self) -> Path:
        signals.check(f"before the run into {self.req.folder} started")
        try:
            self.setup()
            if self.profile is not None:
                self.profile.attach(self)
            self._stop_if_asked("before meta-training started")
            self.train()
            self._stop_if_asked("after meta-training, before meta-testing")
            test = self.test()
            return self.finish(test)
        except signals.Interrupted as stop:  # a second signal: the step in progress is dropped
            raise signals.Stopped(stop.signum, f"stopped by {signals.name(stop.signum)} at once; "
                                               f"{self._kept()}") from None
        except WriteError as e:
            raise RunError(f"{e}; {self._kept()} once there is space again or the folder is "
                           "writable") from None
        except PeerLost as e:  # wherever the collective was: a step, validation, a stop check
            raise RunError(f"{e}; {self._kept()}") from None
        finally:
            self.close()
            if self.profile is not None:
                self.profile.report(self.console)

    def _stop_asked(self) -> int | None:
        """The stop signal the main rank got, on every rank, so all ranks stop together."""
        return self.comm.on_main(signals.requested)

    def _stop_if_asked(self, when: str) -> None:
        signum = self._stop_asked()
        if signum is not None:
            raise signals.Stopped(signum, f"stopped by {signals.name(signum)} {when}; {self._kept()}")

    def _kept(self) -> str:
        """What a stopped or failed run leaves to continue from."""
        if self.checkpointed is None:
            if (self.req.folder / RESOLVED).is_file():
                return (f"no checkpoint was written yet: `mtdsl run --resume {self.req.folder}` "
                        "starts it from the beginning")
            return "no checkpoint was written yet"
        return (f"the checkpoint at iteration {self.checkpointed} is kept: continue with "
                f"`mtdsl run --resume {self.req.folder}`")

    # -- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        req = self.req
        self.text, self.sha = operative(self.c, self.seed)
        if Run(req.folder).recorded_sha256() == operative(self.c)[1]:  # an older folder
            self.text, self.sha = operative(self.c)
        self.sources = open_sources(self.c.experiment, req.device, self.c.resolved.located.key_spans)  # before the folder: missing data leaves none
        self.run_dir = RunDir(req.folder)
        if self.plan.outer.meta_batch < self.comm.world_size:
            raise RunError(f"outer.meta_batch is {self.plan.outer.meta_batch}, fewer tasks than the "
                           f"{self.comm.world_size} processes that share each meta-batch; start fewer "
                           "processes or raise outer.meta_batch")
        # The main rank prepares the folder; the others then read the same checkpoint.
        prepared: dict = {}
        if self.comm.on_main(lambda: self._prepare_folder(prepared)):
            state = prepared["state"] if self.main else open_run(req.folder, finished=False).checkpoint()
        else:
            state = None
        torch.manual_seed(self.seed)
        self.learner = MetaLearner(CompiledModel(self.c.graph), self.plan, seed=self.seed,
                                   device=req.device, eval_chunk=25)
        self.train_rng = seeded_generator(self.seed, "train-tasks")
        if state is not None:
            self.load_checkpoint(state)
            if self.main:
                self.run_dir.keep_metrics_until(self.learner.iteration)
            self.console.print(f"[bold]{self.name}[/] seed {self.seed}: resuming at iteration "
                               f"{self.learner.iteration} in {req.folder}")
        else:
            self.console.print(f"[bold]{self.name}[/] seed {self.seed} on {req.device} -> {req.folder}")
        if self.main:
            self.sinks = open_sinks(self.c.experiment, self.run_dir) + self.extra_sinks
            resolved = open_run(req.folder, finished=False).resolved
            for sink in self.sinks:
                sink.start(resolved, req.folder)
        self.announce()

    def _prepare_folder(self, prepared: dict) -> bool:
        """Main rank: the folder is locked; a fresh one gets spec and resolved.json; True to resume."""
        self.lock = self.run_dir.lock()
        if self.lock.note:
            self.console.print(f"note: {self.lock.note}", markup=False, soft_wrap=True)
        prepared["state"] = self.run_dir.prepare(self.sha)
        if prepared["state"] is None:
            self.run_dir.write_spec(self.text, self.sha)
            self.run_dir.write_json("resolved", self.resolved())
        else:
            self._record_resume(prepared["state"])
        return prepared["state"] is not None

    def _record_resume(self, state: Checkpoint) -> None:
        """resolved.json says how the run started; each resume (perhaps with another number of
        processes or another device) is added to its `resumed` list."""
        document = open_run(self.req.folder, finished=False).resolved
        document.setdefault("resumed", []).append(
            {"iteration": state.learner["iteration"], "device": _device_name(self.req.device),
             **self.comm.describe(self.req.device)})
        self.run_dir.write_json("resolved", document)

    def resolved(self) -> dict:
        """resolved.json: the resolved spec and where, how and on what it ran."""
        req = self.req
        return {**resolved_document(self.c), "source": req.source, "overrides": list(req.overrides),
                "seed": self.seed, "spec_sha256": self.sha, "device": _device_name(req.device),
                **self.comm.describe(req.device), "versions": _versions()}

    def announce(self) -> None:
        """What the run is about to compute and what it will cost, printed before the first
        step (time is measured only where that is a small share of the run: estimate.py)."""
        if self.plan.outer.iterations > self.learner.iteration:
            first = self.sources.train.sample(self.plan.outer.meta_batch, seeded_generator(self.seed, "probe"))
            self.console.print(f"computing {self.learner.execution(first)}")
            said = self.learner.compile_now(share_of(first, self.comm.share(first.tasks)))
            if said:
                self.console.print(said, markup=False)
            if self.main:
                timed = worth_timing(self.plan.outer.iterations, self.learner.iteration)
                print_estimate(self.console, estimate(self.c, self.sources, self.learner, self.seed, timed=timed,
                                                      setup_seconds=time.monotonic() - self.started))

    # -- train ---------------------------------------------------------------------------

    def train(self) -> None:
        iterations = self.plan.outer.iterations
        self.log_every = max(1, iterations // 1000)
        with LiveDisplay(self.console, iterations, f"{self.name} s{self.seed}", self.metric) as self.live:
            for it in range(self.learner.iteration + 1, iterations + 1):
                stats = self.step()
                self.log_step(it, stats)
                if self.validation_due(it):
                    self.validate(it)
                if self.checkpoint_due(it):
                    self.save_checkpoint()
                if self._stop_asked():  # the safe point: the step and its records are whole
                    self.interrupted()

    def step(self) -> StepStats:
        """One outer step on the next meta-batch: every rank draws the whole meta-batch,
        computes its share, and takes the step of the summed meta-gradients."""
        batch = self.sources.train.sample(self.plan.outer.meta_batch, self.train_rng)
        try:
            stats = self.learner.meta_step(share_of(batch, self.comm.share(batch.tasks)), self.comm.sum)
        except PeerLost:
            raise
        except RunError as e:
            raise RunError(f"{e}\nIn {self.req.folder}, {self._kept()} once the cause is fixed.") from None
        while self.learner.notes:
            self.console.print(self.learner.notes.pop(0), markup=False)
        return stats

    def log_step(self, it: int, stats: StepStats) -> None:
        value = getattr(stats, self.metric)
        sparsity = self.learner.overall_sparsity()
        self.live.update(it, stats.loss, value, stats.lr, sparsity if self.plan.by_role("masked") else None)
        if it % self.log_every == 0 or it == self.plan.outer.iterations:
            self._check_finite()
            self.emit({"iteration": it, "loss": stats.loss, self.metric: value, "lr": stats.lr,
                       "sparsity": sparsity, "layer_sparsity": self.learner.sparsity(),
                       "inner_grad": stats.inner_grad, "seconds": round(self.elapsed(), 3)})

    def validation_due(self, it: int) -> bool:
        return self.sources.valid is not None and (it % self.plan.eval.every == 0
                                                   or it == self.plan.outer.iterations)

    def checkpoint_due(self, it: int) -> bool:
        every = self.c.experiment.checkpoint.every if self.c.experiment.checkpoint else self.plan.eval.every
        return it % every == 0 or it == self.plan.outer.iterations

    # -- validate ------------------------------------------------------------------------

    def validate(self, it: int) -> None:
        values = evaluate(self.learner, self.sources.valid, self.plan.eval.valid_tasks,
                          seeded_generator(self.seed, "valid-tasks"), self.metric, self.comm)
        mean, ci = mean_ci95(values)
        self.live.validation(it, mean, ci)
        self.emit({"iteration": it, "valid": {"metric": self.metric, "mean": mean, "ci95": ci,
                                              "tasks": len(values)}})
        better = self.best is None or (mean > self.best[0] if self.metric == "accuracy" else mean < self.best[0])
        if self.c.experiment.eval.checkpoint == "best" and better:
            self.best = (mean, _copy(self.learner.state_dict()))

    # -- checkpoints ---------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        self._check_finite()  # never overwrite a good checkpoint with a bad state
        if not self.main:
            return
        for sink in self.sinks:  # first: a resumed run must not skip steps a tracker lost
            sink.flush()
        path = self.run_dir.save_checkpoint(Checkpoint(
            spec_sha256=self.sha, learner=self.learner.state_dict(), train_rng=self.train_rng.get_state(),
            torch_rng=torch.get_rng_state(), best=self.best, elapsed=self.elapsed()))
        self.checkpointed = self.learner.iteration
        for sink in self.sinks:
            sink.artifact(path)

    def load_checkpoint(self, state: Checkpoint) -> None:
        self.learner.load_state_dict(state.learner)
        self.train_rng.set_state(state.train_rng)
        torch.set_rng_state(state.torch_rng)  # dropout draws from it
        self.best, self.elapsed_before = state.best, state.elapsed
        self.checkpointed = self.learner.iteration

    def interrupted(self) -> None:
        """A stop asked for during training (recipe/signals.py): checkpoint the iteration just
        finished, say how to continue."""
        if self.checkpointed != self.learner.iteration:
            self.save_checkpoint()
        signum = self._stop_asked()
        raise signals.Stopped(signum, f"stopped by {signals.name(signum)} at iteration "
                                      f"{self.learner.iteration}; {self._kept()}")

    # -- test and finish -----------------------------------------------------------------

    def test(self) -> dict:
        if self.c.experiment.eval.checkpoint == "best" and self.best is not None:
            self.learner.load_state_dict(self.best[1])
            self.console.print(f"meta-testing the best validated state ({self.metric} {self.best[0]:.4g})")
        test = {}
        for label, source in self.sources.tests.items():
            self.console.print(f"meta-testing on {label}: {self.plan.eval.test_tasks} tasks, "
                               f"{self.plan.inner.test_steps} inner steps")
            values = evaluate(self.learner, source, self.plan.eval.test_tasks,
                              seeded_generator(self.seed, "test-tasks"), self.metric, self.comm)
            test[label] = split_entry(self.metric, values)
            if not math.isfinite(test[label]["mean"]):
                raise RunError(f"meta-test on {label} gave a non-finite {self.metric}; the run folder "
                               f"{self.req.folder} keeps the training metrics and checkpoint")
        return test

    def finish(self, test: dict) -> Path:
        learner, masks = self.learner, self.learner.masks()
        result = build_result(experiment=self.name, spec_sha256=self.sha, seed=self.seed,
                              iterations=self.plan.outer.iterations, test=test, sparsity=learner.sparsity(),
                              wall_seconds=round(self.elapsed(), 2))
        if self.main:
            final = self.run_dir.save_final(FinalTensors(learner.weights, learner.learned, masks))
            written = self.run_dir.write_result(result)
            for sink in self.sinks:
                sink.artifact(final)
                sink.artifact(written)
                sink.finish(result)
        rows = [SparsityRow(p.name, tuple(p.shape), int(masks[p.name].sum().item()), p.numel)
                for p in self.plan.by_role("masked")]
        print_summary(self.console, result, rows, run_dir=self.req.folder)
        return self.req.folder

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
        self.sinks = []
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- helpers -------------------------------------------------------------------------

    def emit(self, record: dict) -> None:
        for sink in self.sinks:
            sink.record(record)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def _check_finite(self) -> None:
        learned = self.learner.learned
        if not learned:
            return
        # One pass per tensor: a non-finite entry makes its sum non-finite; only then (or
        # when finite entries overflow the sum) is each tensor checked entry by entry.
        sums = torch.stack([t.detach().sum() for t in learned.values()])
        if bool(torch.isfinite(sums).all()):
            return
        bad = [k for k, t in learned.items() if not torch.isfinite(t).all()]
        if bad:
            raise RunError(f"meta-training diverged at iteration {self.learner.iteration}: "
                           f"{', '.join(bad[:4])} became non-finite. Lower the outer lr or the inner "
                           f"lrs. In {self.req.folder}, {self._kept()}.")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


def _versions() -> dict:
    import platform

    from .. import __version__

    return {"mtdsl": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def _copy(state):
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: _copy(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_copy(v) for v in state]
    return state
