"""The typed experiment: what a resolved `.mt` experiment must look like.

pydantic does the type checking; every model forbids unknown fields so a misspelt key is
an error, never silently ignored. Components written as calls (`sgd(lr: 10)`) arrive as
`{"kind": "sgd", "lr": 10}` and are told apart by `kind`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_serializer, model_validator
from pydantic.functional_validators import BeforeValidator

from .datasets import Dataset
from .spec_base import Component, Fraction, PositiveInt, Rate, Strict

# ---- data ----------------------------------------------------------------------------------

def _listify(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


def _absolute(v: Any) -> Any:
    """A data folder as an absolute path (relative ones are taken from the working folder),
    so a run folder's operative spec finds its data from anywhere."""
    import os

    return os.path.abspath(os.path.expanduser(v)) if isinstance(v, str) else v


class Data(Strict):
    root: Annotated[str | None, BeforeValidator(_absolute)] = None
    train: Dataset
    valid: Dataset | None = None
    test: Annotated[list[Dataset], BeforeValidator(_listify)] = []

    @model_validator(mode="before")
    @classmethod
    def _splits_by_role(cls, data: Any) -> Any:
        """A dataset without `split` takes its role's (datasets.default_split): a meta-test
        set never silently reads the train split."""
        from .datasets import default_split
        from .spec_base import is_name  # a bare name; a quoted string is no dataset

        if not isinstance(data, dict):
            return data
        data = dict(data)
        bare = {k: ({"kind": str(v)} if is_name(v) else v) for k, v in data.items()}
        train = bare.get("train")
        for role in ("train", "valid"):
            split = default_split(role, bare.get(role), train)
            if split is not None:
                data[role] = {**bare[role], "split": split}
        tests = data.get("test")
        if tests is not None:
            listed = [({"kind": str(t)} if is_name(t) else t) for t in _listify(tests)]
            data["test"] = [({**t, "split": s} if (s := default_split("test", t, train)) else t)
                            for t in listed]
        return data


# ---- task, roles, mask ------------------------------------------------------------------------

class Task(Strict):
    ways: PositiveInt | None = None  # None for regression
    shots: PositiveInt
    queries: PositiveInt | None = None  # per class; defaults to shots (the paper's protocol)


Role = Literal["masked", "meta", "fixed"]
WeightInit = Literal["kaiming_normal", "kaiming_uniform", "constant", "signed_constant", "torch_default"]
Init = Literal["kaiming_normal", "kaiming_uniform", "constant", "signed_constant", "zeros", "ones",
               "torch_default"]


class FixedAtInit(Strict):
    """Per-tensor threshold: the `sparsity` quantile of the initial scores, fixed."""

    kind: Literal["fixed_at_init"]
    sparsity: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


Threshold = Component(FixedAtInit)


class IteRand(Strict):
    every: PositiveInt = 1000
    prob: Fraction = 0.0


class Mask(Strict):
    weights: WeightInit = "kaiming_normal"
    scores: Literal["kaiming_uniform", "kaiming_normal"] = "kaiming_uniform"
    threshold: Threshold = FixedAtInit(kind="fixed_at_init")
    iterand: IteRand | None = None


class Inner(Strict):
    steps: Annotated[int, Field(ge=0)] = 1
    test_steps: Annotated[int, Field(ge=0)] | None = None  # defaults to steps
    lr: dict[str, Rate]
    order: Literal["first", "second"] = "second"

    @field_validator("lr", mode="before")
    @classmethod
    def _selector_map(cls, v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"**": v}
        if not isinstance(v, dict):
            raise ValueError(f'must be a number, or numbers by selector (lr["head.**"]: 0), got {v!r}')
        return v


# ---- outer loop -----------------------------------------------------------------------------

class SGD(Strict):
    kind: Literal["sgd"]
    lr: Annotated[Rate, Field(gt=0.0)]
    momentum: Fraction = 0.0
    nesterov: bool = False
    weight_decay: Rate = 0.0


class Adam(Strict):
    kind: Literal["adam", "adamw"]
    lr: Annotated[Rate, Field(gt=0.0)]
    betas: tuple[Fraction, Fraction] = (0.9, 0.999)
    weight_decay: Rate = 0.0


class Cosine(Strict):
    """Cosine decay to 0 over the run, after `warmup` iterations of linear warmup."""

    kind: Literal["cosine"]
    warmup: Annotated[int, Field(ge=0)] = 0


