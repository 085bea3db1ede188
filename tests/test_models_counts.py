"""Parameter counts of the paper's conv nets from the compiler alone (paper Table 5, 3x84x84
mini-ImageNet input, 5-way): ResNet-12 8.0 M, WRN-28-10 36.5 M."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mtdsl.cli.main import app
from mtdsl.cli.select import compile_ref
from mtdsl.compile.graph import build
from mtdsl.validate.evaluate import CallValue
from mtdsl.validate.loader import load

from conftest import ROOT

SPEC = ROOT / "tests" / "specs" / "paper_convnets.mt"


def count(model: str, **kwargs) -> int:
    graph = build(load(ROOT / "specs" / "lib" / "models.mt").models,
                  CallValue(model, [], kwargs, span=None), (3, 84, 84))
    return sum(p.numel for p in graph.params)


@pytest.mark.parametrize("name, millions", [("resnet12_ticket", 8.0), ("wrn28_ticket", 36.5)])
def test_table5_counts_within_a_tenth_of_a_million(name, millions):
    plan = compile_ref(f"{SPEC}::{name}", [])[0].plan
    assert abs(sum(p.numel for p in plan.params) / 1e6 - millions) < 0.1


def test_counts_are_the_ones_derived_in_the_model_library():
    assert count("resnet12", classes=5) == 7_999_365
    assert count("wrn28", k=10, classes=5) == 36_475_989
    convs = 3 * 64 * 9 + 3 * 64 * 64 * 9 + 4 * 64  # weights and biases
    assert count("conv4", classes=5) == convs + 4 * 2 * 64 + (64 * 5 * 5) * 5 + 5


def test_show_prints_the_counts():
    result = CliRunner().invoke(app, ["show", str(SPEC)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "parameters: 7,999,365 (8.00 M)" in result.output
    assert "parameters: 36,475,989 (36.48 M)" in result.output


def test_counting_needs_no_torch():
    code = ("import sys; from mtdsl.cli.select import compile_ref; "
            f"compile_ref({str(SPEC)!r}, []); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
