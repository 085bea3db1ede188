"""The meta-training plan: what the engine runs, with every decision already made.

The compiler resolves selectors, defaults and inheritance; the engine never sees a
selector, only one `ParamPlan` per parameter tensor. Importing this module must not
import torch, so `mtdsl check` and `mtdsl show` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["masked", "meta", "fixed"]


@dataclass(frozen=True)
class ParamPlan:
    """One parameter tensor of the compiled model.

    role:
      masked  the value is drawn once (mask.weights init) and never meta-learned; a score
              tensor of the same shape is meta-learned and the forward pass uses
              value * (score >= threshold), straight-through to the score.
      meta    the initial value is meta-learned (MAML).
      fixed   kept at its initial value; never meta-learned.
    Every role adapts in the inner loop with `inner_lr` (0 = never moves); a masked tensor
    adapts only inside its mask.
    init: how the initial value is drawn: "kaiming_normal", "kaiming_uniform", "constant"
      (gain / sqrt(fan_in), the paper's section 4.1.2), "signed_constant", "zeros", "ones",
      "torch_default" (uniform +-1/sqrt(fan_in), torch's default for Linear and Conv).
    """

    name: str
    shape: tuple[int, ...]
    role: Role
    inner_lr: float
    init: str
    # Inputs feeding one output unit of the layer that owns this tensor; a bias vector shares
    # its layer's (needed by "torch_default", whose bound is 1/sqrt(fan_in)). None: from
    # the tensor's own shape.
    fan_in: int | None = None

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass(frozen=True)
class MaskPlan:
    scores_init: str = "kaiming_uniform"
    # The threshold of each masked tensor is the `sparsity` quantile of its initial scores,
    # fixed at initialisation (0 keeps everything at the start).
    sparsity: float = 0.0
    # IteRand: every `iterand_every` outer steps, each pruned weight is re-drawn with
    # probability `iterand_prob`. None disables it.
    iterand_every: int | None = None
    iterand_prob: float = 0.0


@dataclass(frozen=True)
class InnerPlan:
    steps: int = 1
    test_steps: int = 1
    order: Literal["first", "second"] = "second"


@dataclass(frozen=True)
class OptimizerPlan:
    name: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = 0.001
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class SchedulePlan:
    name: Literal["none", "cosine"] = "none"
    warmup: int = 0  # linear warmup iterations, from lr/warmup up to lr


@dataclass(frozen=True)
class OuterPlan:
    optimizer: OptimizerPlan = field(default_factory=OptimizerPlan)
    schedule: SchedulePlan = field(default_factory=SchedulePlan)
    iterations: int = 1000
    meta_batch: int = 4
    # "vmap" runs the meta-batch as one vectorised computation; "sequential" one task at a
    # time; "chunks" `chunk_size` tasks at a time, vectorised within a chunk; "auto" lets the
    # engine choose from its memory estimate. All give the same gradients.
    tasks_in: Literal["auto", "vmap", "sequential", "chunks"] = "auto"
    chunk_size: int | None = None  # tasks per chunk, for "chunks"


@dataclass(frozen=True)
class TaskPlan:
    ways: int | None  # None for regression
    shots: int
    queries: int


@dataclass(frozen=True)
class EvalPlan:
    every: int = 1000
    valid_tasks: int = 100
    test_tasks: int = 1000


@dataclass(frozen=True)
class DevicePlan:
    """How the engine computes; "auto" is decided by the engine, which knows the device and
    the model (see engine.precision)."""

    amp: Literal["auto", "bf16", "off"] = "off"  # bf16 autocast of the forward pass
    channels_last: Literal["auto", True, False] = "auto"  # memory format of conv tensors
    compile: Literal["auto", True, False] = "auto"  # the meta-gradient compiled (engine.compiled)


@dataclass(frozen=True)
class Plan:
    params: tuple[ParamPlan, ...]
    mask: MaskPlan
    inner: InnerPlan
    outer: OuterPlan
    task: TaskPlan
    eval: EvalPlan
    loss: Literal["cross_entropy", "mse"]
    device: DevicePlan = field(default_factory=DevicePlan)

    def param(self, name: str) -> ParamPlan:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def by_role(self, role: Role) -> tuple[ParamPlan, ...]:
        return tuple(p for p in self.params if p.role == role)
