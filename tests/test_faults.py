"""Faults during a run, each caused for real on a real `mtdsl run` process: SIGTERM, SIGINT,
SIGKILL, a full disk (a file-size limit), an unwritable folder, a truncated checkpoint, a
second run into a folder in use, and signals to the parent of `--jobs` workers. After each,
the run folder continues to exactly the numbers of an uninterrupted run (CPU)."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT

ITERATIONS = 120
SPEC = """
import "{root}/specs/lib/models.mt"

experiment faults {{
  seeds: [1, 2]
  device: cpu
  data {{ train: sinusoid(), valid: sinusoid(split: "val"), test: sinusoid(split: "test") }}
  task {{ shots: 5, queries: 5 }}
  model: sine_mlp(hidden: 40)
  params {{ "layer2.weight": masked, "**": meta }}
  mask {{ iterand {{ every: 20, prob: 0.5 }} }}
  inner {{ steps: 2, lr: 0.01 }}
  outer {{ optimizer: adam(lr: 0.001), iterations: {iterations} }}
  eval {{ every: 50, valid_tasks: 10, test_tasks: 30, checkpoint: best }}
  checkpoint {{ every: 7 }}
}}
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def mtdsl(*args: str) -> list[str]:
    return [sys.executable, "-m", "mtdsl.cli.main", *args]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(mtdsl(*args), env=ENV, cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **kwargs)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(mtdsl(*args), env=ENV, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def last_iteration(folder: Path) -> int:
    try:
        lines = (folder / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    its = [json.loads(l)["iteration"] for l in lines if l.endswith("}") and '"loss"' in l]
    return max(its, default=0)


def wait_for(proc: subprocess.Popen, *folders: Path, iteration: int) -> None:
    deadline = time.monotonic() + 120
    while min(last_iteration(f) for f in folders) < iteration:
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.01)


def checkpoint_iteration(folder: Path) -> int:
    return torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=False)["learner"]["iteration"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def numbers(folder: Path) -> dict:
    result = json.loads((folder / "result.json").read_text())
    return {"test": result["test"], "sparsity": result["sparsity"], "iterations": result["iterations"]}


def assert_clean_failure(r: subprocess.CompletedProcess, code: int) -> str:
    text = r.stdout + r.stderr
    assert r.returncode == code, text
    assert "Traceback" not in text and "internal error" not in text, text
    return text


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "faults.mt"
    path.write_text(SPEC.format(root=ROOT, iterations=ITERATIONS))
    return path


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory) -> Path:
    """Both seeds run without interruption: ref/seed1, ref/seed2."""
    folder = tmp_path_factory.mktemp("reference") / "ref"
    r = run("run", str(spec), "--out", str(folder))
    assert r.returncode == 0, r.stdout + r.stderr
    return folder


@pytest.fixture(scope="module")
def stopped(spec, tmp_path_factory):
    """Seed 1 stopped by SIGTERM at iteration 30 or later; tests work on copies of it."""
    folder = tmp_path_factory.mktemp("stopped") / "run"
    proc = start("run", str(spec), "--seed", "1", "--out", str(folder))
    wait_for(proc, folder, iteration=30)
    at_signal = last_iteration(folder)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    return folder, proc.returncode, out + err, at_signal


def copy_of(stopped, where: Path) -> Path:
    shutil.copytree(stopped[0], where)
    return where


def test_sigterm_stops_with_a_checkpoint_at_the_current_iteration(stopped):
    folder, code, text, at_signal = stopped
    assert code == 143, text
    assert "Traceback" not in text
    assert "SIGTERM" in text and f"--resume {folder}" in text, text
    reached = checkpoint_iteration(folder)
    # The step running when the signal came was finished and kept: no step is lost.
    assert reached >= at_signal and reached == last_iteration(folder), (reached, at_signal)
    assert not (folder / "result.json").exists() and not (folder / "run.lock").exists()


def test_sigint_twice_stops_at_once_and_the_run_resumes_exactly(spec, reference, tmp_path):
    folder = tmp_path / "run"
    proc = start("run", str(spec), "--seed", "1", "--out", str(folder))
    wait_for(proc, folder, iteration=20)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)  # the second need not wait for the step to end
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert checkpoint_iteration(folder) <= last_iteration(folder)
    r = run("run", "--resume", str(folder))
    assert r.returncode == 0, r.stdout + r.stderr
    assert numbers(folder) == numbers(reference / "seed1")


def test_checkpoints_keep_their_own_interval_and_a_stale_lock_is_taken_over(spec, reference, tmp_path):
    folder = tmp_path / "run"
    proc = start("run", str(spec), "--seed", "1", "--out", str(folder))
    wait_for(proc, folder, iteration=30)
    proc.send_signal(signal.SIGKILL)  # no chance to write anything more
    proc.communicate()
    written, logged = checkpoint_iteration(folder), last_iteration(folder)
    # every 7 iterations, not at eval.every (50)
    assert written % 7 == 0 and written >= 28 and logged - 7 <= written <= logged, (written, logged)
    assert json.loads((folder / "run.lock").read_text())["pid"] == proc.pid

    r = run("run", "--resume", str(folder))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"took over {folder / 'run.lock'}, left by process {proc.pid}" in r.stdout + r.stderr
    assert numbers(folder) == numbers(reference / "seed1")
    assert not (folder / "run.lock").exists()


