"""The compiled meta-gradient (engine.compiled: traced through autograd, compiled by Inductor)
against the eager stacked engine: the same meta-gradients, metrics and steps for every kind
of spec; and the fallback to the eager engine, with one line, where it cannot compile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
import torch

from mtdsl.compile.module import CompiledModel
from mtdsl.engine import MetaLearner, compiled_store
from mtdsl.engine.meta import COMPILE_FROM_ITERATIONS

from conftest import ROOT
from test_engine_stacked import (MAML, TICKET, assert_same_gradients, assert_same_stats,
                                 compile_spec, tasks)


def learners(c, compile_: bool = True) -> tuple[MetaLearner, MetaLearner]:
    """A learner that compiles its meta-gradient and one that does not, on the same plan."""
    def plan(choice):
        return replace(c.plan, device=replace(c.plan.device, compile=choice))
    compiled = MetaLearner(CompiledModel(c.graph), plan(compile_), seed=1)
    eager = MetaLearner(CompiledModel(c.graph), plan(False), seed=1)
    assert eager.compiled is None and eager.not_compiled == "`device.compile: false`"
    return compiled, eager


# Small networks, one inner step where more add nothing new to the graph: a first compile
# of a graph takes Inductor tens of seconds on a 2-core CPU, most of it generating and
# compiling kernels, and grows with the graph.
SMALL_MLP = "mlp(hidden: [12], classes: 3)"
SMALL_CONV = "conv4(hidden: 4, blocks: 1, classes: 3)"
CASES = {
    "ticket mlp (batch norm)": dict(model=SMALL_MLP, params=TICKET),
    "maml mlp two steps": dict(model=SMALL_MLP, params=MAML, steps=2),
    "anil mlp": dict(model=SMALL_MLP, params=MAML, lr='lr: 0, lr["head.**"]: 0.3'),
    "boil mlp": dict(model=SMALL_MLP, params=MAML, lr='lr: 0.3, lr["head.**"]: 0'),
    "ticket conv4 (batch norm, pooling)": dict(model=SMALL_CONV, params=TICKET),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_compiled_and_eager_give_the_same_meta_gradients_and_metrics(tmp_path, case):
    c = compile_spec(tmp_path, **CASES[case])
    batch = tasks(c)
    compiled, eager = learners(c)
    assert compiled.execution(batch).endswith("stacked, compiled, float32")
    for seed in range(2):  # the first call compiles, the second runs what it compiled
        batch = tasks(c, seed)
        got, got_stats = compiled.meta_gradients(batch)
        want, want_stats = eager.meta_gradients(batch)
        assert compiled.compiled is not None and compiled.notes == [], compiled.notes
        assert_same_gradients(got, want)
        assert_same_stats(got_stats, want_stats)


@pytest.mark.slow
def test_iterand_changes_the_weights_the_compiled_step_reads(tmp_path):
    # IteRand re-draws weights in place; a graph that had kept them as constants would go on
    # computing with the first draw and part from the eager engine after the first step.
    c = compile_spec(tmp_path, SMALL_MLP, TICKET, mask="sparsity: 0.5",
                     iterand="iterand { every: 1, prob: 0.5 }")
    compiled, eager = learners(c)
    before = {k: w.clone() for k, w in compiled.weights.items()}
    for seed in range(3):
        batch = tasks(c, seed)
        a, b = compiled.meta_step(batch), eager.meta_step(batch)
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
    assert compiled.compiled is not None
    assert any(not torch.equal(before[k], compiled.weights[k]) for k in before)
    for key in eager.learned:
        torch.testing.assert_close(compiled.learned[key], eager.learned[key], rtol=1e-5, atol=1e-5)
    for key in eager.weights:
        torch.testing.assert_close(compiled.weights[key], eager.weights[key], rtol=1e-5, atol=1e-5)


DROPOUT_MODEL = """\
    model drop_mlp(classes: int) {
      flatten
      layer1: linear(12) -> relu -> dropout(0.5)
      head: linear(classes)
    }