Optimizer = Component(SGD, Adam)


class Chunks(Strict):
    """The meta-batch `size` tasks at a time: vectorised within a chunk, chunk after chunk."""

    kind: Literal["chunks"]
    size: PositiveInt


# How the tasks of a meta-batch are computed: `auto` lets the engine choose from its memory
# estimate; the others force one way. Told apart by shape, so an error names one branch.
TasksIn = Annotated[
    Union[Annotated[Literal["auto", "vmap", "sequential"], Tag("name")], Annotated[Chunks, Tag("call")]],
    Discriminator(lambda v: "call" if isinstance(v, dict) else "name")]


class Outer(Strict):
    optimizer: Optimizer
    schedule: Component(Cosine) | None = None
    iterations: Annotated[int, Field(ge=0)]  # 0: no meta-training (e.g. a random-mask baseline)
    meta_batch: PositiveInt = 4
    tasks_in: TasksIn = "auto"


class Eval(Strict):
    every: PositiveInt = 1000
    valid_tasks: PositiveInt = 100
    test_tasks: PositiveInt = 1000
    # Which state is meta-tested: the last, or the best on the validation split.
    checkpoint: Literal["last", "best"] = "last"


class Checkpointing(Strict):
    """How often a run writes checkpoint.pt (always also at the last iteration and when it is
    stopped by a signal). Left out, it follows `eval.every`."""

    every: PositiveInt


class Device(Strict):
    """Where and how the engine computes. `auto` options are decided by the engine, which
    knows the device and the model: on CUDA, a model with convolutions runs on channels-last
    tensors and, with `amp: auto`, its forward pass in bf16 autocast; on the CPU both are off.

    `amp` defaults to off: bf16 meta-gradients differ from fp32 by 7-15% (relative) on conv
    nets here, through second-order inner loops, and the paper's numbers are fp32."""

    type: Literal["auto", "cpu", "cuda"] = "auto"
    # `amp: none` reads as off, like `schedule: none`.
    amp: Annotated[Literal["auto", "bf16", "off"],
                   BeforeValidator(lambda v: "off" if v is None else v)] = "off"
    channels_last: Literal["auto", True, False] = "auto"
    # Compile the meta-gradient into fused kernels (engine.compiled); `auto` does so for MLPs
    # meta-trained for at least 1000 iterations (engine.meta.COMPILE_FROM_ITERATIONS).
    compile: Literal["auto", True, False] = "auto"

    @field_validator("channels_last", "compile", mode="before")
    @classmethod
    def _auto_or_bool(cls, v):
        if v != "auto" and not isinstance(v, bool):
            raise ValueError(f"must be `auto`, `true` or `false`, got {v!r}")
        return v

    @model_serializer(mode="wrap")
    def _without_auto_compile(self, handler):
        # `compile: auto` is left out of the operative spec, as it was before the option
        # existed: every existing run keeps its hash.
        data = handler(self)
        if data.get("compile") == "auto":
            del data["compile"]
        return data


class Log(Strict):
    """Experiment trackers that receive each run besides its folder (docs/reports.md):
    metrics, the resolved spec as parameters, spec.mt and figures as artifacts."""

    tensorboard: bool = False
    mlflow: bool = False


def _device(v: Any) -> Any:
    """`device: cpu` is short for `device { type: cpu }`."""
    return {"type": v} if isinstance(v, str) else v


class Experiment(Strict):
    seeds: Annotated[list[int], Field(min_length=1)] = [1]
    device: Annotated[Device, BeforeValidator(_device)] = Device()
    data: Data
    task: Task
    model: Any  # a CallValue naming a `model` definition; see compile.graph
    params: dict[str, Role]
    # Initial values by selector, over each layer's default (weights kaiming_normal, biases
    # zeros, batchnorm ones/zeros) and, for masked tensors, over `mask.weights`.
    init: dict[str, Init] = {}
    mask: Mask = Mask()
    inner: Inner
    outer: Outer
    eval: Eval = Eval()
    checkpoint: Checkpointing | None = None
    log: Log | None = None  # left out of the operative spec when absent (run hashes unchanged)

    @model_validator(mode="after")
    def _queries_default(self):
        if self.task.queries is None:
            object.__setattr__(self.task, "queries", self.task.shots)
        return self
