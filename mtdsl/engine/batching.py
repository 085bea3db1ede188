"""Running a per-task function over a stack of tasks, a chunk of tasks at a time.

A chunk of several tasks is one vectorised call (torch.func.vmap, each task drawing its own
random numbers); a chunk of one task is a plain call, which needs no batching rules and so
is the cheapest way to run one task at a time.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from torch import Tensor
from torch.func import vmap


def over_tasks(fn: Callable[..., Any], tasks: tuple[Tensor, ...], chunk: int) -> Iterator[Any]:
    """`fn(*one_task)` for every task along the first axis of `tasks`, `chunk` tasks at a
    time; yields each chunk's outputs stacked along a leading task axis."""
    count = tasks[0].shape[0]
    for start in range(0, count, chunk):
        part = tuple(t[start:start + chunk] for t in tasks)
        if part[0].shape[0] == 1:
            yield _with_task_axis(fn(*(t[0] for t in part)))
        else:
            yield vmap(fn, randomness="different")(*part)


def _with_task_axis(out: Any) -> Any:
    if isinstance(out, Tensor):
        return out.unsqueeze(0)
    if isinstance(out, dict):
        return {k: _with_task_axis(v) for k, v in out.items()}
    return type(out)(_with_task_axis(v) for v in out)