"""


def test_random_numbers_leave_the_eager_engine_in_charge(tmp_path):
    # Inductor draws dropout's random numbers its own way, not from torch's generator.
    (tmp_path / "models.mt").write_text(textwrap.dedent(DROPOUT_MODEL))
    c = compile_spec(tmp_path, "drop_mlp(classes: 3)", '"**": meta',
                     extra_import=tmp_path / "models.mt")
    compiled, eager = learners(c)
    batch = tasks(c)
    said = compiled.compile_now(batch)
    assert said.startswith("meta-gradient not compiled (it draws random numbers (aten.")
    assert said.endswith("the eager engine computes it")
    assert compiled.compiled is None and "random numbers" in compiled.not_compiled
    assert compiled.execution(batch).endswith(", stacked, float32")
    # Another learner of the process (a run's estimate builds one) finds the same answer.
    again, _ = learners(c)
    assert again.compile_now(batch) == said and again.compiled is None
    torch.manual_seed(0)
    got, _ = compiled.meta_gradients(batch)
    torch.manual_seed(0)
    want, _ = eager.meta_gradients(batch)
    for k in want:  # the same engine, the same dropout draws: the same bits
        assert torch.equal(got[k], want[k]), k


def test_auto_compiles_runs_long_enough_to_repay_it(tmp_path):
    c = compile_spec(tmp_path, SMALL_MLP, TICKET)

    def learner(iterations, choice="auto"):
        plan = replace(c.plan, outer=replace(c.plan.outer, iterations=iterations),
                       device=replace(c.plan.device, compile=choice))
        return MetaLearner(CompiledModel(c.graph), plan, seed=1)

    assert learner(COMPILE_FROM_ITERATIONS).compiled is not None
    short = learner(COMPILE_FROM_ITERATIONS - 1)
    assert short.compiled is None and "fewer than" in short.not_compiled
    assert learner(5, True).compiled is not None
    conv = compile_spec(tmp_path, SMALL_CONV, TICKET)
    long_conv = replace(conv.plan, outer=replace(conv.plan.outer, iterations=COMPILE_FROM_ITERATIONS))
    assert "conv net" in MetaLearner(CompiledModel(conv.graph), long_conv, seed=1).not_compiled
    eager_engine = MetaLearner(CompiledModel(c.graph), replace(c.plan, device=replace(
        c.plan.device, compile=True)), seed=1, stacked_tasks=False)
    assert eager_engine.compiled is None and "eager engine" in eager_engine.not_compiled


SPEC = """\
    import "{root}/specs/lib/models.mt"
    experiment tiny {{
      data {{ root: "{data}"
             train: omniglot(split: "train", size: 8)
             test: omniglot(split: "test", size: 8) }}
      task {{ ways: 3, shots: 2 }}
      model: mlp(hidden: [12, 10], classes: 3)
      params {{ "**.weight": masked, "head.**", "**.bias", "**.bn.**": fixed }}
      inner {{ steps: 1, test_steps: 2, lr: 0.3 }}
      outer {{ optimizer: sgd(lr: 5, momentum: 0.9), iterations: 6, meta_batch: 2 }}
      eval {{ every: 6, test_tasks: 20 }}
    }}
