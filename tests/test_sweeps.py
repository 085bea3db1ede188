"""Sweeps expand in a deterministic order; each point is its own run with its own operative
spec; finished points are skipped when a sweep runs again into the same folder."""

from __future__ import annotations

import json
import os
import textwrap

import torch
from typer.testing import CliRunner

from mtdsl.cli.main import app
from mtdsl.cli.select import compile_units

from conftest import ROOT

SWEEPS = f"""
import "{ROOT}/specs/sinusoid_maml.mt"

sweep widths over sinusoid_maml {{
  model.hidden: [8, 16]
  seeds: [1, 2]
}}

sweep pairs over sinusoid_maml zip {{
  model.hidden: [8, 16]
  inner.lr: [0.01, 0.02]
}}
"""


def test_grid_and_zip_expand_in_declared_order(tmp_path):
    path = tmp_path / "s.mt"
    path.write_text(SWEEPS)
    grid = compile_units(f"{path}::widths", [])
    assert [u.label for u in grid] == ["model.hidden=8,seed=1", "model.hidden=8,seed=2",
                                      "model.hidden=16,seed=1", "model.hidden=16,seed=2"]
    assert [(u.compiled.experiment.model.kwargs["hidden"], u.compiled.experiment.seeds) for u in grid] == \
        [(8, [1]), (8, [2]), (16, [1]), (16, [2])]
    zipped = compile_units(f"{path}::pairs", [])
    assert [(u.compiled.plan.param("layer1.weight").shape[0], u.compiled.plan.params[0].inner_lr)
            for u in zipped] == [(8, 0.01), (16, 0.02)]


def test_a_sweep_of_2_widths_by_2_seeds_gives_4_distinct_runs(tmp_path, monkeypatch):
    path = tmp_path / "s.mt"
    path.write_text(SWEEPS)
    out = tmp_path / "runs"
    args = ["run", f"{path}::widths", "--out", str(out), "--set", "outer.iterations=2",
            "--set", "eval.test_tasks=8", "--set", "outer.meta_batch=2"]
    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    folders = sorted(p for p in out.iterdir())
    assert len(folders) == 4
    shas = {(f / "spec.sha256").read_text().split()[0] for f in folders}
    specs = {(f / "spec.mt").read_text() for f in folders}
    assert len(shas) == 4 and len(specs) == 4
    assert all(json.loads((f / "result.json").read_text())["spec_sha256"] in shas for f in folders)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and again.output.count("already finished, skipped") == 4


def test_sweep_mistakes_are_located(tmp_path):
    path = tmp_path / "bad.mt"
    path.write_text(textwrap.dedent(f"""\
        import "{ROOT}/specs/sinusoid_maml.mt"
        sweep z over sinusoid_maml zip {{ model.hidden: [8, 16], inner.lr: [0.1] }}
        sweep g over sinusoid_maml {{ outer.iterations: 3 }}
        """))
    r = CliRunner().invoke(app, ["check", "--format", "json", str(path)])
    assert r.exit_code == 2
    got = [(d["line"], d["column"], d["message"]) for d in json.loads(r.stdout)]
    assert got == [(2, 7, "a zip sweep needs axes of one length: model.hidden has 2, inner.lr has 1"),
                   (3, 48, "sweep axis `outer.iterations` needs a non-empty list of values")]


def test_jobs_run_points_in_parallel_with_the_same_results(tmp_path, monkeypatch):
    path = tmp_path / "s.mt"
    path.write_text(SWEEPS)
    monkeypatch.chdir(ROOT)
    common = ["--seed", "1", "--set", "outer.iterations=2", "--set", "eval.test_tasks=8", "--set", "outer.meta_batch=2"]
    # Each of 2 workers on this machine gets cpu_count // 2 threads; the in-process run uses
    # as many, since the number of threads sets how float sums are split.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        one = CliRunner().invoke(app, ["run", f"{path}::pairs", "--out", str(tmp_path / "one"), *common])
    finally:
        torch.set_num_threads(threads)
    two = CliRunner().invoke(app, ["run", f"{path}::pairs", "--out", str(tmp_path / "two"), "--jobs", "2", *common])
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert "running 2 runs on 2 worker processes" in two.output
    assert "2 done · 0 running · 0 queued · 0 failed" in two.output
    for point in ("model.hidden=8,inner.lr=0.01", "model.hidden=16,inner.lr=0.02"):
        a = json.loads((tmp_path / "one" / point / "result.json").read_text())
        b = json.loads((tmp_path / "two" / point / "result.json").read_text())
        assert a["test"] == b["test"]
        assert (tmp_path / "two" / point / "output.log").read_text()
