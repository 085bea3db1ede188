import io

from rich.console import Console

from mtdsl.report.summary import SparsityRow, format_duration, format_metric, print_summary


def render(result, rows=(), run_dir=None):
    console = Console(file=io.StringIO(), force_terminal=False, width=120)
    print_summary(console, result, rows, run_dir=run_dir)
    return console.file.getvalue()


RESULT = {
    "experiment": "omniglot_5w1s",
    "spec_sha256": "ab" * 32,
    "seed": 7,
    "iterations": 30000,
    "test": {
        "omniglot/test": {"metric": "accuracy", "mean": 0.91234, "ci95": 0.00789, "tasks": 600},
        "sines/test": {"metric": "mse", "mean": 0.12345, "ci95": 0.0042, "tasks": 100},
    },
    "sparsity": {"conv1.weight": 0.5},
    "wall_seconds": 65.2,
}


def test_format_metric():
    assert format_metric("accuracy", 0.91234, 0.00789) == "91.23% ± 0.79"
    assert format_metric("mse", 0.12345, 0.0042) == "0.123 ± 0.004"
    assert format_metric("accuracy", 1.0, None) == "100.00%"
    assert format_metric("accuracy", None, None) == "n/a"
    assert format_metric("mse", float("nan"), 0.1) == "n/a"


def test_format_duration():
    assert format_duration(4.26) == "4.3s"
    assert format_duration(65.2) == "1m 05s"
    assert format_duration(3723) == "1h 02m 03s"


def test_summary_shows_results_sparsity_folder_and_time():
    rows = [
        ("conv1.weight", (64, 1, 3, 3), 288, 576),
        SparsityRow("[bold]head.weight", (5, 64), 80, 320),
    ]
    out = render(RESULT, rows, run_dir="runs/omniglot_5w1s/2026-11-26T07-45-12")
    assert "omniglot/test" in out and "91.23% ± 0.79" in out and "600" in out
    assert "sines/test" in out and "0.123 ± 0.004" in out
    assert "64×1×3×3" in out and "288 / 576" in out and "50.00%" in out
    assert "[bold]head.weight" in out and "80 / 320" in out and "75.00%" in out
    assert "all masked" in out and "368 / 896" in out and "58.93%" in out
    assert "runs/omniglot_5w1s/2026-11-26T07-45-12" in out
    assert "1m 05s" in out and "seed 7" in out and "30000 iterations" in out


def test_summary_without_masks_or_tests():
    out = render({**RESULT, "test": {}, "sparsity": {}})
    assert "No test results" in out
    assert "Mask sparsity" not in out


def test_diverged_result_reads_na():
    diverged = {"metric": "accuracy", "mean": None, "ci95": None, "tasks": 600}
    result = {**RESULT, "test": {"omniglot/test": diverged}}
    assert "n/a" in render(result)


def test_sparsity_row_fraction():
    assert SparsityRow("w", (2, 2), 1, 4).sparsity == 0.75
    assert SparsityRow("w", (0,), 0, 0).sparsity == 0.0
