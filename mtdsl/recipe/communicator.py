"""How the processes of one run talk: one process, or the ranks torchrun started.

The recipe is written once against this interface; a single process is the case where
every collective is the identity. Every rank draws the same tasks from the same generators
and computes its share of them, so the numbers do not depend on how many ranks there are.
"""

from __future__ import annotations

import atexit
import os
import re
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Callable

from ..errors import MtdslError, RunError

# A collective that waits longer than this means a rank is gone without the launcher noticing
# (torchrun's agent normally stops the others within seconds); then the run stops with an
# error instead of hanging. Long enough for the slowest single step of a large model.
TIMEOUT = timedelta(minutes=float(os.environ.get("MTDSL_DIST_TIMEOUT_MINUTES", "10")))


class PeerLost(RunError):
    """Another process of a distributed run is gone: every surviving process stops."""


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def process_rank() -> int:
    """This process's rank (0 without torchrun), known before any process group exists."""
    return int(os.environ.get("RANK", "0")) if launched_by_torchrun() else 0


class SingleProcess:
    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """Which of n items (tasks of a meta-batch, validation or test tasks) this rank
        computes: contiguous shares in rank order, the first n % world_size one larger."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def sum(self, values: dict) -> dict:
        """Element-wise sums over ranks of a dict of tensors (the same keys on every rank)."""
        return values

    def gather(self, values: list) -> list:
        """Every rank's list, concatenated in rank order (so in the order of `share`)."""
        return values

    def on_main(self, work: Callable[[], Any]) -> Any:
        """`work()` run on the main rank alone; its (picklable) value, or its error, on every rank."""
        return work()

    def describe(self, device) -> dict:
        """For resolved.json."""
        return {"world_size": self.world_size, "backend": None}

    def finish(self) -> None:
        """The command finished on this process; called on success only."""


class TorchDistributed(SingleProcess):
    """The ranks of a torchrun job (torch.distributed from torchrun's environment): NCCL for
    tensors on GPUs, gloo for those on the CPU and for Python objects."""

    def __init__(self):
        import torch
        import torch.distributed as dist

        self.dist = dist
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=TIMEOUT)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        atexit.register(self._leave)

    def finish(self) -> None:
        # Ranks leave together: a rank tearing its process group down while a peer is still in
        # the last exchange made the process abort at exit ("terminate called without an
        # active exception") now and then, after the run had finished. Only on success: after
        # a failure a peer may be gone, and a barrier would wait for it.
        if self.dist.is_initialized():
            with self._peers():
                self.dist.barrier()
            self.dist.destroy_process_group()

    def _leave(self) -> None:
        # A process group left standing at exit makes the process abort (SIGABRT).
        if self.dist.is_initialized():
            self.dist.destroy_process_group()

    def sum(self, values: dict) -> dict:
        import torch

        if not values:
            return values
        # One collective for the whole dict: flattened, in float64, then split back.
        flat = torch.cat([v.reshape(-1).to(torch.float64) for v in values.values()])
        with self._peers():
            self.dist.all_reduce(flat)
        out, at = {}, 0
        for key, v in values.items():
            out[key] = flat[at:at + v.numel()].reshape(v.shape).to(v.dtype)
            at += v.numel()
        return out

    def gather(self, values: list) -> list:
        parts: list = [None] * self.world_size
        with self._peers():
            self.dist.all_gather_object(parts, values)
        return [v for part in parts for v in part]

    def on_main(self, work: Callable[[], Any]) -> Any:
        outcome: list = [None]
        if self.is_main:
            try:
                outcome = [("value", work())]
            except MtdslError as e:
                outcome = [("error", e)]
            except BaseException as e:
                self.dist.broadcast_object_list([("error", RunError(f"the main process failed: {e!r}"))], src=0)
                raise
        with self._peers():
            self.dist.broadcast_object_list(outcome, src=0)
        kind, value = outcome[0]
        if kind == "error":
            raise value
        return value

    def describe(self, device) -> dict:
        return {"world_size": self.world_size, "backend": "nccl" if device.type == "cuda" else "gloo"}

    @contextmanager
    def _peers(self):
        """A collective whose peers are gone (killed, crashed, unreachable) is a run error of
        every surviving process, with a message, never a hang or a traceback."""
        try:
            yield
        except (self.dist.DistError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # gloo's source location
            raise PeerLost(f"another process of this {self.world_size}-process run stopped or cannot "
                           f"be reached ({first[:160]}); every process stops") from None


_joined: SingleProcess | None = None


def this_process() -> SingleProcess:
    """The communicator of this process: TorchDistributed under torchrun (the process group
    is set up on first use and kept for every run of the command), else SingleProcess."""
    global _joined
    if _joined is None:
        _joined = TorchDistributed() if launched_by_torchrun() else SingleProcess()
    return _joined
