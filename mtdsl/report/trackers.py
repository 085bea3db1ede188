"""Experiment trackers as sinks of the recipe (recipe/sinks.py): TensorBoard and MLflow,
written with the libraries' own writers, opt-in by `log { tensorboard: true, mlflow: true }`
in a spec or `mtdsl run --log tensorboard,mlflow`.

Each run (one seed of one experiment or sweep point) is one tracker run and receives:
  metrics     every record of metrics.jsonl (nested values flattened with `/`, e.g.
              `layer_sparsity/layer1.weight`, `valid/mean`), by iteration, and at the end
              the meta-test results as `test/<dataset>/mean` and `.../ci95`
  parameters  the resolved spec, one dotted path per value (`outer.optimizer.lr`), and the seed
  artifacts   spec.mt, resolved.json and result.json, and the run's figures (report/figures.py),
              drawn into <run>/figures when the run finishes

TensorBoard: an event folder `<run>/tensorboard/` per seed; `tensorboard --logdir` on the
experiment's folder shows every seed and sweep point side by side.
MLflow: the tracking server of `MLFLOW_TRACKING_URI`, or else a SQLite store `mlflow.db`
with artifacts in `mlartifacts/`, both in the experiment's folder (runs/<name>/<time>/, or
--out), shared by its seeds and sweep points. The MLflow experiment is the spec's
experiment or sweep name; tags name the sweep point, seed and run folder. A resumed run
continues its tracker run.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..recipe.sinks import Sink
from .rundir import RESOLVED, RESULT, SPEC, open_run

TRACKERS = ("tensorboard", "mlflow")
TENSORBOARD_DIR = "tensorboard"
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"
# What each tracker needs importable; the `trackers` extra installs them.
_NEEDS = {"tensorboard": ("tensorboard", "torch.utils.tensorboard"), "mlflow": ("mlflow", "sqlalchemy", "alembic")}


@dataclass(frozen=True)
class TrackedRun:
    group: str  # the experiment's or sweep's name: the MLflow experiment
    point: str | None  # the sweep point's label
    seed: int
    store: Path  # the experiment's folder, shared by its seeds and points


def parse_log_option(text: str | None) -> tuple[str, ...]:
    """`--log tensorboard,mlflow` as tracker names; ValueError names an unknown one."""
    if not text:
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ValueError(f"--log: unknown tracker `{unknown[0]}`; use tensorboard, mlflow or both, "
                         "comma-separated")
    return names


def wanted(experiment, option: tuple[str, ...]) -> tuple[str, ...]:
    """The trackers a run logs to: those its spec's `log` section turns on, and --log's."""
    log = getattr(experiment, "log", None)
    from_spec = [t for t in TRACKERS if log is not None and getattr(log, t)]
    return tuple(t for t in TRACKERS if t in from_spec or t in option)


def check_installed(names: tuple[str, ...]) -> None:
    """Before any run starts: a tracker whose library is missing stops with what to install."""
    import importlib.util

    for name in names:
        missing = [m for m in _NEEDS[name] if importlib.util.find_spec(m.split(".")[0]) is None]
        if missing:
            raise RunError(f"logging to {name} needs the package {missing[0]}, which is not installed; "
                           "install the trackers with: pip install 'mtdsl[trackers]'")


def open_trackers(names: tuple[str, ...], run: TrackedRun) -> list[Sink]:
    figures = _Figures()
    table = {"tensorboard": TensorBoardSink, "mlflow": MLflowSink}
    return [table[n](run, figures) for n in names]


def for_run(experiment, option: tuple[str, ...], group: str, point: str | None, seed: int,
            folder: Path) -> list[Sink]:
    """The tracker sinks of one planned run. Its folder is `<experiment folder>/[<point>/]
    [seed<N>]` (cli/run.plan_folders), and the experiment folder holds the shared store."""
    store = folder.parent if folder.name == f"seed{seed}" else folder
    store = store.parent if point and store.name == point else store
    return open_trackers(wanted(experiment, option), TrackedRun(group, point, seed, store))


def for_resumed(experiment, option: tuple[str, ...], name: str, seed: int, folder: Path) -> list[Sink]:
    """The tracker sinks of a run continued from its folder alone: the store is the nearest
    folder above holding one, and the tracker run is found by its folder tag."""
    store = next((f for f in (folder, folder.parent, folder.parent.parent) if (f / MLFLOW_DB).exists()),
                 folder)
    return open_trackers(wanted(experiment, option), TrackedRun(name, None, seed, store))


# ---- what every tracker receives ------------------------------------------------------------

def flat_numbers(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves by `/`-joined key; strings (a metric's name) and non-finite values
    (a tracker cannot plot them) are left out. The iteration is the step, not a value."""
    out: dict[str, float] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_numbers(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and key != "iteration" \
                and math.isfinite(v):
            out[key] = float(v)
    return out


# Tables keyed by selectors (`"head.**"`): one parameter each, as JSON, since a tracker's
# parameter names cannot hold `*`, `{` or `"`.
SELECTOR_TABLES = ("params", "init", "inner.lr")


def flat_params(value: Any, prefix: str = "") -> dict[str, str]:
    """The resolved spec as dotted paths to printed values."""
    if isinstance(value, dict) and value and prefix not in SELECTOR_TABLES:
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flat_params(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: json.dumps(value) if not isinstance(value, str) else value}


def result_numbers(result: dict) -> dict[str, float]:
    """result.json's meta-test results as `test/<dataset>/<split>/mean` and `.../ci95`."""
    return flat_numbers({"test": {label: {"mean": e["mean"], "ci95": e["ci95"]}
                                  for label, e in result.get("test", {}).items()}})


class _Figures:
    """The run's figures, drawn once for all its trackers when the run has finished."""

    def __init__(self) -> None:
        self.paths: list[Path] | None = None

    def of(self, folder: Path) -> list[Path]:
        if self.paths is None:
            from .figures import run_figures

            self.paths = [w.path for w in run_figures(open_run(folder)).written]
        return self.paths


# ---- TensorBoard ----------------------------------------------------------------------------

class TensorBoardSink(Sink):
    """torch's SummaryWriter into <run>/tensorboard."""

    def __init__(self, run: TrackedRun, figures: _Figures):
        self.run, self.figures = run, figures
        self.writer = None
        self.step = 0

    def start(self, resolved: dict, folder: Path) -> None:
        self.folder, self.resolved = folder, resolved

    def _open(self, first_step: int):
        """Opened at the first record: a resumed run drops what its first life logged past
        the checkpoint (`purge_step`), as metrics.jsonl does."""
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.folder / TENSORBOARD_DIR), purge_step=first_step)
            self.writer.add_text(SPEC, _code((self.folder / SPEC).read_text()), 0)
            self.writer.add_text(RESOLVED, _code(json.dumps(self.resolved, indent=2)), 0)
        return self.writer

    def record(self, record: dict[str, Any]) -> None:
        self.step = int(record.get("iteration", self.step))
        writer = self._open(self.step)
        for key, value in flat_numbers(record).items():
            writer.add_scalar(key, value, self.step)

    def finish(self, result: dict) -> None:
        import matplotlib.image

        writer = self._open(self.step)
        step = int(result.get("iterations", self.step))
        for key, value in result_numbers(result).items():
            writer.add_scalar(key, value, step)
        for path in self.figures.of(self.folder):
            writer.add_image(f"figures/{path.stem}", matplotlib.image.imread(path)[..., :3], step,
                             dataformats="HWC")
        params = {k: _hparam(v) for k, v in flat_params(self.resolved.get("spec", {})).items()}
        params["seed"] = self.run.seed
        if self.run.point:
            params["point"] = self.run.point
        # The hparams summary alone, in the run's own event file: SummaryWriter.add_hparams would
        # open a timestamped subfolder and log the test values a second time.
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(params, result_numbers(result)):
            writer.file_writer.add_summary(summary)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _code(text: str) -> str:
    """TensorBoard renders text as Markdown: indent to keep it verbatim."""
    return "\n".join("    " + line for line in text.splitlines())


