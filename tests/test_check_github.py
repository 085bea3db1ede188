"""`mtdsl check --format github` (workflow annotations) and the pre-commit hooks that gate a
repository of specs on `check` and `fmt --check`."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT
from mtdsl.language.diagnostics import Diagnostic
from mtdsl.language.source import Span

MTDSL = str(Path(sys.executable).parent / "mtdsl")
# ::LEVEL key=value,key=value::message, as GitHub's workflow command parser reads it.
ANNOTATION = re.compile(r"::(error|warning|notice)(?: ([^:]*))?::(.*)")


def _unescape(text: str) -> str:
    for code, ch in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, ch)
    return text


def _parse(line: str) -> tuple[str, dict[str, str], str]:
    m = ANNOTATION.fullmatch(line)
    assert m, f"not a workflow command: {line!r}"
    props = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
    assert all("," not in v and ":" not in v and "\n" not in v for v in props.values())
    assert "\n" not in m.group(3) and "\r" not in m.group(3)
    return m.group(1), {k: _unescape(v) for k, v in props.items()}, _unescape(m.group(3))


def test_annotations_of_a_bad_spec_whose_name_needs_escaping(tmp_path: Path):
    bad = tmp_path / "a,b:100%.mt"  # every character a property must escape
    bad.write_text((ROOT / "specs" / "sinusoid_maml.mt").read_text()
                   .replace('import "lib/models.mt"', f'import "{ROOT}/specs/lib/models.mt"')
                   .replace("inner {", "inner { stesp: 2,"))
    r = subprocess.run([MTDSL, "check", "--format", "github", bad.name], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == ""
    [line] = r.stdout.splitlines()
    level, props, message = _parse(line)
    text = bad.read_text()
    row = text[:text.index("stesp")].count("\n") + 1
    col = text.splitlines()[row - 1].index("stesp") + 1
    assert level == "error"
    assert props == {"file": "a,b:100%.mt", "line": str(row), "endLine": str(row), "col": str(col),
                     "endColumn": str(col + len("stesp")), "title": "mtdsl error"}
    assert message == "unknown field `stesp` in `inner`\nhelp: did you mean `steps`?"


def test_message_escaping_and_a_diagnostic_without_a_place():
    d = Diagnostic("50% of `a:b, c`\r\nsecond line", Span("x.mt", 2, 3, 4, 1), hint="try: this",
                   severity="warning", notes=[("first here", Span("y.mt", 1, 1, 1, 2))])
    line = d.to_github()
    level, props, message = _parse(line)
    assert level == "warning" and "endColumn" not in props  # spans two lines
    assert props["endLine"] == "4"
    assert message == "50% of `a:b, c`\r\nsecond line\nnote: first here (y.mt:1:1)\nhelp: try: this"
    assert line.endswith("::50%25 of `a:b, c`%0D%0Asecond line%0Anote: first here (y.mt:1:1)%0Ahelp: try: this")
    level, props, message = _parse(Diagnostic("no such spec file", None).to_github())
    assert props == {"title": "mtdsl error"} and message == "no such spec file"


def test_a_good_spec_gives_no_annotation():
    r = subprocess.run([MTDSL, "check", "--format", "github", "specs/sinusoid_maml.mt"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and not any(ANNOTATION.match(l) for l in r.stdout.splitlines())


def test_pre_commit_hooks_run_check_and_fmt_check(tmp_path: Path):
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"mtdsl-check", "mtdsl-fmt"}
    good = tmp_path / "good.mt"
    good.write_text((ROOT / "specs" / "sinusoid_maml.mt").read_text()
                    .replace('import "lib/models.mt"', f'import "{ROOT}/specs/lib/models.mt"'))
    messy = tmp_path / "messy.mt"
    messy.write_text(good.read_text().replace("\n  ", "\n      "))
    broken = tmp_path / "broken.mt"
    broken.write_text(good.read_text().replace("outer {", "outr {"))

    def hook(hook_id: str, *files: Path) -> subprocess.CompletedProcess:
        h = hooks[hook_id]
        assert all(re.search(h["files"], f.name) for f in files) and h["language"] == "python"
        entry = shlex.split(h["entry"])
        assert entry[0] == "mtdsl"
        return subprocess.run([MTDSL, *entry[1:], *map(str, files)], capture_output=True, text=True)

    assert hook("mtdsl-check", good, messy).returncode == 0
    r = hook("mtdsl-check", good, broken)
    assert r.returncode == 2 and "unknown field `outr`" in r.stderr
    before = messy.read_text()
    r = hook("mtdsl-fmt", good, messy)
    assert r.returncode == 1 and f"would reformat {messy}" in r.stdout and str(good) not in r.stdout
    assert messy.read_text() == before  # --check never writes
    subprocess.run([MTDSL, "fmt", str(messy)], check=True, capture_output=True)
    assert hook("mtdsl-fmt", good, messy).returncode == 0
