"""The outer optimizer and its per-iteration learning-rate schedule."""

from __future__ import annotations

import math

import torch

from mtdsl.compile.plan import OptimizerPlan, SchedulePlan


ADAM_EPS = 1e-8  # torch.optim.Adam's default; specs do not set it


class OuterOptimizer:
    """The outer step over the meta-learned tensors: SGD (momentum, Nesterov, L2 weight
    decay), Adam (L2 weight decay) or AdamW (decoupled weight decay), each the arithmetic of
    torch.optim's single-tensor implementation, operation for operation, so the steps are the
    same to the bit (tests/test_engine_init_optim.py). Not torch.optim itself: its first use
    imports torch's compiler stack (torch._dynamo), 1.3 s of every run's start.

    `state_dict` has torch.optim's layout (per-tensor state by position, one parameter group),
    so a checkpoint written by either loads in the other."""

    def __init__(self, plan: OptimizerPlan, tensors: list[torch.Tensor]):
        if plan.name not in ("sgd", "adam", "adamw"):
            raise ValueError(f"unknown optimizer {plan.name!r}")
        self.plan, self.tensors = plan, tensors
        self.lr = plan.lr
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in tensors]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        self.lr = lr
        for param, grad, state in zip(self.tensors, grads, self.state):
            if self.plan.name == "sgd":
                self._sgd(param, grad, state, lr)
            else:
                self._adam(param, grad, state, lr)

    def _sgd(self, param, grad, state, lr) -> None:
        plan = self.plan
        if plan.weight_decay != 0:
            grad = grad.add(param, alpha=plan.weight_decay)
        if plan.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(plan.momentum).add_(grad)  # no dampening
            grad = grad.add(buf, alpha=plan.momentum) if plan.nesterov else buf
        param.add_(grad, alpha=-lr)

    def _adam(self, param, grad, state, lr) -> None:
        plan = self.plan
        (beta1, beta2), eps = plan.betas, ADAM_EPS
        if not state:
            # torch.optim keeps the step count as a float32 tensor; its value is read back
            # as the same float32 here.
            state.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(param),
                         exp_avg_sq=torch.zeros_like(param))
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        if plan.weight_decay != 0:
            if plan.name == "adamw":
                param.mul_(1 - lr * plan.weight_decay)
            else:
                grad = grad.add(param, alpha=plan.weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = state["step"].item()
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict:
        plan = self.plan
        group = {"lr": self.lr, "weight_decay": plan.weight_decay,
                 "params": list(range(len(self.tensors)))}
        if plan.name == "sgd":
            group.update(momentum=plan.momentum, dampening=0, nesterov=plan.nesterov)
        else:
            group.update(betas=plan.betas, eps=ADAM_EPS, amsgrad=False,
                         decoupled_weight_decay=plan.name == "adamw")
        return {"state": {i: dict(s) for i, s in enumerate(self.state) if s},
                "param_groups": [group]}

    def load_state_dict(self, state: dict) -> None:
        groups = state["param_groups"]
        count = sum(len(g["params"]) for g in groups)
        if len(groups) != 1 or count != len(self.tensors):
            raise ValueError(f"the optimizer state holds {count} tensors in {len(groups)} "
                             f"groups; this run meta-learns {len(self.tensors)} in one")
        self.lr = groups[0]["lr"]
        self.state = [{} for _ in self.tensors]
        for i, saved in state["state"].items():
            param = self.tensors[int(i)]
            # Copies: the state given may be another optimizer's live tensors.
            self.state[int(i)] = {k: v.clone() if k == "step" else
                                  v.to(param.device, param.dtype, copy=True)
                                  for k, v in saved.items() if v is not None}


def lr_factor(schedule: SchedulePlan, iteration: int, iterations: int) -> float:
    """Multiplier of the base lr at outer step `iteration` (0-based).

    cosine: lr*(it+1)/warmup during the warmup, then a cosine from lr down to 0 at
    `iterations`. none: constant.
    """
    if schedule.name == "none":
        return 1.0
    if schedule.name == "cosine":
        if iteration < schedule.warmup:
            return (iteration + 1) / schedule.warmup
        decay = max(iterations - schedule.warmup, 1)
        progress = min((iteration - schedule.warmup) / decay, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule.name!r}")
