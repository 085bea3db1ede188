"""Every dataset a spec can name, and the one function that turns a name into tasks.

Importing this module must not import torch: `mtdsl check` asks it for input shapes and
class counts. A loader imports its dataset's module (and torch) only when it runs.
A new dataset is one more `register(DatasetEntry(...))`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from mtdsl.data import catalog, omniglot_catalog
from mtdsl.errors import DataError

if TYPE_CHECKING:
    import torch

    from mtdsl.data.batch import TaskBatch


class TaskSource(Protocol):
    """What `open_dataset` returns and the engine samples from."""

    kind: Literal["classification", "regression"]
    input_shape: tuple[int, ...]
    num_classes: int | None

    def sample(self, n_tasks: int, generator: torch.Generator) -> TaskBatch: ...

    def to(self, device) -> TaskSource: ...


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset's name, kind, splits and `options` (the keywords of its own that `open`
    takes besides root, split, ways, shots, queries and download).

    input_shape(**options) and num_classes(split, **options) answer without loading anything
    (num_classes is None where only the data can tell); open(**open_dataset's keywords) loads
    and returns a TaskSource.
    """

    name: str
    kind: Literal["classification", "regression"]
    splits: tuple[str, ...]
    options: tuple[str, ...]
    input_shape: Callable[..., tuple[int, ...]]
    num_classes: Callable[..., int | None]
    open: Callable[..., TaskSource]


DATASETS: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> None:
    DATASETS[entry.name] = entry


def dataset_entry(name: str) -> DatasetEntry:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None


def open_dataset(name: str, *, root: str | None = None, split: str = "train", ways: int | None = None,
                 shots: int, queries: int, download: bool = True, **options) -> TaskSource:
    """The tasks of one split of a dataset, on the CPU; `.to(device)` moves them.
    `options` are the dataset's own settings (e.g. `size`, sinusoid's `amplitude`)."""
    entry = dataset_entry(name)
    if split not in entry.splits:
        raise DataError(f"{name} has no split {split!r}; known splits: {', '.join(entry.splits)}")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        raise DataError(f"{name} takes no option {', '.join(unknown)}; its options: "
                        f"{', '.join(entry.options)}")
    return entry.open(root=root, split=split, ways=ways, shots=shots, queries=queries,
                      download=download, **options)


def _loader(module: str, function: str) -> Callable[..., TaskSource]:
    def open_(**keywords) -> TaskSource:
        return getattr(importlib.import_module(f"mtdsl.data.{module}"), function)(**keywords)
    return open_


register(DatasetEntry(
    name="omniglot",
    kind="classification",
    splits=omniglot_catalog.SPLITS,
    options=("size", "rotations", "channels"),
    input_shape=lambda size=None, channels=None, **_: omniglot_catalog.input_shape(size, channels),
    num_classes=lambda split, rotations=None, **_: omniglot_catalog.num_classes(split, rotations),
    open=_loader("omniglot", "open_omniglot"),
))

register(DatasetEntry(
    name="sinusoid",
    kind="regression",
    splits=catalog.SPLITS,
    options=("amplitude", "phase", "x_range"),
    input_shape=lambda **_: (1,),
    num_classes=lambda split, **_: None,
    open=_loader("sinusoid", "open_sinusoid"),
))

IMAGE_OPTIONS = ("size", "resize", "channels")


def _image_dataset(name: str, module: str, extra: tuple[str, ...] = (), *,
                   counted: bool = True) -> DatasetEntry:
    """An image dataset; `counted` is False where only the files tell the class count."""
    def input_shape(size: int | None = None, channels: int | None = None, **_) -> tuple[int, ...]:
        return catalog.input_shape(name, size, channels)

    def num_classes(split: str, **_) -> int | None:
        return catalog.class_count(name, split) if counted else None

    return DatasetEntry(name=name, kind="classification", splits=catalog.SPLITS,
                        options=IMAGE_OPTIONS + extra, input_shape=input_shape,
                        num_classes=num_classes, open=_loader(module, f"open_{name}"))


for _entry in (
    _image_dataset("cifar_fs", "cifar", ("verify",)),
    _image_dataset("fc100", "cifar", ("verify",)),
    _image_dataset("vgg_flower", "flowers", ("verify",)),
    _image_dataset("aircraft", "aircraft", ("boxes",)),
    _image_dataset("cars", "cars", ("boxes",)),
    _image_dataset("cub", "cub"),
    _image_dataset("mini_imagenet", "imagenet"),
    _image_dataset("tiered_imagenet", "imagenet"),
    _image_dataset("folder", "folder", ("path", "splits", "fractions", "seed"), counted=False),
):
    register(_entry)
