"""The dataset components a spec writes are each dataset's one declaration: the registry
opens them, the loaders take exactly their fields, their facts match the packaged lists."""

from __future__ import annotations

import inspect
import importlib

import pytest
from pydantic import TypeAdapter, ValidationError

from mtdsl.data import split_lists
from mtdsl.data.registry import DATASETS, NOT_OPTIONS, declaration, options
from mtdsl.validate import datasets as D

ADAPTER = TypeAdapter(D.Dataset)


def loader_of(kind: str):
    module, function = declaration(kind).facts.loader.split(":")
    return getattr(importlib.import_module(f"mtdsl.data.{module}"), function)


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_the_loader_takes_exactly_the_declared_options(kind):
    taken = set(inspect.signature(loader_of(kind)).parameters)
    assert taken == set(options(kind)) | {"root", "split", "ways", "shots", "queries"}
    assert not set(NOT_OPTIONS) - {"root", "split"} & taken


@pytest.mark.parametrize("kind", sorted(set(DATASETS) - {"folder", "sinusoid"}))
def test_declared_class_counts_are_the_packaged_lists(kind):
    facts = declaration(kind).facts
    for split, count in facts.classes.items():
        if kind not in ("mini_imagenet", "tiered_imagenet"):  # their split is in the data files
            assert split_lists.listed_classes(kind, split) == count


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_every_dataset_declares_its_files_and_pixels(kind):
    facts = declaration(kind).facts
    assert facts.pixels
    if kind == "sinusoid":
        assert facts.files is None and facts.task == "regression"
    else:
        assert facts.files.layout and facts.files.obtain
        assert (facts.files.size is None) == (kind == "folder")


def test_options_change_the_input_shape():
    assert ADAPTER.validate_python({"kind": "cifar_fs", "size": 28, "channels": 1}).input_shape == (1, 28, 28)
    assert ADAPTER.validate_python({"kind": "omniglot", "channels": 3}).input_shape == (3, 28, 28)
    assert ADAPTER.validate_python("mini_imagenet").input_shape == (3, 84, 84)
    assert ADAPTER.validate_python({"kind": "omniglot", "rotations": [0]}).class_count("train") == 1028
    assert ADAPTER.validate_python("omniglot").class_count("test") == 1692


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
    ({"kind": "folder", "path": "a", "mean": [0.5, 0.5]}, "mean has 2 values but the images have 3"),
    ({"kind": "folder", "path": "a", "std": 0}, "std must be positive"),
    ({"kind": "omniglot", "split": "all"}, "Input should be 'train', 'val' or 'test'"),
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


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_docs_state_each_datasets_pixels_and_download_size_as_declared(kind):
    from conftest import ROOT

    doc = (ROOT / "docs" / "datasets.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and f"`{kind}`" in line.split("|")[1]]
    facts = declaration(kind).facts
    assert any(facts.pixels in row for row in rows), f"no pixel convention for {kind}"
    if facts.files is not None and facts.files.size is not None:
        assert any(facts.files.size in row for row in rows), f"no download size for {kind}"
