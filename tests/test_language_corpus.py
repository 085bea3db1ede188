"""Every broken spec in tests/specs/bad gives exactly the diagnostics its `// expect:` lines
name (line, column, message), exit code 2, and never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtdsl.cli.main import app

from conftest import ROOT

BAD = sorted((ROOT / "tests" / "specs" / "bad").glob("*.mt"))


def expectations(path: Path) -> list[str]:
    # One spec of the corpus is deliberately not UTF-8; its expectations are ASCII.
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [line.removeprefix("// expect: ") for line in text.split("\n")
            if line.startswith("// expect: ")]


def test_the_corpus_covers_every_error_class():
    assert len(BAD) >= 80
    assert all(expectations(p) for p in BAD), "every broken spec states what it expects"


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_broken_spec_gives_exactly_its_diagnostics(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("MTDSL_SURELY_UNSET_VARIABLE", raising=False)
    rel = str(path.relative_to(ROOT))
    result = CliRunner().invoke(app, ["check", "--format", "json", rel])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not an uncaught error
    got = []
    for d in json.loads(result.stdout):
        assert d["file"] is not None and d["line"] >= 1, d  # every diagnostic is located
        where = f"{d['line']}:{d['column']}" if d["file"] == rel else f"{d['file']}:{d['line']}:{d['column']}"
        got.append(f"{where}: {d['message']}")
    assert got == expectations(path)


def test_three_mistakes_are_reported_together_with_carets_and_hints():
    """A misspelt key, an unknown layer and a wrong type: all three, compiler style."""
    spec = "tests/specs/bad/key_layer_type.mt"
    r = subprocess.run([sys.executable, "-m", "mtdsl.cli.main", "check", spec], cwd=ROOT,
                       capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    text = r.stderr
    assert f"{spec}:22:80: error: unknown field `itertions` in `outer`" in text
    assert f"{spec}:5:11: error: unknown layer `linaer`" in text
    assert f"{spec}:21:18: error: `inner.steps` must be an integer" in text
    assert "did you mean `iterations`?" in text and "did you mean `linear`?" in text
    # the offending line is quoted with a caret under the mistake
    lines = text.splitlines()
    i = lines.index(next(l for l in lines if "unknown layer" in l))
    assert "layer1: linaer(64) -> relu" in lines[i + 2]
    assert lines[i + 3].endswith(" " * 10 + "^" * len("linaer(64)"))
    assert "3 errors" in text
