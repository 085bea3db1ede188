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
