"""The dataset components a spec writes, and their contract with the registry: every field
but kind, split and root reaches the loader as a keyword it takes."""

from __future__ import annotations

import typing

import pytest
from pydantic import TypeAdapter, ValidationError

from mtdsl.data import catalog
from mtdsl.data.registry import DATASETS, dataset_entry
from mtdsl.validate import datasets as D

ADAPTER = TypeAdapter(D.Dataset)
COMPONENTS = typing.get_args(typing.get_args(D.Dataset)[0])


def component(kind: str):
    return next(c for c in COMPONENTS if typing.get_args(c.model_fields["kind"].annotation) == (kind,))


def test_every_registered_dataset_has_a_component_and_back():
    kinds = {typing.get_args(c.model_fields["kind"].annotation)[0] for c in COMPONENTS}
    assert kinds == set(DATASETS)


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_every_field_the_run_passes_is_an_option_the_loader_takes(kind):
    # The run passes model_dump(exclude={"kind", "split", "root"}); download is common to all.
    fields = set(component(kind).model_fields) - {"kind", "split", "root", "download"}
    assert fields == set(dataset_entry(kind).options)


@pytest.mark.parametrize("kind", sorted(catalog.DEFAULTS))
def test_spec_defaults_are_the_loader_defaults(kind):
    value = ADAPTER.validate_python({"kind": kind, "path": "x"} if kind == "folder" else kind)
    defaults = catalog.DEFAULTS[kind]
    assert (value.size, value.resize, value.channels) == (defaults.size, defaults.resize, defaults.channels)
    assert value.input_shape == dataset_entry(kind).input_shape() == (3, defaults.size, defaults.size)


def test_options_change_the_input_shape():
    assert ADAPTER.validate_python({"kind": "cifar_fs", "size": 28, "channels": 1}).input_shape == (1, 28, 28)
    assert ADAPTER.validate_python({"kind": "omniglot", "channels": 3}).input_shape == (3, 28, 28)


def test_folder_takes_its_path_positionally():
    value = ADAPTER.validate_python({"kind": "folder", "__positional__": ["~/photos"]})
    assert value.path == "~/photos" and value.fractions == (0.64, 0.16, 0.20) and value.splits is None


@pytest.mark.parametrize("data, message", [
    ({"kind": "folder", "__positional__": ["a"], "path": "b"}, "the path is given twice"),
    ({"kind": "folder", "__positional__": ["a", "b"]}, "one positional argument"),
    ({"kind": "folder", "path": "a", "fractions": [0.5, 0.5, 0.5]}, "must sum to 1, not 1.5"),
    ({"kind": "cub", "resize": 60}, r"resize \(60\) must be at least size \(84\)"),
    ({"kind": "cifar_fs", "channels": 2}, "literal_error|Input should be 1 or 3"),
    ({"kind": "cars", "download": False}, "Extra inputs are not permitted"),
])
def test_bad_components_are_refused(data, message):
    with pytest.raises(ValidationError, match=message):
        ADAPTER.validate_python(data)


def test_components_need_no_torch():
    import subprocess
    import sys
    code = ("import sys; from mtdsl.validate import datasets as D; from pydantic import TypeAdapter; "
            "TypeAdapter(D.Dataset).validate_python('tiered_imagenet').input_shape; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