def _hparam(v: str):
    try:
        x = json.loads(v)
    except ValueError:
        return v
    return x if isinstance(x, (int, float, bool)) else v


# ---- MLflow ---------------------------------------------------------------------------------

def _reported(method):
    """An MLflow failure (a server gone, a store that cannot be written) ends the run as a
    RunError that names the tracking URI; the run folder keeps everything logged so far."""
    @functools.wraps(method)
    def call(self, *args):
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return method(self, *args)
        except (MlflowException, SQLAlchemyError, OSError) as e:
            why = e.message if isinstance(e, MlflowException) else f"{type(e).__name__}: {e}"
            raise RunError(f"MLflow at {self.uri}: {why}. The run folder "
                           f"{self.folder} keeps everything; run without MLflow, or fix "
                           "MLFLOW_TRACKING_URI and continue with --resume") from None
    return call


class MLflowSink(Sink):
    """The mlflow client (no global active run: several runs may log from one process)."""

    BATCH = 200  # metric values sent per request

    def __init__(self, run: TrackedRun, figures: _Figures):
        self.run, self.figures = run, figures
        self.client = None
        self.run_id = None
        self.pending: list = []
        self.finished = False

    def start(self, resolved: dict, folder: Path) -> None:
        self.folder = folder
        server = os.environ.get("MLFLOW_TRACKING_URI")
        store = self.run.store.resolve()
        self.uri = server or f"sqlite:///{store / MLFLOW_DB}"
        self._start(resolved, folder, None if server else (store / MLFLOW_ARTIFACTS).as_uri())

    @_reported
    def _start(self, resolved: dict, folder: Path, artifacts: str | None) -> None:
        import logging

        from mlflow.tracking import MlflowClient

        # The store's set-up messages would break into the live display (after the import,
        # which sets mlflow's own logging up).
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri=self.uri)
        existing = self.client.search_runs(
            [e.experiment_id for e in self.client.search_experiments()],
            filter_string=f"tags.`mtdsl.folder` = '{_quote(str(folder.resolve()))}'", max_results=1)
        if existing:  # a resumed run continues its tracker run
            self.run_id = existing[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self._experiment(artifacts)
        tags = {"mtdsl.experiment": resolved.get("experiment", ""), "mtdsl.seed": str(self.run.seed),
                "mtdsl.folder": str(folder.resolve()), "mtdsl.spec_sha256": resolved.get("spec_sha256", "")}
        if self.run.point:
            tags["mtdsl.point"] = self.run.point
        name = f"{self.run.point} seed{self.run.seed}" if self.run.point else f"seed{self.run.seed}"
        self.run_id = self.client.create_run(experiment, run_name=name, tags=tags).info.run_id
        params = {**flat_params(resolved.get("spec", {})), "seed": str(self.run.seed)}
        self._params(params)
        for f in (SPEC, RESOLVED):
            self.client.log_artifact(self.run_id, str(folder / f))

    def _experiment(self, artifacts: str | None) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.run.group)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.run.group, artifact_location=artifacts)
        except MlflowException:  # a parallel worker created it first
            return self.client.get_experiment_by_name(self.run.group).experiment_id

    def _params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:250], v[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):  # the API's limit per request
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    @_reported
    def record(self, record: dict[str, Any]) -> None:
        self._metrics(flat_numbers(record), int(record.get("iteration", 0)))
        if len(self.pending) >= self.BATCH:
            self._flush()

    def _metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(k, v, now, step) for k, v in values.items()]

    def _flush(self) -> None:
        for i in range(0, len(self.pending), 1000):
            self.client.log_batch(self.run_id, metrics=self.pending[i:i + 1000])
        self.pending = []

    @_reported
    def flush(self) -> None:
        self._flush()

    @_reported
    def artifact(self, path: Path) -> None:
        if path.name == RESULT:
            self.client.log_artifact(self.run_id, str(path))

    @_reported
    def finish(self, result: dict) -> None:
        self._metrics(result_numbers(result), int(result.get("iterations", 0)))
        self._flush()
        for path in self.figures.of(self.folder):
            self.client.log_artifact(self.run_id, str(path), artifact_path="figures")
        self.client.set_terminated(self.run_id, "FINISHED")
        self.finished = True

    @_reported
    def close(self) -> None:
        if self.run_id is None:  # it never started
            return
        self._flush()
        if not self.finished:  # stopped or failed: `mtdsl run --resume` continues this run
            self.client.set_terminated(self.run_id, "KILLED")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
