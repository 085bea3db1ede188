"""The dataset registry and data-root resolution, which need no data on disk."""

import subprocess
import sys
from pathlib import Path

import pytest

from mtdsl.data.locate import cache_root, data_root, downloads_allowed
from mtdsl.data.registry import DATASETS, declaration, open_dataset
from mtdsl.errors import DataError


ALL = {"omniglot", "sinusoid", "cifar_fs", "fc100", "vgg_flower", "aircraft", "cars", "cub",
       "mini_imagenet", "tiered_imagenet", "folder"}


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'mnist'; known datasets: aircraft, cars, "
                                        "cifar_fs, cub, fc100, folder, mini_imagenet, omniglot, sinusoid"):
        open_dataset("mnist", shots=1, queries=1)


def test_an_option_the_dataset_does_not_take_is_a_data_error():
    with pytest.raises(DataError, match="cub takes no option boxes, rotations; its options: size, "
                                        "resize, channels, download"):
        open_dataset("cub", ways=5, shots=1, queries=1, boxes=True, rotations=[0])


def test_a_bad_option_value_is_a_data_error():
    with pytest.raises(DataError, match="cifar_fs: size: Input should be greater than 0"):
        open_dataset("cifar_fs", ways=5, shots=1, queries=1, size=0)


def test_unknown_split_lists_the_known_ones():
    with pytest.raises(DataError, match="omniglot has no split 'dev'; known splits: train, val, test"):
        open_dataset("omniglot", split="dev", ways=5, shots=1, queries=1)


@pytest.mark.parametrize("name, shape, counts", [
    ("omniglot", (1, 28, 28), (4112, 688, 1692)),
    ("cifar_fs", (3, 32, 32), (64, 16, 20)),
    ("fc100", (3, 32, 32), (60, 20, 20)),
    ("vgg_flower", (3, 32, 32), (71, 15, 16)),
    ("aircraft", (3, 32, 32), (70, 15, 15)),
    ("cars", (3, 84, 84), (98, 49, 49)),
    ("cub", (3, 84, 84), (100, 50, 50)),
    ("mini_imagenet", (3, 84, 84), (64, 16, 20)),
    ("tiered_imagenet", (3, 84, 84), (351, 97, 160)),
    ("folder", (3, 84, 84), (None, None, None)),
])
def test_declarations_know_their_shapes_and_the_published_class_counts(name, shape, counts):
    dataset = declaration(name).model_validate({"kind": name, "path": "x"} if name == "folder" else {"kind": name})
    assert dataset.task_kind == "classification"
    assert dataset.input_shape == shape
    assert dataset.model_copy(update={"size": 28, "channels": 1}).input_shape == (1, 28, 28)
    assert tuple(dataset.class_count(split) for split in ("train", "val", "test")) == counts
    assert set(DATASETS) == ALL


def test_omniglot_without_ways_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="must set `ways`"):
        open_dataset("omniglot", root=str(tmp_path), shots=1, queries=1, download=False)


def test_importing_the_registry_does_not_import_torch():
    # `mtdsl check` reads shapes from the registry and must stay fast.
    code = ("import sys, mtdsl.data.registry as r\n"
            "for name, c in r.DATASETS.items():\n"
            "    d = c.model_validate({'kind': name, 'path': 'x'} if name == 'folder' else {'kind': name})\n"
            "    d.input_shape; [d.class_count(s) for s in ('train', 'val', 'test')]; d.facts.files\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
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


@pytest.mark.parametrize("value, allowed", [("1", False), ("true", False), ("yes", False),
                                            ("0", True), ("", True)])
def test_mtdsl_offline_overrules_a_download_flag(monkeypatch, value, allowed):
    monkeypatch.setenv("MTDSL_OFFLINE", value)
    assert downloads_allowed(True) is allowed
    assert downloads_allowed(False) is False
