"""`mtdsl run --profile`: the split of a real run's time by phase and the top operators."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow  # a real CLI run of 30 meta-steps
def test_profile_prints_every_phase_and_the_top_operators(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mtdsl.cli.main", "run", "specs/sinusoid_maml.mt", "--seed", "1",
         "--set", "outer.iterations=30", "--set", "eval.test_tasks=10", "--set", "inner.steps=1",
         "--out", str(tmp_path / "run"), "--profile"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "where the time went" in text
    for phase in ("task sampling", "meta-gradient (inner loop and backward)",
                  "outer step (optimizer, IteRand)", "validation and test", "logging and I/O",
                  "other (startup, data loading, display)", "total"):
        assert phase in text, phase
    assert "top operators over meta-steps 6 to 25 (torch.profiler)" in text
    assert "aten::" in text  # the operator table itself
    assert (tmp_path / "run" / "result.json").is_file()  # profiling changes nothing else

