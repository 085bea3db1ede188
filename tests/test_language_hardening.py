"""Specs at the edges: huge, deep, oddly encoded, self-contradicting. Each gets a bounded,
located answer at once; the valid spellings the docs promise are accepted; contradictions
are warnings that do not fail `check`. (The one-mistake-per-file classes are in the bad-spec
corpus, tests/specs/bad, checked by test_language_corpus.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from mtdsl.cli.main import app
from mtdsl.cli.select import compile_ref
from mtdsl.language import printer
from mtdsl.language.parser import parse

from conftest import ROOT

LIB = (ROOT / "specs" / "lib" / "models.mt").as_posix()

SPEC = f"""import "{LIB}"

experiment e {{
  seeds: [1, 2, 3]
  data {{
    root: "/nonexistent/data"
    train: omniglot(split: "train")
    valid: omniglot(split: "val")
    test: omniglot(split: "test")
  }}
  task {{ ways: 5, shots: 1 }}
  model: mlp(hidden: [64, 64], classes: task.ways)
  params {{
    "**.weight": masked
    "head.**", "**.bias", "**.bn.**": fixed
  }}
  inner {{ steps: 1, lr: 0.4 }}
  outer {{ optimizer: sgd(lr: 10, momentum: 0.9), schedule: cosine(warmup: 10), iterations: 100 }}
}}
"""


def edited(old: str, new: str) -> str:
    assert old in SPEC
    return SPEC.replace(old, new, 1)


def check(tmp_path, text: str | bytes, *args):
    """`mtdsl check` on the text, in process: (exit code, stdout, stderr, CPU seconds). CPU
    time, not wall time: on a loaded machine the wall clock measures the other processes."""
    path = tmp_path / "spec.mt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    start = time.process_time()
    result = CliRunner().invoke(app, ["check", str(path), *args])
    seconds = time.process_time() - start
    assert isinstance(result.exception, (SystemExit, type(None))), result.exception  # no crash
    return result.exit_code, result.stdout, result.stderr, seconds


def test_a_5_mb_spec_with_one_stray_bracket_is_diagnosed_at_once_in_a_few_lines(tmp_path):
    text = edited("seeds: [1, 2, 3]", "seeds: [" + ", ".join(["1"] * 1_700_000) + "]]")
    assert len(text) > 5_000_000
    code, out, err, seconds = check(tmp_path, text)
    assert code == 2
    assert "4:5100010: error: unmatched `]`: the innermost open bracket is the `{` at 3:14" in err
    assert len(out) + len(err) < 5_000 and seconds < 2.0


def test_a_huge_spec_without_a_stray_bracket_is_refused_by_size(tmp_path):
    text = edited("seeds: [1, 2, 3]", "seeds: [" + ", ".join(["1"] * 1_700_000) + "]")
    code, _, err, seconds = check(tmp_path, text)
    assert code == 2 and "KiB; a spec file is at most 128 KiB" in err
    assert len(err) < 5_000 and seconds < 2.0


def test_a_long_line_is_quoted_as_a_window_around_the_caret(tmp_path):
    seeds = "seeds: [" + ", ".join(map(str, range(1, 400))) + "], "
    text = SPEC.replace("  seeds: [1, 2, 3]\n", "").replace("  outer {", "  " + seeds + "outer {")
    text = text.replace("iterations: 100", "iterations: 100, itertions: 1")
    code, _, err, _ = check(tmp_path, text)
    assert code == 2 and "unknown field `itertions` in `outer`" in err
    quoted = [line for line in err.splitlines() if line.startswith("17 | ")]
    assert len(quoted) == 1 and len(quoted[0]) < 120 and "itertions" in quoted[0]
    caret = err.splitlines()[err.splitlines().index(quoted[0]) + 1]
    assert quoted[0][caret.index("^")] == "i"  # the caret is under the mistake


def test_a_form_feed_in_a_comment_keeps_lines_and_quotes(tmp_path):
    text = edited("  task {", "  // a page break \f here\n  task {").replace("iterations: 100", "iterations: x")
    code, _, err, _ = check(tmp_path, text)
    assert code == 2 and "spec.mt:19:92: error: `outer.iterations` must be an integer, got `x`" in err
    assert "19 |   outer { optimizer: sgd(" in err


def test_a_byte_order_mark_is_accepted(tmp_path):
    code, out, _, _ = check(tmp_path, b"\xef\xbb\xbf" + SPEC.encode())
    assert code == 0 and "ok: 1 experiment" in out


def test_a_yaml_style_list_gets_a_hint(tmp_path):
    code, _, err, _ = check(tmp_path, edited("seeds: [1, 2, 3]", "seeds:\n    - 1\n    - 2"))
    assert code == 2 and "`seeds` must be a list, got an integer (-3)" in err
    assert "`- item` lines are YAML, which .mt is not: write the list in brackets, e.g. `seeds: [1, 2, 3]`" in err


def test_the_documented_spellings_are_accepted(tmp_path):
    path = tmp_path / "spec.mt"
    path.write_text(edited("seeds: [1, 2, 3]", "seeds: range(1, 4)")
                    .replace("iterations: 100", "iterations: max(10000, 30000)")
                    .replace("hidden: [64, 64]", "hidden: [floor(129 / 2), 64 % 50]")
                    .replace('root: "/nonexistent/data"', 'root: "/nonexistent/\\u00e9t\\u00e9\\tdata"'))
    (exp,) = [c.experiment for c in compile_ref(str(path), [])]
    assert exp.seeds == [1, 2, 3] and exp.outer.iterations == 30000
    assert exp.model.kwargs["hidden"] == [64, 14]
    assert exp.data.root == "/nonexistent/\u00e9t\u00e9\tdata"


def test_strings_read_back_exactly_as_the_printer_writes_them():
    for text in ['C:\\Users\\new', 'a "quoted" word', "tab\there", "é ü 中", "line\nbreak", "\x01"]:
        module, diags = parse(f"experiment e {{ a: {printer.quote(text)} }}", "round.mt")
        assert not diags and module.items[0].entries[0].value.value == text


@pytest.mark.parametrize("change, warning, line", [
    ("warmup: 10", "warmup: 1000", "the warmup (1000 iterations) is longer than the run (100)"),
    ("iterations: 100 }", "iterations: 100 }\n  eval { every: 500 }",
     "`eval.every` (500) is beyond the run's 100 iterations: validation runs only at the end"),
    ("iterations: 100 }", "iterations: 100 }\n  eval { checkpoint: best }",
     "`eval.checkpoint: best` needs a validation set"),
    ("seeds: [1, 2, 3]", "seeds: [1, 2, 1, 2, 2]", "seeds 1, 2 listed more than once"),
    ("    \"**.weight\": masked\n", "    \"**.weight\": meta\n", "`mask` settings have no effect: no parameter is `masked`"),
], ids=["warmup", "eval-every", "checkpoint-best", "seeds", "mask"])
def test_contradictions_warn_but_check_succeeds(tmp_path, change, warning, line):
    text = edited(change, warning)
    if "checkpoint" in warning:
        text = text.replace('    valid: omniglot(split: "val")\n', "")
    if "meta\n" in warning:
        text = text.replace("iterations: 100 }", "iterations: 100 }\n  mask { scores: kaiming_normal }")
    code, out, err, _ = check(tmp_path, text)
    assert code == 0 and "ok: 1 experiment" in out
    assert f"warning: {line}" in err
    assert err.count("warning:") == 1
    code, out, _, _ = check(tmp_path, text, "--format", "json")
    (found,) = json.loads(out)
    assert code == 0 and found["severity"] == "warning" and found["line"] > 1


def test_the_reference_spec_has_no_warnings(tmp_path):
    code, _, err, _ = check(tmp_path, SPEC)
    assert code == 0 and "warning" not in err


def test_report_commands_import_without_the_main_module():
    """No import cycle: report_commands registers on the shared app by itself."""
    code = ("import sys, mtdsl.cli.report_commands as r; "
            "assert 'mtdsl.cli.main' not in sys.modules; "
            "print(sorted(c.callback.__name__ for c in r.app.registered_commands))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['export', 'figures', 'report']"
