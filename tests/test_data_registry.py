"""The dataset registry and data-root resolution, which need no data on disk."""

import subprocess
import sys
from pathlib import Path

import pytest

from mtdsl.data.locate import cache_root, data_root
from mtdsl.data.registry import DATASETS, dataset_entry, open_dataset
from mtdsl.errors import DataError


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'mnist'; known datasets: omniglot, sinusoid"):
        open_dataset("mnist", shots=1, queries=1)


def test_unknown_split_lists_the_known_ones():
    with pytest.raises(DataError, match="omniglot has no split 'dev'; known splits: train, val, test"):
        open_dataset("omniglot", split="dev", ways=5, shots=1, queries=1)


def test_entries_answer_shapes_and_class_counts_without_data():
    omniglot = dataset_entry("omniglot")
    assert omniglot.kind == "classification"
    assert omniglot.input_shape(None) == (1, 28, 28) and omniglot.input_shape(84) == (1, 84, 84)
    assert omniglot.num_classes("train", [0]) == 1028
    assert omniglot.num_classes("test", None) == 1692
    assert dataset_entry("sinusoid").input_shape(None) == (1,)
    assert dataset_entry("sinusoid").num_classes("train", None) is None
    assert set(DATASETS) == {"omniglot", "sinusoid"}


def test_omniglot_without_ways_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="must set `ways`"):
        open_dataset("omniglot", root=str(tmp_path), shots=1, queries=1, download=False)


def test_importing_the_registry_does_not_import_torch():
    # `mtdsl check` reads shapes from the registry and must stay fast.
    code = "import sys, mtdsl.data.registry as r; r.dataset_entry('omniglot').num_classes('val', None); " \
           "assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_data_root_prefers_the_spec_then_the_environment_then_the_user_cache(monkeypatch):
    monkeypatch.setenv("MTDSL_DATA", "/srv/datasets")
    assert data_root("~/mine") == Path.home() / "mine"
    assert data_root(None) == Path("/srv/datasets")
    monkeypatch.delenv("MTDSL_DATA")
    assert data_root(None) == Path.home() / ".cache" / "mtdsl"


def test_cache_root_is_mtdsl_cache_or_the_user_cache(monkeypatch):
    monkeypatch.setenv("MTDSL_CACHE", "~/tensors")
    assert cache_root() == Path.home() / "tensors"
    monkeypatch.delenv("MTDSL_CACHE")
    assert cache_root() == Path.home() / ".cache" / "mtdsl" / "tensors"
