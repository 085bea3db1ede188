"""Experiment trackers: short real runs logged to TensorBoard and MLflow, read back with each
library's own reader (TensorBoard's EventAccumulator, `mlflow.search_runs`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

MTDSL = str(Path(sys.executable).parent / "mtdsl")

# A sweep of two points, two seeds each: four tracker runs in one MLflow experiment. The spec
# turns TensorBoard on; the command line adds MLflow.
SWEEP = f'''import "{ROOT}/specs/sinusoid_ticket.mt"

experiment tracked extends sinusoid_ticket {{
  seeds: [1, 2]
  outer {{ iterations: 4 }}
  eval {{ every: 2, test_tasks: 10 }}
  log {{ tensorboard: true }}
}}

sweep steps over tracked {{ inner.steps: [1, 2] }}
'''


def _run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([MTDSL, "run", *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, cwd=cwd)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def _metrics(folder: Path) -> list[dict]:
    return [json.loads(l) for l in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tracked")
    (root / "sweep.mt").write_text(SWEEP)
    env = {k: "" for k in ("MLFLOW_TRACKING_URI",)}
    r = _run(f"{root / 'sweep.mt'}::steps", "--log", "mlflow", "--out", str(root / "out"), env=env)
    assert "mlflow" not in r.stdout.lower() and "INFO" not in r.stderr  # the terminal stays as it was
    return root / "out"


FOLDERS = [("inner.steps=1", 1), ("inner.steps=1", 2), ("inner.steps=2", 1), ("inner.steps=2", 2)]


def test_tensorboard_has_every_metric_the_spec_and_figures(sweep: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for point, seed in FOLDERS:
        folder = sweep / point / f"seed{seed}"
        events = EventAccumulator(str(folder / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
        events.Reload()
        records = [r for r in _metrics(folder) if "loss" in r]
        loss = events.Scalars("loss")
        assert [e.step for e in loss] == [r["iteration"] for r in records] == [1, 2, 3, 4]
        assert [e.value for e in loss] == pytest.approx([r["loss"] for r in records], rel=1e-6)
        assert [e.value for e in events.Scalars("layer_sparsity/layer2.weight")] == \
            pytest.approx([r["layer_sparsity"]["layer2.weight"] for r in records])
        result = json.loads((folder / "result.json").read_text())
        [test] = events.Scalars("test/sinusoid/test/mean")
        assert test.step == 4 and test.value == pytest.approx(result["test"]["sinusoid/test"]["mean"])
        assert {"figures/sparsity", "figures/inner_grad"} <= set(events.Tags()["images"])
        spec = events.Tensors("spec.mt/text_summary")[0].tensor_proto.string_val[0].decode()
        assert "experiment tracked" in spec and f"steps: {point[-1]}" in spec


def test_mlflow_groups_the_sweep_one_run_per_seed(sweep: Path):
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{sweep / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["steps"], output_format="list")
    found = sorted((r.data.tags["mtdsl.point"], int(r.data.tags["mtdsl.seed"])) for r in runs)
    assert found == FOLDERS
    client = MlflowClient(uri)
    for r in runs:
        point, seed = r.data.tags["mtdsl.point"], int(r.data.tags["mtdsl.seed"])
        folder = sweep / point / f"seed{seed}"
        assert r.info.status == "FINISHED" and r.data.tags["mtdsl.folder"] == str(folder.resolve())
        assert r.info.run_name == f"{point} seed{seed}"
        params = r.data.params
        assert params["inner.steps"] == point[-1] and params["seed"] == str(seed)
        assert params["outer.iterations"] == "4" and json.loads(params["params"]) == \
            {"layer2.weight": "masked", "**": "meta"}
        records = [x for x in _metrics(folder) if "loss" in x]
        history = sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, "loss"))
        assert [s for s, _ in history] == [x["iteration"] for x in records]
        assert [v for _, v in history] == pytest.approx([x["loss"] for x in records])
        result = json.loads((folder / "result.json").read_text())
        assert r.data.metrics["test/sinusoid/test/mean"] == pytest.approx(result["test"]["sinusoid/test"]["mean"])
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)} | \
            {a.path for a in client.list_artifacts(r.info.run_id, "figures")}
        assert {"spec.mt", "resolved.json", "result.json", "figures/sparsity.png"} <= artifacts
        spec = Path(client.download_artifacts(r.info.run_id, "spec.mt", str(folder.parent / f"dl{seed}")))
        assert spec.read_text() == (folder / "spec.mt").read_text()


def test_an_unknown_tracker_is_refused():
    r = subprocess.run([MTDSL, "run", str(ROOT / "specs" / "sinusoid_maml.mt"), "--log", "wandb"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown tracker `wandb`" in r.stderr and "Traceback" not in r.stderr


def test_an_unusable_tracking_store_is_a_run_error_not_a_crash(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'missing-file' / 'x.db'}"
    (tmp_path / "missing-file").write_text("a file where the store's folder would be")
    r = subprocess.run([MTDSL, "run", str(ROOT / "specs" / "sinusoid_maml.mt"), "--seed", "1", "--log", "mlflow",
                        "--out", str(tmp_path / "run"), "--set", "outer.iterations=2"],
                       capture_output=True, text=True, env={**os.environ, "MLFLOW_TRACKING_URI": uri}, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert f"MLflow at {uri}" in r.stderr and "--resume" in r.stderr
    assert (tmp_path / "run" / "spec.mt").is_file()


@pytest.mark.slow
def test_a_killed_run_resumes_its_tracker_runs(tmp_path: Path):
    """SIGKILL after a few checkpoints, then --resume: the same MLflow run ends FINISHED with
    every step, and TensorBoard shows each step once (what the first life logged past the
    checkpoint is dropped, as from metrics.jsonl)."""
    import signal
    import time

    import mlflow
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path / 'server.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    folder = tmp_path / "run"
    proc = subprocess.Popen([MTDSL, "run", str(ROOT / "specs" / "sinusoid_maml.mt"), "--seed", "3", "--out", str(folder),
                             "--log", "mlflow,tensorboard", "--set", "outer.iterations=60", "--set", "inner.steps=1",
                             "--set", "eval.every=5", "--set", "eval.test_tasks=5"],
                            # MLflow puts a SQLite store's artifacts in ./mlruns: keep them here.
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)

    def logged() -> int:
        lines = (folder / "metrics.jsonl").read_text().splitlines() if (folder / "metrics.jsonl").exists() else []
        return max((json.loads(l)["iteration"] for l in lines if l.endswith("}")), default=0)

    deadline = time.monotonic() + 120
    while logged() < 12 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (folder / "result.json").exists(), "the run ended before it could be killed"
    _run("--resume", str(folder), "--log", "mlflow,tensorboard", env=env, cwd=tmp_path)

    assert not (folder / "mlflow.db").exists()  # MLFLOW_TRACKING_URI is where it went
    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=["sinusoid_maml"], output_format="list")
    assert run.info.status == "FINISHED" and run.data.tags["mtdsl.seed"] == "3" and "mtdsl.point" not in run.data.tags
    steps = {m.step for m in MlflowClient(uri).get_metric_history(run.info.run_id, "loss")}
    assert steps == set(range(1, 61))
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    records = [r for r in _metrics(folder) if "loss" in r]
    assert [e.step for e in events.Scalars("loss")] == [r["iteration"] for r in records] == list(range(1, 61))
    assert [e.value for e in events.Scalars("loss")] == pytest.approx([r["loss"] for r in records], rel=1e-6)
