"""A run killed with SIGKILL at any moment and resumed ends with exactly the numbers of an
uninterrupted run (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

SPEC = """
import "{root}/specs/lib/models.mt"

experiment small {{
  seeds: [4]
  device: cpu
  data {{ train: omniglot(split: "train"), valid: omniglot(split: "val"), test: omniglot(split: "test") }}
  task {{ ways: 5, shots: 1, queries: 5 }}
  model: mlp(hidden: [32, 32], classes: task.ways)
  params {{ "**.weight": masked, "head.**": fixed, "**.bias": fixed, "**.bn.**": fixed }}
  mask {{ iterand {{ every: 7, prob: 0.5 }} }}
  inner {{ steps: 1, test_steps: 2, lr: 0.4 }}
  outer {{ optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 5), iterations: 60 }}
  eval {{ every: 10, valid_tasks: 10, test_tasks: 60, checkpoint: best }}
}}
"""


def mtdsl(*args, env):
    return [sys.executable, "-m", "mtdsl.cli.main", *args]


def last_iteration(folder) -> int:
    try:
        lines = (folder / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    its = [json.loads(l).get("iteration", 0) for l in lines if l.endswith("}")]
    return max(its, default=0)


@pytest.mark.parametrize("kill_after", [13, 37])
def test_sigkill_then_resume_equals_an_uninterrupted_run(kill_after, tmp_path, omniglot_root):
    spec = tmp_path / "small.mt"
    spec.write_text(SPEC.format(root=ROOT))
    env = {**os.environ, "MTDSL_DATA": str(omniglot_root), "PYTHONUNBUFFERED": "1"}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(mtdsl("run", str(spec), "--out", str(whole), env=env), env=env, check=True,
                   capture_output=True, cwd=ROOT)

    proc = subprocess.Popen(mtdsl("run", str(spec), "--out", str(cut), env=env), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while last_iteration(cut) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "result.json").exists(), "the run finished before it could be killed"

    r = subprocess.run(mtdsl("run", "--resume", str(cut), env=env), env=env, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    a = json.loads((whole / "result.json").read_text())
    b = json.loads((cut / "result.json").read_text())
    assert a["test"] == b["test"] and a["sparsity"] == b["sparsity"]
    assert a["spec_sha256"] == b["spec_sha256"]
    steps = [json.loads(l) for l in (cut / "metrics.jsonl").read_text().splitlines()]
    assert [s["iteration"] for s in steps if "loss" in s] == list(range(1, 61))
