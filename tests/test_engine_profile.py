"""`mtdsl run --profile`: the split of a real run's time by phase and the top operators."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conftest import ROOT
from mtdsl.recipe.profiler import PROFILER, RunProfile


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
                  "torch.profiler itself (--profile only)",
                  "other (startup, data loading, display)", "total"):
        assert phase in text, phase
    assert "top operators over meta-steps 6 to 25 (torch.profiler)" in text
    assert "aten::" in text  # the operator table itself
    assert (tmp_path / "run" / "result.json").is_file()  # profiling changes nothing else


class Work:
    def compute(self):
        time.sleep(0.05)
        return "computed"


def test_the_profilers_own_cost_is_not_counted_in_the_phase_it_watches():
    # Tabulating torch.profiler's events took seconds in a 1000-iteration run, and was
    # counted as meta-gradient time until it had a phase of its own.
    profile, work = RunProfile(), Work()

    def slow_window(call):
        time.sleep(0.3)  # what starting and tabulating the profiler costs
        return call()
    profile._wrap(work, "compute", "computing", around=slow_window)
    assert work.compute() == "computed"
    assert 0.05 <= profile.seconds["computing"] < 0.25
    assert profile.seconds[PROFILER] >= 0.3
