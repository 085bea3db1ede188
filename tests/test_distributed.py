"""One run over several processes (torchrun, gloo on the CPU) is the run of one process:
the same meta-gradients, the same result.json; a killed process ends the job with a message,
and the checkpoint it leaves resumes (under any number of processes) to the same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT
from distributed_gradients import meta_gradients

SPEC = """
import "{root}/specs/lib/models.mt"

experiment small {{
  seeds: [4]
  device: cpu
  data {{ train: omniglot(split: "train"), valid: omniglot(split: "val"), test: omniglot(split: "test") }}
  task {{ ways: 5, shots: 1, queries: 5 }}
  model: mlp(hidden: [32, 32], classes: task.ways)
  params {{ "**.weight": masked, "head.**": fixed, "**.bias": fixed, "**.bn.**": fixed }}
  inner {{ steps: 1, test_steps: 2, lr: 0.4 }}
  outer {{ optimizer: sgd(lr: 10, momentum: 0.9), iterations: 200, meta_batch: 5, tasks_in: sequential }}
  eval {{ every: 50, valid_tasks: 10, test_tasks: 40 }}
}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from conftest import real_data_root

    data = real_data_root()
    if not (data / "omniglot" / "omniglot-py" / "images_background").is_dir():
        pytest.skip(f"real Omniglot not found under {data}")
    folder = tmp_path_factory.mktemp("distributed")
    spec = folder / "small.mt"
    spec.write_text(SPEC.format(root=ROOT))
    # torchrun's agent leaves a folder in the temporary directory at every start: this one's.
    (folder / "tmp").mkdir()
    env = {**os.environ, "MTDSL_DATA": str(data), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "TMPDIR": str(folder / "tmp")}
    return folder, spec, env


def torchrun(n: int, *args) -> list[str]:
    # --standalone: a rendezvous on a free local port, so parallel jobs never collide.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", *args]


def mtdsl(*args) -> list[str]:
    return ["-m", "mtdsl", *args]


@pytest.fixture(scope="module")
def single(setup):
    """The one-process run every distributed run must equal."""
    folder, spec, env = setup
    out = folder / "single"
    subprocess.run([sys.executable, *mtdsl("run", str(spec), "--out", str(out))], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    return out


def numbers(run) -> tuple:
    """result.json's test entries and every logged loss and validation value."""
    result = json.loads((run / "result.json").read_text())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return result["test"], [(r["iteration"], r.get("loss"), r.get("valid")) for r in lines]


def test_two_processes_compute_the_meta_gradients_of_one(setup):
    folder, spec, env = setup
    out = folder / "grads.pt"
    subprocess.run(torchrun(2, str(ROOT / "tests" / "distributed_gradients.py"), str(spec), str(out)),
                   env=env, cwd=ROOT, check=True, capture_output=True)
    shared = torch.load(out)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers (OMP_NUM_THREADS=1): the same kernels' splits
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MTDSL_DATA", env["MTDSL_DATA"])
            alone = meta_gradients(str(spec))
    finally:
        torch.set_num_threads(threads)
    assert shared["world_size"] == 2
    assert shared["grads"].keys() == alone["grads"].keys()
    for key, g in alone["grads"].items():
        assert g.norm() > 0, key
        assert (shared["grads"][key] - g).norm() <= 1e-6 * g.norm(), key
    assert shared["loss"] == pytest.approx(alone["loss"], rel=1e-6)
    assert shared["accuracy"] == pytest.approx(alone["accuracy"], rel=1e-6)


def test_a_run_under_torchrun_equals_the_one_process_run(setup, single):
    folder, spec, env = setup
    out = folder / "two"
    done = subprocess.run(torchrun(2, *mtdsl("run", str(spec), "--out", str(out))), env=env, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert numbers(out) == numbers(single)
    resolved = json.loads((out / "resolved.json").read_text())
    assert (resolved["world_size"], resolved["backend"]) == (2, "gloo")
    assert done.stdout.count("Run folder:") == 1  # only the main process speaks


def last_iteration(folder) -> int:
    try:
        lines = (folder / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return max((json.loads(line).get("iteration", 0) for line in lines if line.endswith("}")), default=0)


def rank_pids(launcher: int) -> dict[int, int]:
    """rank -> pid of the workers a torchrun process started."""
    pids = {}
    for task in os.listdir(f"/proc/{launcher}/task"):
        for pid in open(f"/proc/{launcher}/task/{task}/children").read().split():
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            rank = next((int(v[5:]) for v in environ if v.startswith(b"RANK=")), None)
            if rank is not None:
                pids[rank] = int(pid)
    return pids


def test_a_killed_process_ends_the_job_and_resume_gives_the_same_result(setup, single):
    folder, spec, env = setup
    out = folder / "killed"
    job = subprocess.Popen(torchrun(2, *mtdsl("run", str(spec), "--out", str(out))), env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while last_iteration(out) < 110 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, "the run ended before it could be killed"
    os.kill(rank_pids(job.pid)[1], signal.SIGKILL)
    try:
        _, err = job.communicate(timeout=60)  # no hang: the other process stops too
    except subprocess.TimeoutExpired:
        job.kill()
        raise
    assert job.returncode != 0
    assert "another process of this 2-process run stopped" in err
    assert f"mtdsl run --resume {out}" in err
    assert not (out / "result.json").exists() and (out / "checkpoint.pt").exists()

    # written by 2 processes, resumed by 1
    done = subprocess.run([sys.executable, *mtdsl("run", "--resume", str(out))], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    at = next(it for it in (150, 100) if f"resuming at iteration {it}" in done.stdout)
    assert numbers(out) == numbers(single)
    resolved = json.loads((out / "resolved.json").read_text())
    assert (resolved["world_size"], resolved["backend"]) == (2, "gloo")
    assert resolved["resumed"] == [{"iteration": at, "device": "cpu", "world_size": 1, "backend": None}]
