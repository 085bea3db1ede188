"""The stacked meta-gradient compiled into fused kernels.

A second-order meta-step of the Omniglot MLP dispatches about 900 operators, and on a CPU
their fixed cost (dispatch, autograd's bookkeeping, allocation: about 4 us each) is a third
to a half of the step (docs/performance.md, "Per-operator cost"). torch.compile cannot take
the step as it stands: Dynamo stops at `torch.autograd.grad`, and a compiled graph cannot be
differentiated twice. So the whole computation (inner loop, query loss and the meta-gradient
by the learned tensors) is first traced through autograd with fake tensors into one graph of
plain operators, with every derivative already written out as operators and no autograd
left; Inductor then compiles that graph ahead of time into a shared library, fusing the
elementwise work around the matrix products. The library is kept on disk
(engine.compiled_store), so a later run of the same shapes (another seed, a resumed run, a
sweep's other points) loads it in a millisecond, with neither tracing nor Inductor.

The graph holds the plan's constants (inner learning rates, step counts, layer arguments)
and takes every tensor as an input: IteRand and checkpoint loading change weights and
thresholds in place, and the compiled function reads them as they are. Anything that cannot
be traced or compiled (a data-dependent operator, random numbers, a missing C++ compiler)
leaves the eager engine in charge, with one line saying why; so does a compiled result that
disagrees with the eager engine on the first meta-batch, which is computed both ways.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Callable

import torch
from torch import Tensor

from mtdsl.engine import compiled_store
from mtdsl.engine.stacked_inner import StackedLoop

# A compiled result is accepted when it agrees with the eager engine's on the first
# meta-batch to this fraction of the meta-gradient's norm: a guard against a wrong graph,
# which is off by the gradient's own size. The two differ by float32 rounding, about 1e-6,
# except where a unit's pre-activation lies within rounding of relu's kink: the two sides
# then take different branches, each right within float32, and the meta-gradients differ
# by up to about 1e-2 (measured: 1.1e-2, MAML, 32 tasks of 75 queries).
AGREEMENT = 0.05

# Compiled functions by what determines their graph, shared by every learner of the process:
# the recipe's throwaway learner that times a run's estimate and the run's own learner
# compile once between them.
_COMPILED: dict[tuple, Callable | str] = {}


@dataclasses.dataclass
class CompiledGradients:
    """The meta-gradient of a stacked loop, compiled per shape of the tasks it is given.

    `__call__` returns (gradients by the learned tensors, metrics) as the eager path computes
    them, or None where this shape is not compiled (the eager engine then computes it);
    `why` then holds a line saying why, whichever learner of the process found it out."""

    loop: StackedLoop
    steps: int
    order: str
    why: str | None = None
    seconds: float = 0.0  # spent tracing, compiling or loading in this learner
    built: bool = False  # compiled by this learner (else loaded: an earlier run compiled it)

    def __post_init__(self):
        # What of the key never changes, formed once: the graph's repr alone takes about
        # 100 us, 1% of a compiled meta-step.
        loop = self.loop
        self._plan_key = (repr(_operative(loop.graph)), repr(loop.params), loop.loss, loop.probe,
                          self.steps, self.order, tuple(loop.weights), tuple(loop.thresholds))

    def key(self, learned: dict[str, Tensor], tasks: tuple[Tensor, ...]) -> tuple:
        # From the tensors as they are: `_inputs` (formed once a step, in `__call__`) keeps
        # their shapes, dtypes and devices.
        loop = self.loop
        return (self._plan_key, tuple(learned),
                tuple((t.shape, t.dtype, t.device) for t in (
                    *learned.values(), *loop.weights.values(), *loop.thresholds.values(), *tasks)))

    def __call__(self, learned: dict[str, Tensor], tasks: tuple[Tensor, ...],
                 eager: Callable[[], tuple[list[Tensor], dict[str, Tensor]]]
                 ) -> tuple[list[Tensor], dict[str, Tensor]] | None:
        key = self.key(learned, tasks)
        compiled = _COMPILED.get(key)
        if compiled is None:
            compiled = self._compile(learned, tasks, eager)
            _COMPILED[key] = compiled
        if isinstance(compiled, str):
            self.why = compiled
            return None
        return compiled(self._inputs(learned, tasks))

    def _inputs(self, learned, tasks) -> list[Tensor]:
        loop = self.loop
        # Contiguous, as the library was compiled for: a strided view would be misread.
        return [t.detach().contiguous() for t in (*learned.values(), *loop.weights.values(),
                                                  *loop.thresholds.values(), *tasks)]

    def _compile(self, learned, tasks, eager) -> Callable | str:
        """The compiled function, or the line saying why there is none."""
        began = time.perf_counter()
        try:
            inputs = self._inputs(learned, tasks)
            device = inputs[0].device
            name = compiled_store.entry_name(self.key(learned, tasks), device)
            found = compiled_store.load(name, device)
            if found is None:
                with compiled_store.building(name):
                    found = compiled_store.load(name, device)  # built while this one waited
                    if found is None:
                        graph, names = _trace(self._traced(learned), inputs)
                        with _quiet():
                            found = compiled_store.build(name, graph, inputs, names, device)
                        self.built = True
            compiled = _named(*found)
            with torch.no_grad():
                grads, _ = compiled(inputs)
            expected, _ = eager()
            gap = relative_gap(grads, expected)
            if not gap <= AGREEMENT:
                raise _Refused(f"its meta-gradient differs from the eager engine's by {gap:.1e} "
                               "of its norm")
        except Exception as e:  # any failure of tracing or compiling leaves the eager engine
            why = str(e) if isinstance(e, _Refused) else f"{type(e).__name__}: {_first_line(e)}"
            return f"meta-gradient not compiled ({why}); the eager engine computes it"
        finally:
            self.seconds += time.perf_counter() - began
        return compiled

    def _traced(self, learned: dict[str, Tensor]) -> Callable:
        """The meta-gradient as a function of flat tensors, for tracing."""
        loop, names = self.loop, (list(learned), list(self.loop.weights), list(self.loop.thresholds))

        def gradients(*flat: Tensor):
            parts, at = [], 0
            for group in names:
                parts.append(dict(zip(group, flat[at:at + len(group)])))
                at += len(group)
            leaves = {k: t.requires_grad_() for k, t in parts[0].items()}
            here = dataclasses.replace(loop, weights=parts[1], thresholds=parts[2])
            losses, metrics = here.query(leaves, *flat[at:], steps=self.steps, order=self.order,
                                         training=True)
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()), allow_unused=True)
            grads = [torch.zeros_like(t) if g is None else g for t, g in zip(leaves.values(), grads)]
            return [*grads, *metrics.values()], list(metrics)

        return gradients


def _operative(value):
    """What of a compiled layer graph determines the traced operators: its fields but the
    source spans, which name the spec's files relative to the working folder (a run and its
    `--estimate` from another folder must find the same library)."""
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, *((f.name, _operative(getattr(value, f.name)))
                                        for f in dataclasses.fields(value) if f.name != "span"))
    if isinstance(value, (list, tuple)):
        return tuple(_operative(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _operative(v)) for k, v in value.items())
    return value


class _Refused(Exception):
    pass


def relative_gap(got: list[Tensor], expected: list[Tensor]) -> float:
    """The largest difference of one tensor's gradients, relative to the norm of all of them:
    a tensor whose true gradient is zero (a bias before batch norm) holds only rounding
    noise, which differs between any two computations."""
    scale = torch.cat([e.detach().double().flatten() for e in expected]).norm().item()
    gaps = [(g.detach().double() - e.detach().double()).norm().item() for g, e in zip(got, expected)]
    return max(gaps, default=0.0) / max(scale, 1e-30)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else "no message"


def _trace(gradients: Callable, inputs: list[Tensor]) -> tuple[torch.fx.GraphModule, list[str]]:
    """`gradients` traced with fake tensors into a graph of plain operators (Inductor's
    decompositions) on flat inputs, and the names of its metric outputs."""
    from torch._inductor.decomposition import select_decomp_table
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    fake_mode = FakeTensorMode(shape_env=ShapeEnv(), static_shapes=True)
    fake = [fake_mode.from_tensor(t, static_shapes=True) for t in inputs]
    names: list[str] = []

    def flat(*args):
        outputs, metric_names = gradients(*(a.detach() for a in args))
        names[:] = metric_names
        return outputs

    with fake_mode:
        graph = make_fx(flat, decomposition_table=select_decomp_table(), tracing_mode="fake")(*fake)
    random = sorted({str(n.target) for n in graph.graph.nodes
                     if n.op == "call_function" and _is_random(n.target)})
    if random:  # Inductor draws its own random numbers: not those of torch's generator
        raise _Refused(f"it draws random numbers ({', '.join(random)})")
    return graph, names


def _named(run: compiled_store.Run, names: list[str]) -> Callable:
    """`run` returning (gradients, metrics by name): its last outputs are the metrics."""
    def call(args: list[Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        outputs = run(args)
        split = len(outputs) - len(names)
        return list(outputs[:split]), dict(zip(names, outputs[split:]))
    return call


def _is_random(target) -> bool:
    return torch.Tag.nondeterministic_seeded in getattr(target, "tags", ())


@contextlib.contextmanager
def _quiet():
    """Inductor's C++ toolchain warns, once per process, that CUDA is absent on a CPU-only
    machine; that is not the user's concern."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)
