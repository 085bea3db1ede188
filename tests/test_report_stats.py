import math

import pytest
import torch

from mtdsl.report.result import build_result, split_entry
from mtdsl.report.stats import mean_ci95


def test_known_values():
    mean, ci95 = mean_ci95([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    # sample std of 1..4 is sqrt(5/3); n = 4
    assert ci95 == pytest.approx(1.96 * math.sqrt(5 / 3) / 2)


def test_constant_values_have_zero_interval():
    assert mean_ci95([0.75] * 10) == pytest.approx((0.75, 0.0))


def test_single_value_gives_zero_interval():
    assert mean_ci95([0.4]) == (0.4, 0.0)


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        mean_ci95([])


def test_tensor_input_matches_list():
    values = [0.5, 0.75, 0.25, 1.0, 0.6]
    assert mean_ci95(torch.tensor(values, dtype=torch.float64)) == pytest.approx(mean_ci95(values))


def test_nan_propagates_instead_of_being_hidden():
    mean, _ = mean_ci95([0.5, float("nan")])
    assert math.isnan(mean)


def test_split_entry_and_build_result():
    entry = split_entry("accuracy", torch.tensor([1.0, 0.5, 0.75, 0.75]))
    assert entry["metric"] == "accuracy" and entry["tasks"] == 4
    assert entry["mean"] == pytest.approx(0.75)
    assert entry["ci95"] == pytest.approx(mean_ci95([1.0, 0.5, 0.75, 0.75])[1])
    result = build_result(
        experiment="omniglot_5w1s",
        spec_sha256="ab" * 32,
        seed=3,
        iterations=100,
        test={"omniglot/test": entry},
        sparsity={"conv1.weight": 0.5},
        wall_seconds=12.5,
    )
    assert list(result) == [
        "experiment", "spec_sha256", "seed", "iterations", "test", "sparsity", "wall_seconds"
    ]
    assert result["test"]["omniglot/test"] == entry


def test_split_entry_rejects_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        split_entry("f1", [0.5])
