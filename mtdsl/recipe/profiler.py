"""`mtdsl run --profile`: where a run's time goes.

Wall-clock seconds per phase (task sampling, the meta-gradient with its inner loop, the
outer step, validation and test, logging and I/O, torch.profiler's own cost, and the rest:
startup, data loading, the live display), measured by wrapping the methods of one run's
objects that do each phase; and torch.profiler's table of the operators that took the most
time over a window of meta-steps after warm-up. Nothing is wrapped without --profile, so a
normal run pays nothing.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from rich.console import Console
from rich.table import Table

# Meta-steps profiled by torch.profiler, after these many of warm-up.
WARMUP_STEPS, PROFILED_STEPS = 5, 20
TOP_OPERATORS = 15

SAMPLING = "task sampling"
META_GRADIENT = "meta-gradient (inner loop and backward)"
OUTER = "outer step (optimizer, IteRand)"
EVALUATION = "validation and test"
IO = "logging and I/O"
PROFILER = "torch.profiler itself (--profile only)"


class RunProfile:
    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()
        self._inside: str | None = None
        self._steps = 0
        self._torch: torch.profiler.profile | None = None
        self.operators: str | None = None

    def attach(self, training: Any) -> None:
        """Time the phases of a MetaTraining (after its setup: the learner and sources exist)."""
        learner, sources = training.learner, training.sources
        self._wrap(sources.train, "sample", SAMPLING)
        self._wrap(learner, "meta_gradients", META_GRADIENT, around=self._operator_window)
        if learner.optimizer is not None:
            self._wrap(learner.optimizer, "step", OUTER)
        self._wrap(learner, "iterand", OUTER)
        for name in ("validate", "test"):
            self._wrap(training, name, EVALUATION)
        for name in ("log_step", "save_checkpoint", "finish"):
            self._wrap(training, name, IO)

    def _wrap(self, owner: Any, name: str, phase: str,
              around: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        method = getattr(owner, name)

        def timed(*args, **kwargs):
            if self._inside is not None:  # a phase inside another counts as the outer one
                return method(*args, **kwargs)
            self._inside = phase
            start, inside = time.perf_counter(), [0.0]

            def call():
                begun = time.perf_counter()
                try:
                    return method(*args, **kwargs)
                finally:
                    inside[0] = time.perf_counter() - begun
            try:
                return around(call) if around else call()
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + inside[0]
                if around is not None:
                    # Starting torch.profiler and tabulating its events takes seconds: a phase
                    # of its own, not a share of the phase it watched.
                    self.seconds[PROFILER] = (self.seconds.get(PROFILER, 0.0)
                                              + time.perf_counter() - start - inside[0])
                self._inside = None

        setattr(owner, name, timed)

    def _operator_window(self, call: Callable[[], Any]) -> Any:
        """torch.profiler over meta-gradients WARMUP_STEPS+1 .. WARMUP_STEPS+PROFILED_STEPS."""
        self._steps += 1
        if self._steps == WARMUP_STEPS + 1:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self._torch = torch.profiler.profile(activities=activities)
            self._torch.__enter__()
        try:
            return call()
        finally:
            if self._torch is not None and self._steps == WARMUP_STEPS + PROFILED_STEPS:
                self._close_window()

    def _close_window(self) -> None:
        self._torch.__exit__(None, None, None)
        sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        self.operators = self._torch.key_averages().table(sort_by=sort, row_limit=TOP_OPERATORS)
        self._operator_steps = self._steps - WARMUP_STEPS
        self._torch = None

    def report(self, console: Console) -> None:
        if self._torch is not None:  # the run ended inside the window
            self._close_window()
        total = time.perf_counter() - self.started
        rows = [*self.seconds.items(), ("other (startup, data loading, display)",
                                        max(total - sum(self.seconds.values()), 0.0))]
        table = Table(title="where the time went", title_justify="left")
        table.add_column("phase")
        table.add_column("seconds", justify="right")
        table.add_column("share", justify="right")
        for phase, seconds in rows:
            table.add_row(phase, f"{seconds:.2f}", f"{seconds / total:.0%}" if total else "-")
        table.add_row("total", f"{total:.2f}", "100%")
        console.print(table)
        if self.operators is None:
            console.print(f"(operators are profiled over meta-steps {WARMUP_STEPS + 1} to "
                          f"{WARMUP_STEPS + PROFILED_STEPS}; this run took fewer)")
        else:
            console.print(f"top operators over meta-steps {WARMUP_STEPS + 1} to "
                          f"{WARMUP_STEPS + self._operator_steps} (torch.profiler):")
            console.print(self.operators, markup=False, highlight=False, soft_wrap=True)

