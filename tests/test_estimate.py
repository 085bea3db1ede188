"""What a run will cost, said before it runs (`mtdsl run SPEC --estimate`, and the start of
every run): the memory estimate against a measured peak, the projected wall time against a
real run's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from mtdsl.recipe.estimate import MAX_TIMED, MIN_TIMED, WARM_ITERATIONS, schedule_points, worth_timing

MTDSL = [sys.executable, "-m", "mtdsl.cli.main"]
PROJECTED = re.compile(r"projected wall time: .*?\(([\d.]+) s\)")


def mtdsl(*args: str, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([*MTDSL, *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=1200)


def test_validations_and_checkpoints_fall_where_the_recipe_puts_them():
    assert schedule_points(1000, 0, 1000) == 1
    assert schedule_points(2500, 0, 1000) == 3  # 1000, 2000 and the last iteration
    assert schedule_points(2500, 1500, 1000) == 2  # resumed: what is left
    assert schedule_points(2, 0, 1000) == 1


def test_time_is_measured_only_where_that_is_a_small_share_of_the_run():
    assert worth_timing(2) == 0  # a two-iteration run is not run a dozen times to time it
    assert worth_timing(1000) == 20 - WARM_ITERATIONS
    assert worth_timing(30000) == MAX_TIMED
    assert worth_timing(30000, start=29900) == 0
    assert worth_timing(int((WARM_ITERATIONS + MIN_TIMED) / 0.02)) == MIN_TIMED


def test_the_memory_estimate_bounds_the_measured_peak_of_a_task(tmp_path):
    """ResNet-12 (narrowed) on 32x32, 5-way 5-shot, second order: the estimate is the engine's
    upper bound (under-estimating runs out of memory), but not a useless one."""
    sets = ["model.channels=[32, 64, 128, 256]", "task.shots=5", "outer.meta_batch=1",
            'data.train=mini_imagenet(size: 32)', 'data.valid=mini_imagenet(split: "val", size: 32)',
            'data.test=[mini_imagenet(split: "test", size: 32)]']
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "peak_memory.py"),
                           str(ROOT / "specs" / "resnet12_miniimagenet.mt"), *sets],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    numbers = json.loads(done.stdout.strip().splitlines()[-1])
    assert numbers["measured"] > 100e6  # the task's own memory, well above the process's noise
    assert numbers["measured"] <= numbers["estimate"] <= 5 * numbers["measured"], numbers


def test_estimate_prints_the_cost_and_runs_nothing(tmp_path, omniglot_root):
    done = mtdsl("run", str(ROOT / "specs" / "omniglot_mlp_ticket.mt"), "--seed", "1", "--estimate",
                 "--set", "outer.iterations=300", cwd=tmp_path, env={"MTDSL_DATA": str(omniglot_root)})
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "parameters     247,621: masked 245,760, fixed 1,861" in text
    assert re.search(r"1 inner step, second order: [\d.]+ [KMG]B at its peak", text)
    assert re.search(r"meta-batch     4 tasks, all at once", text)
    assert re.search(r"one iteration  [\d.e-]+ s \(mean of \d+, after 2 warm-up iterations\)", text)
    assert "300 iterations" in text and "meta-test 1 x 1000 tasks" in text
    assert float(PROJECTED.search(text).group(1)) > 0
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_projection_of_a_1000_iteration_omniglot_run_is_within_30_percent(tmp_path, omniglot_root):
    """The generous bound of a shared machine; benchmarks/bench_estimate.py prints the ratio."""
    # One thread, estimate and run alike: on a machine shared with other test processes,
    # torch's threads waiting for each other make both slower and far noisier.
    env = {"MTDSL_DATA": str(omniglot_root), "OMP_NUM_THREADS": "1"}
    spec = str(ROOT / "specs" / "omniglot_mlp_ticket.mt")
    # Eager: at 1000 iterations the run would compile its meta-gradient, and a machine's first
    # compile (tens of seconds, once) is no part of what this test measures; a compiled
    # run's iterations are timed by the same estimate.
    common = ["--seed", "1", "--set", "outer.iterations=1000", "--set", "device.compile=false"]
    estimated = mtdsl("run", spec, *common, "--estimate", cwd=tmp_path, env=env)
    assert estimated.returncode == 0, estimated.stderr
    projected = float(PROJECTED.search(estimated.stdout).group(1))
    ran = mtdsl("run", spec, *common, "--out", str(tmp_path / "run"), cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    wall = json.loads((tmp_path / "run" / "result.json").read_text())["wall_seconds"]
    assert 0.7 <= projected / wall <= 1.3, (projected, wall)
    # the run said the same before its first step
    assert float(PROJECTED.search(ran.stdout).group(1)) == pytest.approx(wall, rel=0.3)
