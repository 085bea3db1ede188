"""CIFAR-FS and FC100 from a small CIFAR-100 in its python-pickle layout."""

from __future__ import annotations

import pickle

import pytest
import torch

from fixtures import layouts
from mtdsl.data.registry import open_dataset
from mtdsl.errors import DataError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MTDSL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTDSL_OFFLINE", "1")


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    layouts.write_cifar100(root)
    return root


def fine_names() -> list[str]:
    return sorted(name for split in layouts.SPLITS for _, name in layouts.packaged("cifar_fs", split))


def drawn(source, tasks: int = 40) -> torch.Tensor:
    """(fine label, index in class) of every support and query image drawn."""
    batch = source.sample(tasks, torch.Generator().manual_seed(0))
    x = torch.cat([batch.support_x, batch.query_x], dim=1)
    return (x[:, :, :2, 0, 0] * 255).round().long().reshape(-1, 2)


def open_cifar(name, root, split, **options):
    return open_dataset(name, root=str(root), split=split, ways=5, shots=2, queries=3,
                        download=False, verify=False, **options)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_cifar_fs_draws_only_its_split_classes_from_train_and_test_images(cifar, split):
    names = fine_names()
    wanted = {names.index(name) for _, name in layouts.packaged("cifar_fs", split)}
    source = open_cifar("cifar_fs", cifar, split)
    assert source.num_classes == len(wanted) and source.input_shape == (3, 32, 32)
    labels, index = drawn(source).T
    assert set(labels.tolist()) <= wanted
    assert set(index.tolist()) == set(range(6))  # 4 train + 2 test images of each class


@pytest.mark.parametrize("split, superclasses", [("train", 12), ("val", 4), ("test", 4)])
def test_fc100_takes_the_five_classes_of_each_listed_superclass(cifar, split, superclasses):
    pairs = [tuple(p) for s in layouts.SPLITS for p in layouts.packaged("cifar_fs", s)]
    names = fine_names()
    listed = set(layouts.packaged("fc100", split))
    wanted = {names.index(name) for superclass, name in pairs if superclass in listed}
    source = open_cifar("fc100", cifar, split)
    assert source.num_classes == len(wanted) == 5 * superclasses
    assert set(drawn(source, 100)[:, 0].tolist()) == wanted


def test_grayscale_and_resized(cifar):
    source = open_cifar("cifar_fs", cifar, "val", size=28, channels=1)
    assert source.input_shape == (1, 28, 28)
    batch = source.sample(2, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (2, 10, 1, 28, 28)


def test_copies_that_differ_from_the_published_files_are_refused_unless_told(cifar):
    with pytest.raises(DataError, match=r"(?s)cifar_fs: .*train is not the published file .*"
                                        r"md5 .*expected 16019d7e3df5f24257cddd939b257f8d.*`verify: false`"):
        open_dataset("cifar_fs", root=str(cifar), split="train", ways=5, shots=1, queries=1,
                     download=False)


def test_a_truncated_pickle_is_a_data_error_and_nothing_is_cached(tmp_path):
    folder = layouts.write_cifar100(tmp_path)
    data = (folder / "test").read_bytes()
    (folder / "test").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cifar_fs: .*test is not a readable data pickle"):
        open_cifar("cifar_fs", tmp_path, "train")
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    folder = layouts.write_cifar100(tmp_path)

    class Payload:
        def __reduce__(self):
            return (print, ("should never run",))

    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": Payload()}))
    with pytest.raises(DataError, match="builtins.print, which a data file should not"):
        open_cifar("cifar_fs", tmp_path, "train")


def test_missing_cifar_names_the_folders_the_layout_and_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as error:
        open_dataset("fc100", root=str(tmp_path), split="train", ways=5, shots=1, queries=1)
    message = str(error.value)
    assert message.startswith("fc100 (FC100) data not found")
    assert str(tmp_path / "cifar100" / "cifar-100-python") in message
    assert str(tmp_path / "cifar-100-python") in message
    assert "cifar-100-python.tar.gz" in message and "MTDSL_OFFLINE" in message
    assert not (tmp_path / "cifar100").exists()  # no download was tried
