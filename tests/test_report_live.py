import io

import pytest
import torch
from rich.console import Console

from mtdsl.report.live import LiveDisplay


def plain_console():
    return Console(file=io.StringIO(), force_terminal=False, width=80)


def terminal_console():
    return Console(file=io.StringIO(), force_terminal=True, width=160)


class FrozenClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_mode_prints_one_line_every_twentieth(tmp_path):
    console = plain_console()
    with LiveDisplay(console, 100, "omniglot", "accuracy") as live:
        for i in range(1, 101):
            live.update(i, loss=0.6931, metric=0.5, lr=1e-3, sparsity=0.5)
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 20
    assert all(line.startswith("omniglot ") for line in lines)  # long lines are not wrapped
    assert lines[0].startswith("omniglot 5/100 (5%)")
    for field in ("loss 0.6931", "acc 50.00%", "lr 1.00e-03", "sparsity 50.0%", "eta "):
        assert field in lines[0]
    assert lines[-1].startswith("omniglot 100/100 (100%)") and "elapsed" in lines[-1]


def test_plain_mode_always_prints_the_last_iteration():
    console = plain_console()
    with LiveDisplay(console, 7, "run", "mse") as live:
        for i in range(1, 8):
            live.update(i, loss=0.25, metric=0.125, lr=0.01)
    lines = console.file.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{i}/7" for i in range(1, 8)]
    assert "mse 0.1250" in lines[-1] and "sparsity" not in lines[-1]


def test_validation_and_log_lines():
    console = plain_console()
    with LiveDisplay(console, 40, "run", "accuracy") as live:
        live.log("loading [omniglot]")
        live.update(20, loss=1.0, metric=0.8, lr=1e-3)
        live.validation(20, 0.912, 0.008)
        live.update(40, loss=float("nan"), metric=torch.tensor(0.9), lr=1e-3)
    out = console.file.getvalue()
    assert "loading [omniglot]\n" in out  # shown literally, not eaten as rich markup
    assert "valid @ 20: 91.20% ± 0.80\n" in out
    last = out.splitlines()[-1]
    assert "loss nan" in last and "acc 90.00%" in last and "valid 91.20% ± 0.80" in last


def test_terminal_mode_runs_and_prints_validation_above():
    console = terminal_console()
    loss = torch.tensor(0.5, requires_grad=True) * 2
    with LiveDisplay(console, 300, "omniglot", "accuracy") as live:
        for i in range(1, 301):
            live.update(i, loss=loss, metric=torch.tensor(0.75), lr=1e-3, sparsity=0.3)
            if i == 150:
                live.validation(i, 0.9, 0.01)
                live.log("checkpoint written")
    out = console.file.getvalue()
    assert "valid @ 150: 90.00% ± 1.00" in out
    assert "checkpoint written" in out
    assert "300/300" in out


def test_terminal_mode_redraws_are_throttled():
    clock = FrozenClock()
    live = LiveDisplay(terminal_console(), 1000, "run", "accuracy", clock=clock)
    with live:
        task = live._progress.tasks[0]
        for i in range(1, 500):
            live.update(i, loss=1.0, metric=0.5, lr=1e-3)
        assert task.completed == 1  # no time passed: only the first update drew
        clock.now += 0.2
        live.update(500, loss=1.0, metric=0.5, lr=1e-3)
        assert task.completed == 500
        live.update(1000, loss=1.0, metric=0.5, lr=1e-3)  # the last one always draws
        assert task.completed == 1000


def test_stopping_early_shows_where_the_run_stopped():
    clock = FrozenClock()
    live = LiveDisplay(terminal_console(), 1000, "run", "accuracy", clock=clock)
    with pytest.raises(KeyboardInterrupt):
        with live:
            task = live._progress.tasks[0]
            for i in range(1, 43):
                live.update(i, loss=1.0, metric=0.5, lr=1e-3)
            raise KeyboardInterrupt
    assert task.completed == 42


def test_unknown_metric_is_rejected():
    with pytest.raises(ValueError):
        LiveDisplay(plain_console(), 10, "run", "f1")
