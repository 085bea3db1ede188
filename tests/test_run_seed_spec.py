"""A run of one seed writes that seed in its spec.mt, whose sha256 names the run: rerunning
skips it, and folders written before (all the seeds in spec.mt) are still recognised. `mtdsl
run` says check's warnings (a warmup longer than the run) before it starts."""

from __future__ import annotations

import hashlib
import json
import re

from typer.testing import CliRunner

from conftest import ROOT
from mtdsl.cli.main import app

ARGS = ["run", "specs/sinusoid_maml.mt", "--set", "seeds=[1, 2]", "--set", "outer.iterations=1",
        "--set", "eval.test_tasks=2", "--set", "outer.meta_batch=1",
        "--set", "outer.schedule=cosine(warmup: 5)"]


def test_each_seeds_spec_says_its_seed_and_a_rerun_skips_it(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    done = CliRunner().invoke(app, ARGS + ["--out", str(out)])
    assert done.exit_code == 0, done.output
    # The --set iterations cut the run below its warmup: said once, before the runs start.
    said = " ".join(done.output.split())
    assert said.count("warning: the warmup (5 iterations) is longer than the run (1)") == 1
    assert said.index("warning:") < said.index("seed 1")
    shas = {}
    for seed in (1, 2):
        folder = out / f"seed{seed}"
        text = (folder / "spec.mt").read_text()
        assert re.search(rf"^  seeds: \[{seed}\]$", text, flags=re.M), text
        sha = hashlib.sha256(text.encode()).hexdigest()
        assert (folder / "spec.sha256").read_text().split()[0] == sha
        assert json.loads((folder / "result.json").read_text())["spec_sha256"] == sha
        shas[seed] = sha
    assert shas[1] != shas[2]

    # A folder from before: spec.mt with every seed, and its hash. Still seen as finished.
    old = out / "seed2"
    legacy = (old / "spec.mt").read_text().replace("seeds: [2]", "seeds: [1, 2]")
    legacy_sha = hashlib.sha256(legacy.encode()).hexdigest()
    (old / "spec.mt").write_text(legacy)
    (old / "spec.sha256").write_text(f"{legacy_sha}  spec.mt\n")
    result = json.loads((old / "result.json").read_text())
    (old / "result.json").write_text(json.dumps({**result, "spec_sha256": legacy_sha}))

    again = CliRunner().invoke(app, ARGS + ["--out", str(out)])
    assert again.exit_code == 0, again.output
    assert " ".join(again.output.split()).count("already finished, skipped") == 2

