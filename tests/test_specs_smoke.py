"""Every spec in specs/ runs end to end: each experiment, and one point of each sweep, goes
through the `mtdsl run` command to a result.json on small copies of its datasets in their
real on-disk layouts (the real Omniglot where a spec names it).

The runs are enumerated with the project's own loader, so a spec added to specs/ is run here
the day it is added. Each run is shrunk only in what the spec leaves free to change: two
iterations of two one-shot tasks, four validation and test tasks, 84x84 inputs at the
smallest size the network still compiles for, and the paper's conv nets narrower (a smaller
WRN `k`, fewer ResNet-12 channels), except in the headline specs, which run their networks at
full width: WRN-28-10 really trains one iteration here.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, real_data_root
from fixtures import layouts
from mtdsl.cli.select import compile_units, load_ref
from mtdsl.errors import SpecError
from mtdsl.language import printer
from mtdsl.validate.sweep import expand

SPECS = ROOT / "specs"
# Run at the network's full width: the commands the README tells researchers to type.
FULL_WIDTH = {"wrn_miniimagenet.mt", "resnet12_miniimagenet.mt"}
# Narrower versions of the paper's conv nets, same depth and blocks, for every other run.
NARROW = {"wrn28": ["model.k=1"], "resnet12": ["model.channels=[8, 16, 32, 64]"]}
SIZES = (8, 16, 32)  # inputs above 32 pixels shrink to the first of these the network takes
SHARDS = 2  # processes running at once: the CI machine's cores


@dataclass
class Run:
    id: str  # "file.mt::experiment" or "file.mt::sweep[point]"
    ref: str  # what `mtdsl run` is given
    point: list[str] = field(default_factory=list)  # a sweep point's values, as --set

    @property
    def full_width(self) -> bool:
        return Path(self.ref.split("::")[0]).name in FULL_WIDTH


def every_run() -> list[Run]:
    runs = []
    for path in sorted(SPECS.glob("*.mt")):
        ws, names = load_ref(str(path))
        for name in names:
            if name in ws.sweeps:
                point = expand(ws, name)[0][0]
                runs.append(Run(f"{path.name}::{name}[{point.label}]", f"{path}::{ws.sweeps[name].base}",
                                [f"{a.targets[0]}={printer.value(a.value)}"
                                 for a in point.assigns]))
            else:
                runs.append(Run(f"{path.name}::{name}", f"{path}::{name}"))
    return runs


def literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    return repr(value)


def dataset_call(ds, size: int | None) -> str:
    """The dataset as the spec language writes it, at `size`, checksums off (a small copy
    cannot match the published ones)."""
    fields = ds.model_dump(exclude_defaults=True)
    kind = fields.pop("kind")
    if size is not None:
        fields["size"] = size
    if kind in layouts.CHECKSUMMED:
        fields["verify"] = False
    return f"{kind}(" + ", ".join(f"{k}: {literal(v)}" for k, v in fields.items()) + ")"


def data_sets(experiment, size: int | None) -> list[str]:
    data = experiment.data
    sets = [f"data.train={dataset_call(data.train, size)}"]
    if data.valid is not None:
        sets.append(f"data.valid={dataset_call(data.valid, size)}")
    sets.append("data.test=[" + ", ".join(dataset_call(d, size) for d in data.test) + "]")
    return sets


def swept(sets: list[str], point: list[str]) -> list[str]:
    """`sets` without what the sweep point assigns: the point's value is the one under test."""
    fixed = {p.split("=", 1)[0] for p in point}
    return [s for s in sets if s.split("=", 1)[0] not in fixed]


SHRUNK: dict[str, list[str]] = {}


def smoke_sets(run: Run) -> list[str]:
    """The --set lines that shrink `run`, checked by compiling: the spec's own network, on
    inputs it takes."""
    if run.id not in SHRUNK:
        SHRUNK[run.id] = shrink(run)
    return SHRUNK[run.id]


def shrink(run: Run) -> list[str]:
    one = "1" if run.full_width else "2"
    sets = swept([f"outer.iterations={one}", f"outer.meta_batch={one}", "eval.valid_tasks=4",
                  "eval.test_tasks=4", "task.shots=1", "task.queries=1"], run.point)
    experiment = compile_units(run.ref, run.point + sets)[0].compiled.experiment
    if not run.full_width:
        sets += swept(NARROW.get(experiment.model.func, []), run.point)
    own = getattr(experiment.data.train, "size", None)
    for size in [s for s in SIZES if own and own > 32 and s < own]:
        attempt = sets + data_sets(experiment, size)
        try:
            compile_units(run.ref, run.point + attempt)
            return attempt
        except SpecError:
            continue
    if any(d.kind in layouts.CHECKSUMMED for d in datasets(experiment)):
        return sets + data_sets(experiment, None)
    return sets


def datasets(experiment) -> list:
    data = experiment.data
    return [d for d in (data.train, data.valid, *data.test) if d is not None]


RUNS = every_run()


