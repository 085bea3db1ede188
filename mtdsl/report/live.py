"""The display during training: a live progress bar in a terminal, plain log lines elsewhere."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rich.text import Text

from mtdsl.report.summary import format_duration, format_metric

# The training loop calls update() every iteration; the screen changes at most this often,
# so the cost per iteration is one clock read unless a redraw is due.
REDRAW_SECONDS = 0.1
PLAIN_LINES = 20


def _fmt(value, spec: str) -> str:
    if hasattr(value, "detach"):
        value = value.detach()
    number = float(value)
    return f"{number:{spec}}" if math.isfinite(number) else str(number)


class LiveDisplay:
    """Progress of `total_iterations` meta-training iterations, as a context manager.

    In a terminal: a rich progress bar with count, elapsed time, ETA and the latest loss,
    metric, learning rate, sparsity and validation result. Elsewhere (CI, pipes, files):
    one plain line every `plain_every` iterations (default total/20) and at the last one.

    update() values may be floats or 0-dim tensors. They are read only when shown and never
    kept, so a CUDA loss syncs at most ~10 times a second and no autograd graph stays alive.
    Accuracy values are fractions in 0..1, shown as percentages. `clock` is for tests.
    """

    def __init__(
        self,
        console: Console,
        total_iterations: int,
        title: str,
        metric: str,
        plain_every: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if metric not in ("accuracy", "mse"):
            raise ValueError(f"metric must be 'accuracy' or 'mse', not {metric!r}")
        self.console = console
        self.total = total_iterations
        self.title = title
        self.metric = metric
        self.interactive = console.is_terminal and not console.is_dumb_terminal
        self.plain_every = plain_every or max(1, total_iterations // PLAIN_LINES)
        self._clock = clock
        self._progress: Progress | None = None
        self._task = None
        self._start = 0.0
        self._next_draw = -math.inf
        self._iteration = 0
        self._training_stats = ""
        self._last_validation = ""

    def __enter__(self) -> LiveDisplay:
        self._start = self._clock()
        if self.interactive:
            # Two rows: the bar, and the latest numbers under it, so neither is cut short.
            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._stats_row = Text("")
            self._task = self._progress.add_task(self.title, total=self.total)
            self._live = Live(Group(self._progress, self._stats_row), console=self.console,
                              refresh_per_second=1 / REDRAW_SECONDS)
            self._live.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            # Throttling may have skipped the last iterations; show where the run stopped.
            self._progress.update(self._task, completed=self._iteration)
            self._live.refresh()
            self._live.stop()
            self._progress = None

    def update(self, iteration: int, loss, metric, lr, sparsity=None) -> None:
        """Record that `iteration` (1-based count of finished iterations) is done.

        `sparsity` is the overall pruned fraction, or None when nothing is masked.
        """
        self._iteration = iteration
        last = iteration >= self.total
        if self.interactive:
            now = self._clock()
            if now < self._next_draw and not last:
                return
            self._next_draw = now + REDRAW_SECONDS
            self._training_stats = self._stats(loss, metric, lr, sparsity)
            self._progress.update(self._task, completed=iteration)
            self._stats_row.plain = self._stats_field()
        elif iteration % self.plain_every == 0 or last:
            self._training_stats = self._stats(loss, metric, lr, sparsity)
            self._print(self._plain_line(iteration))

    def validation(self, iteration: int, mean: float, ci95: float) -> None:
        """Print a validation result above the bar and keep it in the live fields."""
        self._last_validation = format_metric(self.metric, mean, ci95)
        self._print(f"valid @ {iteration}: {self._last_validation}")
        if self._progress is not None:
            self._stats_row.plain = self._stats_field()

    def log(self, text: str) -> None:
        """Print a line above the bar (plain text, never rich markup)."""
        self._print(text)

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _stats(self, loss, metric, lr, sparsity) -> str:
        if self.metric == "accuracy":
            shown = f"acc {_fmt(metric * 100, '.2f')}%"
        else:
            shown = f"mse {_fmt(metric, '.4f')}"
        parts = [f"loss {_fmt(loss, '.4f')}", shown, f"lr {_fmt(lr, '.2e')}"]
        if sparsity is not None:
            parts.append(f"sparsity {_fmt(sparsity * 100, '.1f')}%")
        return " · ".join(parts)

    def _stats_field(self) -> str:
        parts = [self._training_stats] if self._training_stats else []
        if self._last_validation:
            parts.append(f"valid {self._last_validation}")
        return " · ".join(parts)

    def _plain_line(self, iteration: int) -> str:
        percent = 100 * iteration / self.total if self.total else 100.0
        line = f"{self.title} {iteration}/{self.total} ({percent:.0f}%) · {self._stats_field()}"
        elapsed = self._clock() - self._start
        if 0 < iteration < self.total:
            line += f" · eta {format_duration(elapsed * (self.total - iteration) / iteration)}"
        else:
            line += f" · elapsed {format_duration(elapsed)}"
        return line
