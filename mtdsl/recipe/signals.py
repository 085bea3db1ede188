"""SIGINT and SIGTERM during `mtdsl run`: stop with a checkpoint, never in the middle of a step.

The first signal is recorded and acted on at the run's next safe point: after the meta-step
in progress (the recipe writes a checkpoint at that iteration), or before training or
meta-testing starts. The run then raises `Stopped`, and the process exits 128 + the signal's
number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process the signal ended. A
second signal stops at once and discards the step in progress: the checkpoint on disk stays
the previous one (it is replaced atomically, so it is never half-written).

A stop is remembered for the rest of the process, so a process that was asked to stop starts
no further run (a sweep's next point, a worker's next queued run).

Writes that go over a file-size limit (`ulimit -f`) raise SIGXFSZ, which by default kills the
process without a word; while signals are handled here it is ignored, so the write fails with
EFBIG and the run reports it like a full disk.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import RunError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """Raised from the signal handler by a second signal: the run stops at once. A
    BaseException, like KeyboardInterrupt, so no `except Exception` on the way swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stopped(RunError):
    """The run stopped on a signal; the exit code is the shell's for that signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


def name(signum: int) -> str:
    return signal.Signals(signum).name


class _State:
    received: int | None = None  # the first stop signal this process got
    active = False  # within handled(): a second signal raises
    forward: Callable[[int], None] | None = None


_state = _State()


def requested() -> int | None:
    """The stop signal this process received, if any."""
    return _state.received


def _handle(signum: int, frame) -> None:
    first = _state.received is None
    if first:
        _state.received = signum
    if _state.forward is not None:
        _state.forward(signum)
    elif not first and _state.active:
        raise Interrupted(signum)


def install() -> dict:
    """Record stop signals from now on (and ignore SIGXFSZ); returns the previous handlers.
    Outside `handled()` even a second signal is only recorded (an idle worker process)."""
    previous = {s: signal.signal(s, _handle) for s in STOP_SIGNALS}
    if hasattr(signal, "SIGXFSZ"):
        previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return previous


@contextmanager
def handled() -> Iterator[None]:
    """Handle the stop signals for the duration; the previous handlers come back afterwards.
    Only the main thread can install handlers: elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous, was_active = install(), _state.active
    _state.active = True
    try:
        yield
    finally:
        _state.active = was_active
        for s, handler in previous.items():
            signal.signal(s, handler)


def check(stage: str) -> None:
    """Raise `Stopped` if a stop was asked for; `stage` completes "stopped by SIGTERM ..."."""
    if _state.received is not None:
        raise Stopped(_state.received, f"stopped by {name(_state.received)} {stage}")


@contextmanager
def forwarded(to: Callable[[int], None]) -> Iterator[None]:
    """Within, each stop signal is passed to `to` (e.g. sent on to worker processes) and
    recorded, never raised: the caller waits for the workers and then checks `requested()`."""
    _state.forward = to
    try:
        yield
    finally:
        _state.forward = None


def send_to(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:  # already ended
            pass


def detach_from_terminal_group() -> None:
    """For a worker process: leave the terminal's process group, so a Ctrl-C reaches only the
    parent, which passes it on once (a second copy would stop the worker at once)."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()
