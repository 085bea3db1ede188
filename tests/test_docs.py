"""The language reference is checked: its examples compile, its field table is complete."""

from __future__ import annotations

import re
import typing

import pytest
from pydantic import BaseModel

from mtdsl.cli.select import compile_units
from mtdsl.validate.spec import Experiment

from conftest import ROOT

DOC = (ROOT / "docs" / "language.md").read_text()
BLOCKS = re.findall(r"```mt\n(.*?)```", DOC, flags=re.S)


def test_the_reference_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_example_checks(index, tmp_path):
    path = tmp_path / f"example{index}.mt"
    path.write_text(BLOCKS[index])
    assert compile_units(str(path), [])


def _fields(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        if name == "kind":
            continue
        path = f"{prefix}{name}"
        inner = [a for a in typing.get_args(field.annotation) + (field.annotation,)
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        nested = [m for m in inner if "kind" not in m.model_fields]
        if nested and path not in ("data.train", "data.valid"):
            yield from _fields(nested[0], path + ".")
        else:
            yield path


def test_every_field_is_documented():
    table = set(re.findall(r"^\| `([a-z_.]+)` \|", DOC, flags=re.M))
    missing = [f for f in _fields(Experiment) if f not in table]
    assert not missing, f"fields missing from docs/language.md: {missing}"


def _compiled(marker: str, tmp_path) -> dict:
    """The experiments of the doc example that contains `marker`, compiled, by name."""
    [block] = [b for b in BLOCKS if marker in b]
    path = tmp_path / "example.mt"
    path.write_text(block)
    return {u.compiled.resolved.name: u.compiled for u in compile_units(str(path), [])}


def test_the_documented_examples_do_what_the_text_says(tmp_path):
    lrs = _compiled('lr["head.**"]: 0.1', tmp_path)
    assert {p.name: p.inner_lr for p in lrs["maml"].plan.params}["head.weight"] == 0.1
    assert {p.name: p.inner_lr for p in lrs["anil"].plan.params} == {
        "layer1.weight": 0, "layer1.bias": 0, "head.weight": 0.4, "head.bias": 0.4}
    wide = _compiled("experiment wide extends narrow", tmp_path)["wide"]
    assert {p.name: p.shape for p in wide.plan.params}["layer1.weight"] == (48, 784)
    conv = _compiled("experiment conv4_ticket", tmp_path)["conv4_ticket"]
    roles = {p.name: p.role for p in conv.plan.params}
    assert [n for n, r in roles.items() if r == "masked"] == [f"layer{i}.weight" for i in range(1, 5)]
    assert roles["layer1.bn.weight"] == roles["head.weight"] == roles["layer1.bias"] == "fixed"
    assert [ds.split for ds in conv.experiment.data.test] == ["test", "test"]
    assert conv.experiment.data.valid.split == "val"
