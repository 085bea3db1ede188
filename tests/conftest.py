"""Shared test settings: where the real data is, the repository root, and what a missing
dataset means: a skip on a developer's machine, a failure in CI (CI=true), so a CI run
without its data cannot pass by skipping every test that needs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_data(reason: str, module: bool = False) -> None:
    """Skip, or in CI fail, a test (or, with `module`, a whole test module) for want of data."""
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires the real data (set MTDSL_DATA)", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


def real_data_root() -> Path:
    """`$MTDSL_DATA` (CI sets ../shared/data), relative paths taken from the repo root."""
    root = Path(os.environ.get("MTDSL_DATA", "../shared/data"))
    return root if root.is_absolute() else (ROOT / root).resolve()


@pytest.fixture
def omniglot_root() -> Path:
    root = real_data_root()
    if not (root / "omniglot" / "omniglot-py" / "images_background").is_dir():
        missing_data(f"real Omniglot not found under {root}")
    return root


# Tests that took over SLOW_S without the `slow` marker are named at the end of the run, so
# the marker stays true as tests change (a loaded machine can name a test that is not slow).
SLOW_S = 20.0
_unmarked_slow: list[tuple[str, float]] = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.duration > SLOW_S and "slow" not in report.keywords:
        _unmarked_slow.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter):
    if _unmarked_slow:
        terminalreporter.section(f"over {SLOW_S:g} s without @pytest.mark.slow")
        for nodeid, seconds in sorted(_unmarked_slow, key=lambda t: -t[1]):
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")