HOLD_LOCK = """
import sys
from pathlib import Path
from mtdsl.report.lock import RunLock
RunLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_run_into_a_folder_in_use_is_refused(stopped, tmp_path):
    folder = copy_of(stopped, tmp_path / "run")
    before = digest(folder / "checkpoint.pt")
    # A process holding the folder's lock as a run does (the lock of a real run is checked
    # in the SIGKILL test above).
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], cwd=ROOT, env=ENV,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        r = run("run", "--resume", str(folder))
        text = assert_clean_failure(r, 1)
        assert f"{folder} is in use by process {holder.pid} on " in text, text
        assert holder.poll() is None and digest(folder / "checkpoint.pt") == before
    finally:
        holder.communicate("")


def _file_size_limit(limit: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_gives_a_message_and_keeps_the_previous_checkpoint(stopped, reference, tmp_path):
    folder = copy_of(stopped, tmp_path / "run")
    before = digest(folder / "checkpoint.pt")
    # checkpoint.pt is about 50 KB; the metrics and the lock fit under the limit, it does not
    r = run("run", "--resume", str(folder), preexec_fn=_file_size_limit(24_000))
    text = assert_clean_failure(r, 1)
    assert "File too large" in text and f"--resume {folder}" in text, text
    assert digest(folder / "checkpoint.pt") == before
    assert not list(folder.glob(".*.tmp")) and not (folder / "run.lock").exists()

    r = run("run", "--resume", str(folder))  # space again: it continues where it was
    assert r.returncode == 0, r.stdout + r.stderr
    assert numbers(folder) == numbers(reference / "seed1")


def _without_root_file_powers():
    """Root writes into any folder whatever its mode; without CAP_DAC_OVERRIDE (dropped from
    the bounding set, so the exec'd process never regains it) the mode applies to it too."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unwritable_folder_gives_a_message_and_keeps_the_checkpoint(stopped, tmp_path):
    folder = copy_of(stopped, tmp_path / "run")
    before = digest(folder / "checkpoint.pt")
    folder.chmod(0o555)
    try:
        r = run("run", "--resume", str(folder),
                preexec_fn=_without_root_file_powers if os.geteuid() == 0 else None)
    finally:
        folder.chmod(0o755)
    text = assert_clean_failure(r, 1)
    assert str(folder) in text and "writable" in text, text
    assert digest(folder / "checkpoint.pt") == before


def test_a_truncated_checkpoint_is_reported_with_what_to_do(stopped, reference, tmp_path):
    folder = copy_of(stopped, tmp_path / "run")
    path = folder / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    r = run("run", "--resume", str(folder))
    text = assert_clean_failure(r, 1)
    assert str(path) in text and "delete" in text, text
    assert path.exists()  # never deleted for the user

    path.unlink()  # as the message says: the run starts over in its folder
    r = run("run", "--resume", str(folder))
    assert r.returncode == 0, r.stdout + r.stderr
    assert numbers(folder) == numbers(reference / "seed1")


@pytest.mark.slow  # four processes import torch
def test_sigterm_to_the_parent_of_jobs_stops_every_worker_with_a_checkpoint(spec, reference, tmp_path):
    base = tmp_path / "sweep"
    proc = start("run", str(spec), "--jobs", "2", "--out", str(base))
    seeds = [base / "seed1", base / "seed2"]
    wait_for(proc, *seeds, iteration=10)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out + err
    assert "Traceback" not in out + err
    # On an idle machine the first worker may finish its short run before the second has
    # started; a finished run is not a lost one. Every run still going was stopped with a
    # checkpoint at its last logged iteration.
    stopped = [f for f in seeds if not (f / "result.json").exists()]
    assert stopped, "both runs ended before the signal"
    for folder in stopped:
        assert checkpoint_iteration(folder) == last_iteration(folder) >= 10, folder
    assert f"--out {base}" in out + err, out + err

    r = run("run", str(spec), "--out", str(base))  # as the message says (in one process here)
    assert r.returncode == 0, r.stdout + r.stderr
    for folder in seeds:
        assert numbers(folder) == numbers(reference / folder.name)


@pytest.mark.slow  # four processes import torch
def test_sigterm_once_a_run_of_the_sweep_finished_still_ends_it_as_stopped(spec, reference, tmp_path):
    """Seed 1 resumes near its end and finishes; the signal then stops seed 2, the last run
    going, while the parent waits for results: the sweep ends stopped (143), not as a sweep
    with a failed run (1)."""
    base = tmp_path / "sweep"
    seeds = [base / "seed1", base / "seed2"]
    first = start("run", str(spec), "--seed", "1", "--out", str(seeds[0]))
    wait_for(first, seeds[0], iteration=ITERATIONS - 12)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert first.returncode == 143
    proc = start("run", str(spec), "--jobs", "2", "--out", str(base))
    deadline = time.monotonic() + 120
    while not (seeds[0] / "result.json").exists() or last_iteration(seeds[1]) < 10:
        assert proc.poll() is None, f"the sweep ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, "the sweep did not get going"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, out + err
    assert "stopped by SIGTERM" in out + err and f"--out {base}" in out + err, out + err
    assert checkpoint_iteration(seeds[1]) == last_iteration(seeds[1]) >= 10
    assert numbers(seeds[0]) == numbers(reference / "seed1")


def test_a_bad_checkpoint_interval_is_a_located_spec_error(spec, tmp_path):
    bad = []
    for every in ("0", "-3", "2.5"):
        path = tmp_path / f"bad{len(bad)}.mt"
        path.write_text(spec.read_text().replace("checkpoint { every: 7 }", f"checkpoint {{ every: {every} }}"))
        bad.append(path)
    text = assert_clean_failure(run("check", *map(str, bad)), 2)
    line = 1 + SPEC.splitlines().index("  checkpoint {{ every: 7 }}")
    for path in bad:
        assert f"{path}:{line}:" in text, text
    assert text.count("`checkpoint.every`") == 3, text
