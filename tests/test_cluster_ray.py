"""Sweeps on a Ray cluster: a real Ray head on 127.0.0.1, `mtdsl run SWEEP --cluster ray`
through RAY_ADDRESS; finished points are skipped when the sweep runs again, and a failing
point is retried, then reported, while the other finishes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

SWEEPS = f"""
import "{ROOT}/specs/sinusoid_maml.mt"

sweep pair over sinusoid_maml {{
  model.hidden: [8, 16]
  seeds: [1]
}}

sweep one_diverges over sinusoid_maml {{
  inner.lr: [0.01, 1e12]
  seeds: [1]
}}
"""
SHORT = ["--set", "outer.iterations=5", "--set", "eval.every=5", "--set", "eval.test_tasks=8",
         "--set", "outer.meta_batch=2"]


def ray_env(**extra) -> dict:
    # No token authentication on either side: a token some earlier Ray left in ~/.ray must
    # not make the client fail against this head.
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory):
    """A Ray head with 2 CPU slots, started for these tests and stopped after them (by its
    own process: `ray start --block` ends every Ray process it started on SIGTERM)."""
    log = tmp_path_factory.mktemp("ray") / "head.log"
    port = free_port()
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
               "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
               "--include-dashboard=false", f"--dashboard-port={free_port()}",
               f"--ray-client-server-port={free_port()}", "--disable-usage-stats"]
    with open(log, "w") as out:
        head = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=ray_env())
    try:
        deadline = time.monotonic() + 120
        while "block forever" not in log.read_text():
            assert head.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the Ray head did not start in 120 s"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        head.wait(60)


def mtdsl(*args, address: str) -> subprocess.CompletedProcess:
    env = ray_env(RAY_ADDRESS=address, COLUMNS="200", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mtdsl", "run", *args, *SHORT], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_a_sweep_runs_as_ray_tasks_and_finished_points_are_skipped(ray_address, tmp_path):
    (tmp_path / "s.mt").write_text(SWEEPS)
    out = tmp_path / "runs"
    first = mtdsl(f"{tmp_path / 's.mt'}::pair", "--cluster", "ray", "--out", str(out), address=ray_address)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "running 2 runs on a Ray cluster (2 CPUs)" in first.stdout
    assert "2 done · 0 running · 0 queued · 0 failed" in first.stdout
    results = [json.loads((out / f"model.hidden={h},seed=1" / "result.json").read_text()) for h in (8, 16)]
    assert [r["seed"] for r in results] == [1, 1] and results[0]["spec_sha256"] != results[1]["spec_sha256"]

    again = mtdsl(f"{tmp_path / 's.mt'}::pair", "--cluster", "ray", "--out", str(out), address=ray_address)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished, skipped") == 2 and "running" not in again.stdout


def test_a_failing_point_is_retried_then_reported_and_the_other_finishes(ray_address, tmp_path):
    (tmp_path / "s.mt").write_text(SWEEPS)
    out = tmp_path / "runs"
    done = mtdsl(f"{tmp_path / 's.mt'}::one_diverges", "--cluster", "ray", "--retries", "1",
                 "--out", str(out), address=ray_address)
    assert done.returncode == 1
    assert "failed (attempt 1 of 2), retrying: " + str(out / "inner.lr=1e12,seed=1") in done.stdout
    assert "1 done · 0 running · 0 queued · 1 failed · 1 retried" in done.stdout
    assert (out / "inner.lr=0.01,seed=1" / "result.json").is_file()
    assert not (out / "inner.lr=1e12,seed=1" / "result.json").exists()
    assert "1 of 2 runs failed" in done.stderr and "diverged" in done.stderr
    row = next(line for line in done.stdout.splitlines() if "inner.lr=1e12" in line and "│" in line)
    assert "failed: meta-training diverged" in row


def test_ctrl_c_cancels_the_ray_tasks_and_each_run_keeps_a_checkpoint(ray_address, tmp_path):
    import signal

    (tmp_path / "s.mt").write_text(SWEEPS)
    out = tmp_path / "runs"
    # later --set wins; not compiled: a first compile of each shape (tens of seconds) would
    # only delay the checkpoints this test waits for
    long = [*SHORT, "--set", "outer.iterations=100000", "--set", "eval.every=20",
            "--set", "device.compile=false"]
    env = ray_env(RAY_ADDRESS=ray_address, COLUMNS="200", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "mtdsl", "run", f"{tmp_path / 's.mt'}::pair", "--cluster",
                             "ray", "--out", str(out), *long], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folders = [out / "model.hidden=8,seed=1", out / "model.hidden=16,seed=1"]
    deadline = time.monotonic() + 180
    while not all((f / "checkpoint.pt").exists() for f in folders) and proc.poll() is None:
        assert time.monotonic() < deadline, "the runs did not start on the cluster"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert f"Continue them all with the same command and `--out {out}`" in stderr
    for folder in folders:
        assert not (folder / "result.json").exists() and (folder / "checkpoint.pt").exists()
        assert f"{folder}: stopped by SIGINT" in stderr
