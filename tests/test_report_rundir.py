import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import torch

from mtdsl.errors import RunError
from mtdsl.report.rundir import RunDir, WriteError

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 26, 7, 45, 12)


def strict_loads(text):
    def reject(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=reject)


def leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp")]


def test_timestamped_folders_never_collide(tmp_path):
    first = RunDir.create("exp", root=tmp_path, now=NOW)
    second = RunDir.create("exp", root=tmp_path, now=NOW)
    assert first.path == tmp_path / "exp" / "2026-11-26T07-45-12"
    assert second.path == tmp_path / "exp" / "2026-11-26T07-45-12_2"
    assert first.path.is_dir() and second.path.is_dir()


def test_out_folder_is_used_when_new_or_empty(tmp_path):
    assert RunDir.create("exp", out=tmp_path / "a" / "b").path == tmp_path / "a" / "b"
    (tmp_path / "empty").mkdir()
    assert RunDir.create("exp", out=tmp_path / "empty").path.is_dir()


def test_out_folder_with_files_is_refused(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "result.json").write_text("{}")
    with pytest.raises(RunError, match="already holds files"):
        RunDir.create("exp", out=tmp_path / "old")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="is a file"):
        RunDir.create("exp", out=tmp_path / "file")


def test_spec_is_written_byte_for_byte(tmp_path):
    text = "experiment x {\r\n  seed 1  # ünïcode\n}\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    run = RunDir.create("exp", out=tmp_path / "run")
    run.write_spec(text, digest)
    assert (run.path / "spec.mt").read_bytes() == text.encode()
    assert (run.path / "spec.sha256").read_text() == f"{digest}  spec.mt\n"


def test_json_is_strict_ordered_and_indented(tmp_path):
    run = RunDir.create("exp", out=tmp_path / "run")
    nan, inf = float("nan"), float("inf")
    obj = {"z": 1, "a": nan, "m": [inf, -inf, 0.5, (1, 2)], "n": {"k": None}}
    path = run.write_json("plan", obj)
    text = path.read_text()
    assert path.name == "plan.json"
    assert text.startswith('{\n  "z": 1,')  # indent 2, insertion order kept
    expected = {"z": 1, "a": None, "m": [None, None, 0.5, [1, 2]], "n": {"k": None}}
    assert strict_loads(text) == expected
    assert obj["a"] != obj["a"]  # the caller's object is not modified


def test_result_round_trips(tmp_path):
    run = RunDir.create("exp", out=tmp_path / "run")
    result = {"experiment": "exp", "test": {"omniglot/test": {"metric": "accuracy", "mean": 0.9}}}
    run.write_result(result)
    assert strict_loads((run.path / "result.json").read_text()) == result


def test_files_get_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    run = RunDir.create("exp", out=tmp_path / "run")
    path = run.write_json("plan", {})
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_replace_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    run = RunDir.create("exp", out=tmp_path / "run")
    run.write_result({"version": 1})

    def crash(*args):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(WriteError, match="simulated"):  # a RunError naming the file
        run.write_result({"version": 2, "big": list(range(10_000))})
    assert strict_loads((run.path / "result.json").read_text()) == {"version": 1}
    assert leftovers(run.path) == []


def run_child(code, cwd):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_process_killed_mid_write_leaves_old_file_whole(tmp_path):
    # The child is killed after writing the new bytes but before the rename: the worst moment.
    child = run_child(
        """
        import os, signal
        from mtdsl.report.rundir import RunDir
        run = RunDir.create("exp", out="run")
        run.write_result({"version": 1})
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        run.write_result({"version": 2, "big": list(range(100_000))})
        """,
        tmp_path,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert strict_loads((tmp_path / "run" / "result.json").read_text()) == {"version": 1}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_metrics_survive_a_killed_process(tmp_path):
    child = run_child(
        """
        import os, signal
        from mtdsl.report.rundir import RunDir
        run = RunDir.create("exp", out="run")
        for i in range(1, 101):
            run.append_metrics({"iteration": i, "loss": 1.0 / i, "lr": 1e-3})
        run.append_metrics({"iteration": 101, "loss": float("nan")})
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        tmp_path,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    text = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    records = [strict_loads(line) for line in text.splitlines()]
    assert [r["iteration"] for r in records] == list(range(1, 102))
    assert records[41] == {"iteration": 42, "loss": 1.0 / 42, "lr": 1e-3}
    assert records[-1] == {"iteration": 101, "loss": None}


def test_metrics_append_across_reopen(tmp_path):
    with RunDir.create("exp", out=tmp_path / "run") as run:
        run.append_metrics({"iteration": 1})
    with RunDir(run.path) as again:
        again.append_metrics({"iteration": 2})
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    assert [strict_loads(line)["iteration"] for line in lines] == [1, 2]


def test_tensors_round_trip_as_compact_cpu_copies(tmp_path):
    run = RunDir.create("exp", out=tmp_path / "run")
    big = torch.randn(1000, 1000)
    scores = torch.randn(3, 4, requires_grad=True)
    path = run.save_tensors("masks", {"row": big[7], "scores": scores, "mask": scores > 0})
    assert path.name == "masks.pt"
    loaded = torch.load(path)
    assert torch.equal(loaded["row"], big[7])
    assert torch.equal(loaded["mask"], scores > 0)
    assert not loaded["scores"].requires_grad
    # a view of one row must not drag the whole 4 MB storage into the file
    assert path.stat().st_size < 100_000
    assert leftovers(run.path) == []


def test_file_names_must_be_plain(tmp_path):
    run = RunDir.create("exp", out=tmp_path / "run")
    with pytest.raises(ValueError):
        run.write_json("../escape", {})
    with pytest.raises(ValueError):
        RunDir.create("a/b", root=tmp_path)
