"""The MetaLearner: meta-gradients, the outer step, IteRand, evaluation and checkpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import grad_and_value, vmap

from mtdsl.compile.plan import Plan
from mtdsl.data.batch import TaskBatch
from mtdsl.engine.init import draw, seeded_generator
from mtdsl.engine.inner import InnerLoop, last_feature_weight, score_key
from mtdsl.engine.masking import hard_mask, iterand_redraw, threshold_at_sparsity
from mtdsl.engine.optim import build_optimizer, lr_factor
from mtdsl.errors import RunError


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
    """

    def __init__(self, module: nn.Module, plan: Plan, *, seed: int,
                 device: str | torch.device = "cpu", eval_chunk: int | None = None):
        self.plan = plan
        self.device = torch.device(device)
        self.module = module.to(self.device)
        current = _matching_parameters(module, plan)
        self.eval_chunk = eval_chunk or max(plan.outer.meta_batch, 1)

        weight_rng = seeded_generator(seed, "weights")
        score_rng = seeded_generator(seed, "scores")
        self.weights: dict[str, Tensor] = {}
        self.learned: dict[str, Tensor] = {}
        self.thresholds: dict[str, Tensor] = {}
        for p in plan.params:
            dtype = current[p.name].dtype
            value = draw(p.init, p.shape, weight_rng, fan=p.fan_in).to(self.device, dtype)
            if p.role == "meta":
                self.learned[p.name] = value.requires_grad_()
            else:
                self.weights[p.name] = value
            if p.role == "masked":
                scores = draw(plan.mask.scores_init, p.shape, score_rng)
                threshold = threshold_at_sparsity(scores, plan.mask.sparsity)
                self.thresholds[p.name] = threshold.to(self.device, dtype)
                self.learned[score_key(p.name)] = scores.to(self.device, dtype).requires_grad_()
        self._iterand_rng = seeded_generator(seed, "iterand")

        self.inner = InnerLoop(module, plan.params, plan.loss, self.weights, self.thresholds,
                               probe=last_feature_weight(plan.params))
        self.optimizer = (build_optimizer(plan.outer.optimizer, list(self.learned.values()))
                          if self.learned else None)
        self.iteration = 0

    # -- meta-training -------------------------------------------------------------------

    def current_lr(self) -> float:
        outer = self.plan.outer
        return outer.optimizer.lr * lr_factor(outer.schedule, self.iteration, outer.iterations)

    def meta_gradients(self, batch: TaskBatch) -> tuple[dict[str, Tensor], StepStats]:
        """Gradients of the mean query loss over the meta-batch w.r.t. `learned` (same keys),
        without touching the optimizer."""
        if not self.learned:
            raise RunError("nothing is meta-learned: every parameter is fixed. Mark some "
                           "parameters as masked or meta.")
        batch = batch.to(self.device)
        tasks = (batch.support_x, batch.support_y, batch.query_x, batch.query_y)
        task_gradient = grad_and_value(
            partial(self.inner.query, steps=self.plan.inner.steps, order=self.plan.inner.order),
            has_aux=True)
        learned = {k: t.detach() for k, t in self.learned.items()}
        if self.plan.outer.tasks_in == "vmap":
            # vmap of per-task gradients, not the gradient of a vmapped loss: the latter gives
            # wrong second-order gradients through batch_norm in torch 2.x.
            grads, (_, metrics) = vmap(task_gradient, in_dims=(None, 0, 0, 0, 0),
                                       randomness="different")(learned, *tasks)
        else:
            per_task = [task_gradient(learned, *(t[i] for t in tasks)) for i in range(batch.tasks)]
            grads = {k: torch.stack([g[k] for g, _ in per_task]) for k in learned}
            metrics = {k: torch.stack([m[k] for _, (_, m) in per_task]) for k in per_task[0][1][1]}
        grads = {k: g.mean(0) for k, g in grads.items()}
        means = {k: v.mean().item() for k, v in metrics.items()}
        return grads, StepStats(lr=self.current_lr(), **means)

    def meta_step(self, batch: TaskBatch) -> StepStats:
        """One outer step: meta-gradients, the optimizer at the scheduled lr, then IteRand."""
        lr = self.current_lr()
        grads, stats = self.meta_gradients(batch)
        if not math.isfinite(stats.loss):
            raise RunError(f"meta-training diverged at iteration {self.iteration + 1}: the query "
                           f"loss is {stats.loss}. Lower the outer lr or the inner lrs.")
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            for key, tensor in self.learned.items():
                tensor.grad = grads[key]
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
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
        query = partial(self.inner.query, self._detached_learned(), steps=steps, order="first")
        chunks = []
        for start in range(0, batch.tasks, self.eval_chunk):
            part = TaskBatch(*(t[start:start + self.eval_chunk] for t in (
                batch.support_x, batch.support_y, batch.query_x, batch.query_y))).to(self.device)
            tasks = (part.support_x, part.support_y, part.query_x, part.query_y)
            if self.plan.outer.tasks_in == "vmap":
                _, metrics = vmap(query, randomness="different")(*tasks)
            else:
                per_task = [query(*(t[i] for t in tasks))[1] for i in range(part.tasks)]
                metrics = {k: torch.stack([m[k] for m in per_task]) for k in per_task[0]}
            chunks.append({k: v.cpu() for k, v in metrics.items()})
        joined = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
        return EvalStats(loss=joined["loss"], accuracy=joined.get("accuracy"),
                         mse=joined.get("mse"))

    @torch.no_grad()
    def adapt(self, support_x: Tensor, support_y: Tensor,
              steps: int | None = None) -> dict[str, Tensor]:
        """One task's effective parameters after adaptation (no task axis on the inputs)."""
        steps = self.plan.inner.test_steps if steps is None else steps
        effective, _ = self.inner.adapt(self._detached_learned(), support_x.to(self.device),
                                        support_y.to(self.device), steps, "first")
        return {k: v.detach() for k, v in effective.items()}

    # -- reporting and export --------------------------------------------------------------

    @torch.no_grad()
    def masks(self) -> dict[str, Tensor]:
        return {p.name: hard_mask(self.learned[score_key(p.name)], self.thresholds[p.name])
                for p in self.plan.by_role("masked")}

    def sparsity(self) -> dict[str, float]:
        """Fraction of entries pruned, per masked tensor."""
        return {name: 1.0 - mask.mean().item() for name, mask in self.masks().items()}

    def overall_sparsity(self) -> float:
        """Fraction pruned over all masked entries together (0 without masked tensors)."""
        masks = self.masks()
        total = sum(m.numel() for m in masks.values())
        return sum((m == 0).sum().item() for m in masks.values()) / total if total else 0.0

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
