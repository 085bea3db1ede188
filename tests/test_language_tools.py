"""fmt (idempotent, meaning-preserving, comments kept), diff, schema, the Pygments lexer."""

from __future__ import annotations

import json

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error
from typer.testing import CliRunner

from mtdsl.cli.main import app
from mtdsl.language.parser import parse
from mtdsl.language.printer import format_module

from conftest import ROOT

ALL_SPECS = sorted(p for p in (ROOT / "specs").rglob("*.mt")) + sorted(
    p for p in (ROOT / "tests" / "specs" / "bad").glob("*.mt") if not p.stem.startswith("syntax_"))


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: str(p.relative_to(ROOT)))
def test_fmt_is_idempotent_and_keeps_meaning(path):
    text = path.read_text()
    module, diags = parse(text, str(path))
    assert not diags
    once = format_module(module, text)
    again_module, diags = parse(once, str(path) + "(formatted)")
    assert not diags
    assert again_module.items == module.items  # same tree, positions aside
    assert format_module(again_module, once) == once
    comments = [c.text.strip() for c in module.comments]
    assert [c.text.strip() for c in again_module.comments] == comments


def test_repository_specs_are_formatted():
    r = CliRunner().invoke(app, ["fmt", "--check", *map(str, (ROOT / "specs").rglob("*.mt"))])
    assert r.exit_code == 0, r.output


def test_fmt_rewrites_a_messy_file(tmp_path):
    path = tmp_path / "messy.mt"
    path.write_text('experiment  e{task={ways=5,shots:1}  // note\n  outer.iterations   =  3}\n')
    r = CliRunner().invoke(app, ["fmt", "--check", str(path)])
    assert r.exit_code == 1 and "would reformat" in r.output
    assert CliRunner().invoke(app, ["fmt", str(path)]).exit_code == 0
    assert path.read_text() == ("experiment e {\n  task: { ways: 5, shots: 1 }  // note\n"
                                "  outer.iterations: 3\n}\n")


def test_diff_names_what_changed(monkeypatch):
    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(app, ["diff", "specs/omniglot_mlp_ticket.mt", "specs/omniglot_mlp_ticket_boil.mt"])
    assert r.exit_code == 1  # diff(1): the specs differ
    lines = r.output.splitlines()
    assert 'inner.lr["head.**"]: (not set) -> 0' in lines
    assert 'parameters["head.weight"].inner_lr: 0.4 -> 0' in lines
    assert not any("layer1" in l for l in lines)


def test_schema_is_json_schema_of_the_experiment():
    r = CliRunner().invoke(app, ["schema"])
    schema = json.loads(r.output)
    assert schema["title"] == "mtdsl resolved experiment"
    assert {"data", "params", "inner", "outer"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_the_lexer_is_a_pygments_plugin_and_reads_every_spec():
    lexer = get_lexer_by_name("mt")
    assert type(get_lexer_for_filename("x.mt")) is type(lexer)
    for path in ALL_SPECS:
        assert not [v for t, v in lexer.get_tokens(path.read_text()) if t is Error], path
