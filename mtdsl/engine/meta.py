"""The MetaLearner: meta-gradients, the outer step, IteRand, evaluation and checkpoints."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import grad_and_value

from mtdsl.compile.plan import Plan
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import stacked
from mtdsl.engine.allocator import keep_freed_memory
from mtdsl.engine.batching import over_tasks
from mtdsl.engine.compiled import CompiledGradients
from mtdsl.engine.init import draw, seeded_generator
from mtdsl.engine.inner import InnerLoop, autograd_grad, last_feature_weight, score_key
from mtdsl.engine.masking import hard_mask, iterand_redraw, threshold_at_sparsity
from mtdsl.engine.memory import free_bytes, measure, out_of_memory_is_a_run_error, tasks_that_fit
from mtdsl.engine.optim import OuterOptimizer, lr_factor
from mtdsl.engine.precision import Precision
from mtdsl.engine.stacked_inner import StackedLoop
from mtdsl.errors import RunError


# Sums over the processes of a data-parallel run, of a dict of tensors (same keys on every
# process): how meta-gradients of a meta-batch shared among processes are combined.
Reduce = Callable[[dict[str, Tensor]], dict[str, Tensor]]
METRIC_SUMS, TASKS = "\0metric sums", "\0tasks"  # entries `_means` adds beside the gradients


@dataclass(frozen=True)
class StepStats:
    """Means over the meta-batch of one outer step (query set, after adaptation)."""

    loss: float
    lr: float
    accuracy: float | None = None  # classification
    mse: float | None = None  # regression
    # Mean |inner-loop gradient| of the last feature layer's weight (paper Fig. 2); None
    # when that layer does not adapt.
    inner_grad: float | None = None


@dataclass(frozen=True)
class EvalStats:
    """Per-task query metrics after adaptation, CPU tensors of shape [T]."""

    loss: Tensor
    accuracy: Tensor | None = None
    mse: Tensor | None = None


class MetaLearner:
    """Meta-trains a module as its Plan says.

    The module only supplies the computation (`functional_call`); every tensor it is called
    with lives here. `learned` holds the meta-learned tensors, keyed "<name>:score" for the
    scores of a masked tensor and "<name>" for a meta tensor's value; `weights` holds the
    masked tensors' drawn weights and the fixed tensors' values.

    Tasks of a meta-batch run `tasks_at_once` at a time (`OuterPlan.tasks_in`; "auto"
    decides from engine.memory's estimate on the first batch of each shape). The forward
    pass runs with the precision and memory format `precision` says (engine.precision).
    """

    def __init__(self, module: nn.Module, plan: Plan, *, seed: int,
                 device: str | torch.device = "cpu", eval_chunk: int | None = None,
                 stacked_tasks: bool = True):
        self.plan = plan
        self.device = torch.device(device)
        if self.device.type == "cpu":
            keep_freed_memory()  # engine.allocator: per-step tensors reuse the heap
        self.module = module.to(self.device)
        current = _matching_parameters(module, plan)
        self.eval_chunk = eval_chunk or max(plan.outer.meta_batch, 1)
        has_conv = any(len(p.shape) == 4 for p in plan.params)
        self.precision = Precision.decide(plan.device, self.device, has_conv)
        self._fits: dict[tuple, int] = {}  # tasks that fit at once, by purpose and task shapes

        weight_rng = seeded_generator(seed, "weights")
        score_rng = seeded_generator(seed, "scores")
        self.weights: dict[str, Tensor] = {}
        self.learned: dict[str, Tensor] = {}
        self.thresholds: dict[str, Tensor] = {}
        for p in plan.params:
            dtype = current[p.name].dtype
            value = draw(p.init, p.shape, weight_rng, fan=p.fan_in).to(self.device, dtype)
            value = self.precision.to_format(value)
            if p.role == "meta":
                self.learned[p.name] = value.requires_grad_()
            else:
                self.weights[p.name] = value
            if p.role == "masked":
                scores = draw(plan.mask.scores_init, p.shape, score_rng)
                threshold = threshold_at_sparsity(scores, plan.mask.sparsity)
                self.thresholds[p.name] = threshold.to(self.device, dtype)
                self.learned[score_key(p.name)] = self.precision.to_format(
                    scores.to(self.device, dtype)).requires_grad_()
        self._iterand_rng = seeded_generator(seed, "iterand")

        self.inner = InnerLoop(module, plan.params, plan.loss, self.weights, self.thresholds,
                               probe=last_feature_weight(plan.params),
                               autocast=self.precision.autocast)
        # The meta-batch as one stacked computation (engine.stacked) wherever the model allows;
        # otherwise the per-task function under vmap or one task at a time, and
        # `fallback` says why.
        self.fallback = ("asked for" if not stacked_tasks
                         else _why_not_stacked(module, self.precision))
        self.stacked = None if self.fallback else StackedLoop(
            module.graph, plan.params, plan.loss, self.weights, self.thresholds,
            probe=last_feature_weight(plan.params), autocast=self.precision.autocast)
        # The stacked meta-gradient compiled (engine.compiled), or why not (None: compiled).
        self.not_compiled = _why_not_compiled(plan, self.fallback, self.precision)
        self.compiled = None if self.not_compiled else CompiledGradients(
            self.stacked, plan.inner.steps, plan.inner.order)
        self.notes: list[str] = []  # what the engine decided during the run, for its log
        self._mask_cache: tuple[tuple, dict[str, Tensor]] | None = None
        self._kept_cache: tuple[tuple, dict[str, tuple[int, int]]] | None = None
        self.optimizer = (OuterOptimizer(plan.outer.optimizer, list(self.learned.values()))
                          if self.learned else None)
        self.iteration = 0

    # -- meta-training -------------------------------------------------------------------

    def current_lr(self) -> float:
        outer = self.plan.outer
        return outer.optimizer.lr * lr_factor(outer.schedule, self.iteration, outer.iterations)

    def meta_gradients(self, batch: TaskBatch, reduce: Reduce | None = None) -> tuple[dict[str, Tensor], StepStats]:
        """Gradients of the mean query loss over the meta-batch w.r.t. `learned` (same keys),
        without touching the optimizer. In a data-parallel run `batch` is this process's
        share of the meta-batch and `reduce` sums over the processes (see `_means`)."""
        if not self.learned:
            raise RunError("nothing is meta-learned: every parameter is fixed. Mark some "
                           "parameters as masked or meta.")
        tasks = self._on_device(batch)
        chunk = self.tasks_at_once(batch)
        if self.stacked is not None:
            return self._stacked_gradients(tasks, chunk, reduce)
        if chunk == 1:
            per_task = self._task_gradient
        else:
            task_gradient = grad_and_value(
                partial(self.inner.query, steps=self.plan.inner.steps, order=self.plan.inner.order),
                has_aux=True)
            # vmap of per-task gradients, not the gradient of a vmapped loss: the latter gives
            # wrong second-order gradients through batch_norm in torch 2.x.
            per_task = partial(task_gradient, self._detached_learned())
        total, metrics = None, []
        with self._mode(training=True), out_of_memory_is_a_run_error(self.device, chunk):
            for grads, (_, chunk_metrics) in over_tasks(per_task, tasks, chunk):
                summed = {k: g.sum(0, dtype=torch.float64) for k, g in grads.items()}
                total = summed if total is None else {k: total[k] + summed[k] for k in total}
                metrics.append(chunk_metrics)
        return self._means(total, metrics, reduce)

    def _stacked_gradients(self, tasks: tuple[Tensor, ...], chunk: int, reduce: Reduce | None = None):
        """The meta-gradient of `chunk` stacked tasks at a time (engine.stacked_inner)."""
        count = tasks[0].shape[0]
        # One chunk, one process and a power-of-two count: the float32 gradient divided by the
        # count is already exact, so the float64 sum (two more weight-sized copies) is skipped
        # with the same bits.
        exact = reduce is None and chunk >= count and count & (count - 1) == 0
        total, metrics = None, []
        with self._mode(training=True), out_of_memory_is_a_run_error(self.device, chunk):
            for start in range(0, count, chunk):
                part = tuple(t[start:start + chunk] for t in tasks)
                grads, chunk_metrics = self._compiled_chunk(part) or self._stacked_chunk(part)
                if not exact:
                    grads = [g.double() for g in grads]
                total = grads if total is None else [a + b for a, b in zip(total, grads)]
                metrics.append(chunk_metrics)
        return self._means(dict(zip(self.learned, total)), metrics, reduce)

    def _compiled_chunk(self, part: tuple[Tensor, ...]):
        """`_stacked_chunk` compiled (engine.compiled), or None where it is not. A shape that
        cannot be compiled leaves the eager engine in charge for the rest of the run, and
        one line in `notes` says why."""
        if self.compiled is None:
            return None
        found = self.compiled(self.learned, part, partial(self._stacked_chunk, part))
        if found is None:
            self.notes.append(self.compiled.why)
            self.not_compiled, self.compiled = self.compiled.why, None
        return found

    def compile_now(self, batch: TaskBatch) -> str | None:
        """Compiles the meta-gradient for batches shaped like `batch`, if this learner
        compiles, by computing one (the state is left as it was); says how it went."""
        if self.compiled is None:
            return None
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            self.meta_gradients(batch)
        if self.compiled is None:
            return self.notes.pop()
        if self.compiled.built:
            return (f"meta-gradient compiled in {self.compiled.seconds:.1f} s (kept on disk for "
                    "later runs of the same shapes)")
        return (f"meta-gradient compiled by an earlier run, loaded and checked in "
                f"{self.compiled.seconds:.2f} s")

    def _stacked_chunk(self, part: tuple[Tensor, ...]) -> tuple[list[Tensor], dict[str, Tensor]]:
        """The summed meta-gradient of stacked tasks with plain autograd, and their metrics."""
        leaves = list(self.learned.values())
        losses, metrics = self.stacked.query(
            self.learned, *part, steps=self.plan.inner.steps, order=self.plan.inner.order,
            training=True)
        grads = torch.autograd.grad(losses.sum(), leaves, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g for t, g in zip(leaves, grads)], metrics

    def _means(self, sums: dict[str, Tensor], metrics: list[dict[str, Tensor]],
               reduce: Reduce | None) -> tuple[dict[str, Tensor], StepStats]:
        """Means over the meta-batch from float64 sums over its tasks. `reduce` adds up the
        sums of all processes first, each holding a share of the tasks, so the mean is over
        the whole meta-batch however it was shared; float64 sums make the shares' order of
        addition (almost always) leave no trace in the float32 result."""
        keys = list(metrics[0])
        totals = {**sums, METRIC_SUMS: torch.stack(
            [torch.cat([m[k] for m in metrics]).double().sum() for k in keys]),
            TASKS: torch.tensor(float(sum(len(m[keys[0]]) for m in metrics)),
                                dtype=torch.float64, device=self.device)}
        if reduce is not None:
            totals = reduce(totals)
        count = totals.pop(TASKS)
        means = (totals.pop(METRIC_SUMS) / count).tolist()
        grads = {k: (g / count).to(self.learned[k].dtype) for k, g in totals.items()}
        return grads, StepStats(lr=self.current_lr(), **dict(zip(keys, means)))

    def _task_gradient(self, *task: Tensor):
        """One task's meta-gradient with plain autograd, as torch.func's grad_and_value gives
        it: (gradients, (loss, metrics))."""
        leaves = {k: t.detach().requires_grad_() for k, t in self.learned.items()}
        loss, metrics = self.inner.query(leaves, *task, steps=self.plan.inner.steps,
                                         order=self.plan.inner.order, differentiate=autograd_grad)
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        grads = {k: torch.zeros_like(t) if g is None else g for (k, t), g in zip(leaves.items(), grads)}
        return grads, (loss.detach(), metrics)

    def tasks_at_once(self, batch: TaskBatch, *, training: bool = True) -> int:
        """How many of the batch's tasks one vectorised call computes: all for "vmap", one
        for "sequential", the chunk size for "chunks", and for "auto" one for conv nets on
        the CPU, else as many as the memory estimate says fit (at most `eval_chunk` when
        evaluating)."""
        outer = self.plan.outer
        limit = batch.tasks if training else min(batch.tasks, self.eval_chunk)
        if outer.tasks_in == "vmap":
            return limit
        if outer.tasks_in == "sequential":
            return 1
        if outer.tasks_in == "chunks":
            return min(outer.chunk_size, limit)
        if self.device.type == "cpu" and any(len(p.shape) == 4 for p in self.plan.params):
            # Measured (benchmarks/bench_engine.py): on the CPU, conv nets run 1.3-1.8x faster
            # one task at a time than under vmap; MLPs are faster vectorised.
            return 1
        return self._tasks_that_fit(batch, training, limit)

    def _tasks_that_fit(self, batch: TaskBatch, training: bool, limit: int) -> int:
        key = (training, tuple(batch.support_x.shape[1:]), tuple(batch.query_x.shape[1:]))
        if key not in self._fits:
            footprint = measure(self.module, dict(self.module.named_parameters()),
                                batch.support_x[0], batch.query_x[0])
            per_task = (footprint.train_bytes(self.plan.inner.steps, self.plan.inner.order)
                        if training else footprint.eval_bytes())
            self._fits[key] = tasks_that_fit(per_task, free_bytes(self.device), limit=batch.tasks)
        return min(self._fits[key], limit)

    def execution(self, batch: TaskBatch) -> str:
        """How a meta-batch shaped like `batch` is computed, for the run's log."""
        chunk = self.tasks_at_once(batch)
        how = ("all at once (vmap)" if chunk == batch.tasks else "one at a time" if chunk == 1
               else f"in chunks of {chunk} (vmap)")
        if self.stacked is None:
            why = "" if self.fallback == "asked for" else f"; not stacked: {self.fallback}"
            return f"{batch.tasks} tasks {how}, {self.precision.describe()}{why}"
        how = ("all at once" if chunk == batch.tasks else "one at a time" if chunk == 1
               else f"in chunks of {chunk}")
        compiled = ", compiled" if self.compiled is not None else ""
        return f"{batch.tasks} tasks {how}, stacked{compiled}, {self.precision.describe()}"

    def _on_device(self, batch: TaskBatch) -> tuple[Tensor, ...]:
        batch = batch.to(self.device)
        return (self.precision.task_images(batch.support_x), batch.support_y,
                self.precision.task_images(batch.query_x), batch.query_y)

    @contextlib.contextmanager
    def _mode(self, *, training: bool):
        """The module in training mode (dropout active) or eval mode, restored after."""
        before = self.module.training
        self.module.train(training)
        try:
            yield
        finally:
            self.module.train(before)

    def meta_step(self, batch: TaskBatch, reduce: Reduce | None = None) -> StepStats:
        """One outer step: meta-gradients, the optimizer at the scheduled lr, then IteRand.
        `reduce`: see `meta_gradients`; every process then takes the same step."""
        lr = self.current_lr()
        grads, stats = self.meta_gradients(batch, reduce)
        if not math.isfinite(stats.loss):
            raise RunError(f"meta-training diverged at iteration {self.iteration + 1}: the query "
                           f"loss is {stats.loss}. Lower the outer lr or the inner lrs.")
        if self.optimizer is not None:
            try:
                self.optimizer.step([grads[key] for key in self.learned], lr)
            except RuntimeError as e:  # a step size (lr / bias correction) beyond float32
                if "overflow" not in str(e):
                    raise
                raise RunError(f"meta-training diverged at iteration {self.iteration + 1}: the "
                               f"outer step overflows float32 ({e}). Lower the outer lr.") from None
        self.iteration += 1
        every = self.plan.mask.iterand_every
        if every and self.iteration % every == 0:
            self.iterand()
        return stats

    @torch.no_grad()
    def iterand(self) -> None:
        """Re-draw each currently pruned weight with probability `MaskPlan.iterand_prob`."""
        for p in self.plan.by_role("masked"):
            mask = hard_mask(self.learned[score_key(p.name)], self.thresholds[p.name])
            self.weights[p.name].copy_(iterand_redraw(
                self.weights[p.name], mask, prob=self.plan.mask.iterand_prob, init=p.init,
                fan=p.fan_in, generator=self._iterand_rng))

    # -- evaluation ----------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, batch: TaskBatch, steps: int | None = None) -> EvalStats:
        """Adapt each task (first order, `InnerPlan.test_steps` by default) and measure its
        query set. Tasks go to the device `eval_chunk` at a time."""
        steps = self.plan.inner.test_steps if steps is None else steps
        learned = self._detached_learned()
        if self.stacked is None:
            query = partial(self.inner.query, learned, steps=steps, order="first")
        else:
            query = partial(self.stacked.query, learned, steps=steps, order="first", training=False)
        chunk = self.tasks_at_once(batch, training=False)
        chunks = []
        with self._mode(training=False), out_of_memory_is_a_run_error(self.device, chunk):
            for start in range(0, batch.tasks, chunk):
                part = TaskBatch(*(t[start:start + chunk] for t in (
                    batch.support_x, batch.support_y, batch.query_x, batch.query_y)))
                results = ([query(*self._on_device(part))] if self.stacked is not None
                           else over_tasks(query, self._on_device(part), chunk))
                for _, metrics in results:
                    chunks.append({k: v.cpu() for k, v in metrics.items()})
        joined = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
        return EvalStats(loss=joined["loss"], accuracy=joined.get("accuracy"),
                         mse=joined.get("mse"))

    @torch.no_grad()
    def adapt(self, support_x: Tensor, support_y: Tensor,
              steps: int | None = None) -> dict[str, Tensor]:
        """One task's effective parameters after adaptation (no task axis on the inputs)."""
        steps = self.plan.inner.test_steps if steps is None else steps
        with self._mode(training=False):
            support_x = self.precision.to_format(support_x.to(self.device))
            effective, _ = self.inner.adapt(self._detached_learned(), support_x,
                                            support_y.to(self.device), steps, "first")
        return {k: v.detach() for k, v in effective.items()}

    # -- reporting and export --------------------------------------------------------------

    def _mask_state(self) -> tuple:
        """Changes whenever a score or a threshold is changed in place."""
        return tuple((self.learned[score_key(p.name)]._version, self.thresholds[p.name]._version)
                     for p in self.plan.by_role("masked"))

    @torch.no_grad()
    def masks(self) -> dict[str, Tensor]:
        """The hard masks, computed once per state of the scores and thresholds (the
        recipe reads them several times per outer step)."""
        key = self._mask_state()
        if self._mask_cache is None or self._mask_cache[0] != key:
            self._mask_cache = (key, {p.name: hard_mask(self.learned[score_key(p.name)],
                                                         self.thresholds[p.name])
                                      for p in self.plan.by_role("masked")})
        return dict(self._mask_cache[1])

    @torch.no_grad()
    def _kept_counts(self) -> dict[str, tuple[int, int]]:
        """(kept, all) entries of each masked tensor, counted once per state of the scores
        without forming the masks: the recipe reads the sparsity after every step."""
        key = self._mask_state()
        if self._kept_cache is None or self._kept_cache[0] != key:
            masked = self.plan.by_role("masked")
            kept = torch.stack([(self.learned[score_key(p.name)] >= self.thresholds[p.name]).sum()
                                for p in masked]).tolist() if masked else []
            self._kept_cache = (key, {p.name: (k, math.prod(p.shape)) for p, k in zip(masked, kept)})
        return self._kept_cache[1]

    def sparsity(self) -> dict[str, float]:
        """Fraction of entries pruned, per masked tensor."""
        return {name: 1.0 - kept / total for name, (kept, total) in self._kept_counts().items()}

    def overall_sparsity(self) -> float:
        """Fraction pruned over all masked entries together (0 without masked tensors)."""
        counts = self._kept_counts().values()
        total = sum(t for _, t in counts)
        return sum(t - k for k, t in counts) / total if total else 0.0

    @torch.no_grad()
    def effective_params(self) -> dict[str, Tensor]:
        """The found network before adaptation: weight * mask for masked tensors, the value
        of the others, keyed by parameter name."""
        masks = self.masks()
        out = {}
        for p in self.plan.params:
            if p.role == "masked":
                out[p.name] = (self.weights[p.name] * masks[p.name]).clone()
            elif p.role == "meta":
                out[p.name] = self.learned[p.name].detach().clone()
            else:
                out[p.name] = self.weights[p.name].clone()
        return out

    # -- checkpoints -----------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "weights": {k: t.detach() for k, t in self.weights.items()},
            "learned": {k: t.detach() for k, t in self.learned.items()},
            "thresholds": dict(self.thresholds),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "iterand_rng": self._iterand_rng.get_state(),
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for group in ("weights", "learned", "thresholds"):
            _copy_into(getattr(self, group), state[group], group)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = state["iteration"]
        self._iterand_rng.set_state(state["iterand_rng"])

    def _detached_learned(self) -> dict[str, Tensor]:
        return {k: t.detach() for k, t in self.learned.items()}


def _why_not_stacked(module: nn.Module, precision: Precision) -> str | None:
    graph = getattr(module, "graph", None)
    if graph is None:
        return "the model is not a compiled layer graph"
    if precision.channels_last:
        return "channels-last memory format"
    return stacked.unsupported(graph)


# `compile: auto` compiles MLPs' runs this long. On a 2-core CPU a graph's first compile takes
# 20 to 45 s, once per machine; later runs of the same shapes (other seeds, a spec's seed
# list, a sweep's other points, a resumed run) load it in a few milliseconds. The 1000-step
# Omniglot run then takes 12 s instead of 21, and sinusoid's 5000 steps 9 s instead of 32
# (docs/performance.md): a first run of that length about breaks even, every later one gains.
COMPILE_FROM_ITERATIONS = 1000


def _why_not_compiled(plan: Plan, not_stacked: str | None, precision: Precision) -> str | None:
    """Why the meta-gradient is not compiled (None: it is)."""
    choice = plan.device.compile
    if choice is False:
        return "`device.compile: false`"
    if choice == "auto" and plan.outer.iterations < COMPILE_FROM_ITERATIONS:
        return f"fewer than {COMPILE_FROM_ITERATIONS} meta-training iterations"
    if choice == "auto" and any(len(p.shape) == 4 for p in plan.params):
        # Measured to pay on MLPs, whose steps are mostly per-operator cost; a conv net's
        # are mostly arithmetic, and its first compile takes minutes.
        return "a conv net (`device.compile: true` compiles it)"
    if not_stacked:
        return f"the eager engine runs it ({not_stacked})"
    if precision.amp:
        return "bf16 autocast is not traced"
    return None


def _matching_parameters(module: nn.Module, plan: Plan) -> dict[str, Tensor]:
    current = dict(module.named_parameters())
    planned = {p.name: tuple(p.shape) for p in plan.params}
    problems = [f"the plan has {n!r}, the model does not" for n in planned if n not in current]
    problems += [f"the model has {n!r}, the plan does not" for n in current if n not in planned]
    problems += [f"{n!r} is {tuple(current[n].shape)} in the model, {s} in the plan"
                 for n, s in planned.items() if n in current and tuple(current[n].shape) != s]
    if problems:
        raise RunError("the compiled model and its plan disagree: " + "; ".join(problems))
    return current


def _copy_into(target: dict[str, Tensor], source: dict[str, Tensor], group: str) -> None:
    if set(target) != set(source):
        raise RunError(f"the checkpoint does not match this spec: its {group} are "
                       f"{sorted(source)}, this model's are {sorted(target)}")
    for key, tensor in target.items():
        if tensor.shape != source[key].shape:
            raise RunError(f"the checkpoint does not match this spec: {group} {key!r} is "
                           f"{tuple(source[key].shape)} there, {tuple(tensor.shape)} here")
        tensor.copy_(source[key])