def result_labels(experiment) -> list[str]:
    """How the recipe names each test set in result.json ("#2" marks a repeated one)."""
    from mtdsl.recipe.sources import label

    return [label(d) for d in experiment.data.test]


def argv(run: Run, out: Path) -> list[str]:
    experiment = compile_units(run.ref, run.point)[0].compiled.experiment
    command = ["run", run.ref, "--seed", str(experiment.seeds[0]), "--device", "cpu", "--out", str(out)]
    for line in run.point + smoke_sets(run):
        command += ["--set", line]
    return command


def slug(run: Run) -> str:
    return run.id.replace("::", "--").replace("/", "_")


def cost(run: Run) -> float:
    """A rough size of the run, to share the runs out evenly: parameters count most."""
    compiled = compile_units(run.ref, run.point + smoke_sets(run))[0].compiled
    return 1.0 + sum(p.numel for p in compiled.plan.params) / 1e6 * (10 if run.full_width else 1)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Every run's exit code, seconds and folder: the runs shared out over SHARDS processes,
    each running its share through the `mtdsl` command one after another."""
    base = tmp_path_factory.mktemp("smoke")
    data = base / "data"
    data.mkdir()
    names = {d.kind for run in RUNS for d in datasets(compile_units(run.ref, run.point)[0].compiled.experiment)}
    layouts.write_datasets(data, names, omniglot=real_data_root())
    shards: list[list[dict]] = [[] for _ in range(SHARDS)]
    loads = [0.0] * SHARDS
    costs = {run.id: cost(run) for run in RUNS}
    for run in sorted(RUNS, key=lambda r: costs[r.id], reverse=True):  # largest first, to the emptiest shard
        i = loads.index(min(loads))
        loads[i] += costs[run.id]
        shards[i].append({"id": run.id, "argv": argv(run, base / "runs" / slug(run)),
                          "log": str(base / f"{slug(run)}.log")})
    # One thread per process: two processes fill two cores, and on a busy machine torch's
    # threads waiting for each other cost more than they compute (measured: 5x the CPU time).
    env = {**os.environ, "MTDSL_DATA": str(data), "MTDSL_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    processes = []
    for i, shard in enumerate(shards):
        (base / f"plan{i}.json").write_text(json.dumps(shard))
        processes.append(subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fixtures" / "cli_batch.py"),
             str(base / f"plan{i}.json"), str(base / f"report{i}.json")], cwd=base, env=env))
    for p in processes:
        p.wait()
    report = {}
    for i in range(SHARDS):
        path = base / f"report{i}.json"
        report.update(json.loads(path.read_text()) if path.exists() else {})
    return base, report


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS, ids=[r.id for r in RUNS])
def test_spec_runs_to_a_result(run, smoke):
    base, report = smoke
    log = base / f"{slug(run)}.log"
    assert run.id in report, f"the batch never reached this run; see {base}"
    assert report[run.id]["exit"] == 0, log.read_text()[-4000:]
    result = json.loads((base / "runs" / slug(run) / "result.json").read_text())
    compiled = compile_units(run.ref, run.point + smoke_sets(run))[0].compiled
    experiment = compiled.experiment
    assert result["experiment"] == run.ref.split("::")[1]
    assert result["iterations"] == experiment.outer.iterations <= 2  # a sweep point may say 0
    labels = result_labels(experiment)
    assert len(result["test"]) == len(labels) and set(labels) <= set(result["test"]), result["test"]
    for entry in result["test"].values():
        assert entry["tasks"] == 4 and math.isfinite(entry["mean"])
        if entry["metric"] == "accuracy":
            assert 0.0 <= entry["mean"] <= 1.0
    if experiment.outer.iterations:  # it said what it would cost before training this network
        assert f"parameters     {sum(p.numel for p in compiled.plan.params):,}" in log.read_text()


def test_wrn_28_10_trained_at_full_width(smoke):
    base, report = smoke
    run = next(r for r in RUNS if r.id == "wrn_miniimagenet.mt::wrn_miniimagenet")
    assert report[run.id]["exit"] == 0
    assert "parameters     36,475,989 (36.5 M)" in (base / f"{slug(run)}.log").read_text()


def test_the_headline_run_without_minimagenet_says_where_to_put_it_and_starts_nothing(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "mtdsl.cli.main", "run", str(SPECS / "wrn_miniimagenet.mt")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MTDSL_DATA": str(empty), "MTDSL_OFFLINE": "1"})
    assert done.returncode == 1
    message = " ".join(done.stderr.split())  # the terminal may wrap it
    assert "mini_imagenet (mini-ImageNet) data not found" in message
    # located at the line of the spec that names the dataset
    assert re.search(r"mini_imagenet_wrn28\.mt:\d+:\d+: data\.(test|valid|train): mini_imagenet", message), message
    assert f"{empty}/mini-imagenet/mini-imagenet-cache-{{train,validation,test}}.pkl" in message
    assert "Size: 1.3 GB" in message
    assert "Traceback" not in done.stderr + done.stdout
    assert "computing" not in done.stdout  # no learner was built, no iteration ran
    assert not (tmp_path / "runs").exists()  # and no run folder was left behind
