"""docs/results.md against the run folders it cites (docs/results/runs): the check passes on
the published table and catches a number that no longer matches its runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from conftest import ROOT

CHECK = [sys.executable, str(ROOT / "scripts" / "check-results-table.py")]


def test_published_table_agrees_with_its_run_folders():
    r = subprocess.run(CHECK, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_changed_result_is_reported_at_its_row(tmp_path):
    shutil.copy(ROOT / "docs" / "results.md", tmp_path / "results.md")
    shutil.copytree(ROOT / "docs" / "results", tmp_path / "results")
    result = sorted((tmp_path / "results" / "runs").glob("sinusoid_maml/seed*/result.json"))[0]
    data = json.loads(result.read_text())
    data["test"]["sinusoid/test"]["mean"] += 0.5
    result.write_text(json.dumps(data))
    r = subprocess.run(CHECK + [str(tmp_path / "results.md")], capture_output=True, text=True)
    assert r.returncode == 1
    assert "`mean ± std` says" in r.stdout and "the run folders give" in r.stdout
    assert f"{tmp_path / 'results.md'}:" in r.stdout


def test_row_prints_the_published_row_from_its_run_folders():
    published = next(line for line in (ROOT / "docs" / "results.md").read_text().splitlines()
                     if "[sinusoid_ticket](results/runs/sinusoid_ticket)" in line)
    label, paper = published.split("|")[1].strip(), published.split("|")[-2].strip()
    r = subprocess.run(CHECK + ["--row", "sinusoid_ticket", "sinusoid/test", label, paper],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == published
