"""A CI run cannot pass by accident: a run that collects no tests fails `make test`, and in
CI (CI=true) a test that needs missing real data fails instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def test_make_test_fails_when_no_test_is_collected():
    env = dict(os.environ, PYTEST_ARGS="tests/test_ci_guards.py -k no_test_has_this_name")
    # -o: take the installed venv as it is (its stamp may be older than an edited pyproject.toml)
    r = subprocess.run(["make", "-s", "-o", ".venv/.mtdsl-install.stamp", "test"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert "no tests ran" in r.stdout + r.stderr or "deselected" in r.stdout
    assert r.returncode != 0


def _needs_data(tmp_path, ci: str):
    """A test that needs the real Omniglot, run with tests/conftest.py and no data."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_needs_data.py").write_text("def test_it(omniglot_root):\n    assert omniglot_root\n")
    env = dict(os.environ, CI=ci, MTDSL_DATA="/nonexistent/mtdsl-data")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)


def test_missing_real_data_fails_in_ci_and_skips_elsewhere(tmp_path):
    ci = _needs_data(tmp_path, "true")
    assert ci.returncode == 1 and "1 error" in ci.stdout
    assert "CI=true requires the real data" in ci.stdout
    local = _needs_data(tmp_path, "")
    assert local.returncode == 0 and "1 skipped" in local.stdout
