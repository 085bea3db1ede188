"""How many tasks the engine computes at once: an estimate of one task's memory against the
memory the device has free.

The estimate measures what autograd saves for one forward pass over a task's support set
and over its query set (from two forward passes over a few examples, see `_saved_bytes`), then
scales that by how the inner loop keeps those graphs: second order keeps every inner step's
forward graph and the graph of its gradient until the meta-gradient is taken, first order
keeps one step at a time. The factors below are upper bounds of the peak resident memory
measured on the CPU for conv4, ResNet-12 and WRN-28 (benchmarks/bench_engine.py prints
estimate against measurement; for the MLP, tens of MB, the process's own allocations blur
the measurement), not derived quantities: under-estimating runs out of memory,
over-estimating only splits the meta-batch into more chunks.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mtdsl.errors import RunError

# Multiples of one forward pass's saved tensors held at the peak of a task's meta-gradient.
# Measured on the CPU: a second-order inner step holds 7-13 (the double backward of batch
# norm and pooling keeps several activation-sized tensors per layer), the query pass up to 3.
SECOND_ORDER_STEP = 14.0  # per inner step, kept until the meta-gradient is taken
FIRST_ORDER_STEP = 3.0  # one inner step's forward and backward, freed before the next
QUERY = 3.0  # the query forward, and its backward as the meta-gradient is taken
# Parameter-sized tensors per task: per inner step the fast weights, their gradient, the
# effective (masked) weights and the gradient's graph; then the masks, the task's
# meta-gradient, the running sum of meta-gradients and the optimizer's share.
PARAM_COPIES_PER_STEP = 5
PARAM_COPIES = 6
# Share of the free memory the engine plans to use: allocator fragmentation, convolution
# workspaces and what the data loader holds live in the rest.
USABLE = 0.7


@dataclass(frozen=True)
class Footprint:
    """Bytes of one task: what autograd saves for a forward pass over its support set and
    over its query set, and one copy of every parameter tensor."""

    support: int
    query: int
    params: int

    def train_bytes(self, steps: int, order: str) -> int:
        """Peak bytes of one task's meta-gradient."""
        if order == "second":
            inner = steps * (SECOND_ORDER_STEP * self.support + PARAM_COPIES_PER_STEP * self.params)
        else:
            inner = min(steps, 1) * FIRST_ORDER_STEP * self.support + PARAM_COPIES_PER_STEP * self.params
        return math.ceil(inner + QUERY * self.query + PARAM_COPIES * self.params)

    def eval_bytes(self) -> int:
        """Peak bytes of one task's first-order adaptation and query pass (no meta-gradient)."""
        return math.ceil(FIRST_ORDER_STEP * self.support + self.query
                         + (PARAM_COPIES_PER_STEP + 1) * self.params)


def measure(module: nn.Module, tensors: dict[str, Tensor], support_x: Tensor,
            query_x: Tensor) -> Footprint:
    """The footprint of one task whose support and query inputs have the shapes and dtypes
    of `support_x` and `query_x` (no task axis), with parameters shaped like `tensors`."""
    params = {k: t.detach().requires_grad_() for k, t in tensors.items()}
    return Footprint(support=_saved_bytes(module, params, support_x),
                     query=_saved_bytes(module, params, query_x),
                     params=sum(t.numel() * t.element_size() for t in tensors.values()))


# Example counts of the two measured passes: batch norm needs two examples per channel.
FEW, MORE = 2, 3


def _saved_bytes(module: nn.Module, params: dict[str, Tensor], x: Tensor) -> int:
    """What autograd saves for a forward pass over x's examples. Every saved tensor is either
    per example (an activation, a pooling index) or not (a per-channel statistic, a view of a
    weight), so the bytes are affine in the number of examples: two passes over a few zero
    examples fix the line. Not the meta device, which computes nothing: its Python kernels
    import torch's compiler stack, 1.3 s of every run's start."""
    device = next(iter(params.values())).device if params else x.device
    # The passes leave no trace: buffers (batch norm's running statistics, in a module that
    # keeps them) are copies, and dropout draws from a generator given back afterwards.
    state = {**{k: b.clone() for k, b in module.named_buffers()}, **params}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        few, more = (_saved_by_pass(module, state, x.new_zeros(n, *x.shape[1:], device=device),
                                    params) for n in (FEW, MORE))
    return few + (more - few) * (x.shape[0] - FEW) // (MORE - FEW)


def _saved_by_pass(module: nn.Module, state: dict[str, Tensor], inputs: Tensor,
                   params: dict[str, Tensor]) -> int:
    saved: dict[int, Tensor] = {}  # by identity: one activation saved by two layers counts once

    def pack(t: Tensor) -> Tensor:
        saved[id(t)] = t
        return t

    # enable_grad: evaluation asks under no_grad, where nothing would be saved.
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        functional_call(module, state, (inputs,))
    parameters = {id(t) for t in params.values()}
    return sum(t.numel() * t.element_size() for k, t in saved.items() if k not in parameters)


def free_bytes(device: torch.device) -> int:
    """Memory the engine may still allocate on `device`: on CUDA what the driver reports free
    plus what torch's allocator holds unused; on the CPU the kernel's MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def tasks_that_fit(per_task: int, free: int, limit: int) -> int:
    """How many tasks at once, between 1 and `limit`, keep within the usable share of `free`."""
    return max(1, min(limit, int(USABLE * free) // max(per_task, 1)))


@contextlib.contextmanager
def out_of_memory_is_a_run_error(device: torch.device, chunk: int):
    """Device out-of-memory inside the block, computing `chunk` tasks at once, becomes a
    RunError that says what to change in the spec."""
    try:
        yield
    except torch.OutOfMemoryError:
        if chunk > 1:
            advice = (f"{chunk} tasks at once do not fit: set `outer.tasks_in: chunks(size: "
                      f"{max(chunk // 2, 1)})` or `sequential`")
        else:
            advice = ("one task does not fit: use fewer shots or queries, fewer inner steps, "
                      "`inner.order: first`, or `device { amp: bf16 }`")
        raise RunError(f"out of memory on {device}: {advice}") from None