"""


def _start(tmp_path, data, name: str, choice: str, env: dict) -> subprocess.Popen:
    spec = tmp_path / "tiny.mt"
    spec.write_text(textwrap.dedent(SPEC.format(root=ROOT, data=data)))
    return subprocess.Popen(
        [sys.executable, "-m", "mtdsl.cli.main", "run", str(spec), "--seed", "1", "--set",
         f"device.compile={choice}", "--out", str(tmp_path / name)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200", **env})


def _finish(tmp_path, name: str, proc: subprocess.Popen) -> tuple[subprocess.CompletedProcess, dict]:
    stdout, stderr = proc.communicate(timeout=600)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads((tmp_path / name / "result.json").read_text())


def _run(tmp_path, data, name: str, choice: str, env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    return _finish(tmp_path, name, _start(tmp_path, data, name, choice, env))


@pytest.mark.slow
def test_a_run_without_a_working_compiler_says_so_and_runs_eager(tmp_path, omniglot_root):
    # A fresh compile cache, so that nothing compiled earlier is found, and a C++ compiler
    # that does not exist: Inductor fails, the run says so in one line and gives exactly the
    # numbers of a run that never tried.
    store = tmp_path / "compiled"
    broken = {"CXX": str(tmp_path / "no-such-compiler"), "MTDSL_COMPILED": str(store),
              "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor-cache")}
    done, result = _run(tmp_path, omniglot_root, "broken", "true", broken)
    lines = [line for line in done.stdout.splitlines() if "not compiled" in line]
    assert len(lines) == 1, done.stdout
    assert "No working C++ compiler" in lines[0] and "eager engine computes it" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    # no half-written entry left behind: only the empty file the builders lock
    assert [p.name for p in store.iterdir() if p.suffix != ".lock"] == []
    _, eager = _run(tmp_path, omniglot_root, "eager", "false", {})
    assert result["test"] == eager["test"] and result["sparsity"] == eager["sparsity"]


@pytest.mark.slow
def test_a_later_run_loads_the_compiled_graph_without_a_compiler(tmp_path, omniglot_root):
    env = {"MTDSL_COMPILED": str(tmp_path / "compiled")}
    # Two runs of the same shapes started together (a sweep's seeds): one compiles, the
    # other waits for it and loads the library.
    together = [_start(tmp_path, omniglot_root, name, "true", env) for name in ("first", "other")]
    (first, first_result), (other, other_result) = (
        _finish(tmp_path, name, proc) for name, proc in zip(("first", "other"), together))
    said = [next(line for line in run.stdout.splitlines() if "meta-gradient compiled" in line)
            for run in (first, other)]
    assert sum(line.startswith("meta-gradient compiled in") for line in said) == 1, said
    assert sum("compiled by an earlier run" in line for line in said) == 1, said
    assert other_result["test"] == first_result["test"]
    # The second run finds the library: it neither traces nor imports Inductor (whose import
    # alone takes seconds), and computes with the same kernels, so the same numbers.
    second, second_result = _run(tmp_path, omniglot_root, "second", "true",
                                 {**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert "meta-gradient compiled by an earlier run, loaded and checked in" in second.stdout
    assert "compiled, float32" in second.stdout
    imported = {line.split("|")[-1].strip() for line in second.stderr.splitlines()
                if line.startswith("import time:")}
    assert "torch" in imported and "torch._inductor" not in imported
    assert "torch._dynamo" not in imported
    assert second_result["test"] == first_result["test"]
    assert second_result["sparsity"] == first_result["sparsity"]
    # `--estimate` says so too, before it times the steps, and runs nothing.
    estimated = subprocess.run(
        [sys.executable, "-m", "mtdsl.cli.main", "run", str(tmp_path / "tiny.mt"), "--seed", "1",
         "--set", "device.compile=true", "--estimate"], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200", **env}, timeout=600, cwd=tmp_path)
    assert estimated.returncode == 0, estimated.stdout + estimated.stderr
    lines = estimated.stdout.splitlines()
    said = [i for i, line in enumerate(lines) if "compiled by an earlier run" in line]
    assert said and said[0] < lines.index(next(l for l in lines if l.startswith("estimate for"))), \
        estimated.stdout
    assert not (tmp_path / "runs").exists()
    # And the eager engine's result.json, to float tolerance: a run this short meets no score
    # within rounding of its threshold, after which two float computations part (the
    # 1000-iteration Omniglot run's compiled and eager losses agree to 3e-8 until step 36).
    _, eager = _run(tmp_path, omniglot_root, "eager", "false", {})
    for split, entry in eager["test"].items():
        assert first_result["test"][split]["mean"] == pytest.approx(entry["mean"], rel=1e-6)
    assert first_result["sparsity"] == pytest.approx(eager["sparsity"], abs=1e-9)


def test_a_damaged_or_foreign_entry_counts_as_none_and_is_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("MTDSL_COMPILED", str(tmp_path))
    cpu = torch.device("cpu")
    name = compiled_store.entry_name(("some graph",), cpu)
    (tmp_path / f"{name}.so").write_bytes(b"not a library")
    (tmp_path / f"{name}.json").write_text(json.dumps(
        {"format": compiled_store.FORMAT, "outputs": []}))
    assert compiled_store.load(name, cpu) is None
    assert list(tmp_path.iterdir()) == []
    (tmp_path / f"{name}.json").write_text(json.dumps({"format": -1, "outputs": []}))
    assert compiled_store.load(name, cpu) is None and list(tmp_path.iterdir()) == []


def test_an_entry_is_named_by_what_its_library_was_built_for():
    cpu = torch.device("cpu")
    name = compiled_store.entry_name(("graph", (4, 25)), cpu)
    assert name == compiled_store.entry_name(("graph", (4, 25)), cpu)
    assert name != compiled_store.entry_name(("graph", (4, 30)), cpu)
    threads = torch.get_num_threads()
    try:  # Inductor builds its loops for the threads it is given
        torch.set_num_threads(threads + 1)
        assert name != compiled_store.entry_name(("graph", (4, 25)), cpu)
    finally:
        torch.set_num_threads(threads)



def test_a_library_is_found_from_any_working_folder(tmp_path, monkeypatch):
    # The compiled graph's spans name spec files relative to the working folder; a run and
    # its `--estimate` started from two folders must still name the same library.
    keys = []
    for where in (ROOT, tmp_path):
        monkeypatch.chdir(where)
        c = compile_spec(tmp_path, SMALL_MLP, TICKET)
        compiled, _ = learners(c)
        keys.append(compiled.compiled.key(compiled.learned, compiled._on_device(tasks(c))))
    spans = [n.span.file for n in c.graph.layers()]
    assert keys[0] == keys[1], spans
