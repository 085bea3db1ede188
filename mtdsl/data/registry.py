"""Every dataset a spec can name, and the one function that turns a name into tasks.

Importing this module must not import torch: `mtdsl check` asks it for input shapes and
class counts. A loader imports its dataset's module (and torch) only when it runs.
A new dataset is one more `register(DatasetEntry(...))`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from mtdsl.data import omniglot_catalog
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
    """name, kind and splits; input_shape(size) and num_classes(split, rotations) answer
    without loading anything; open(**open_dataset's keywords) loads and returns a TaskSource."""

    name: str
    kind: Literal["classification", "regression"]
    splits: tuple[str, ...]
    input_shape: Callable[[int | None], tuple[int, ...]]
    num_classes: Callable[[str, Sequence[int] | None], int | None]
    open: Callable[..., TaskSource]


DATASETS: dict[str, DatasetEntry] = {}


def register(entry: DatasetEntry) -> None:
    DATASETS[entry.name] = entry


def dataset_entry(name: str) -> DatasetEntry:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None


def open_dataset(name: str, *, root: str | None = None, split: str = "train", size: int | None = None,
                 rotations: Sequence[int] | None = None, ways: int | None = None, shots: int,
                 queries: int, download: bool = True, **options) -> TaskSource:
    """The tasks of one split of a dataset, on the CPU; `.to(device)` moves them.
    `options` are the dataset's own settings (e.g. sinusoid's `amplitude`)."""
    entry = dataset_entry(name)
    if split not in entry.splits:
        raise DataError(f"{name} has no split {split!r}; known splits: {', '.join(entry.splits)}")
    return entry.open(root=root, split=split, size=size, rotations=rotations, ways=ways,
                      shots=shots, queries=queries, download=download, **options)


def _open_omniglot(**options) -> TaskSource:
    from mtdsl.data.omniglot import open_omniglot

    return open_omniglot(**options)


def _open_sinusoid(**options) -> TaskSource:
    from mtdsl.data.sinusoid import open_sinusoid

    return open_sinusoid(**options)


register(DatasetEntry(
    name="omniglot",
    kind="classification",
    splits=omniglot_catalog.SPLITS,
    input_shape=omniglot_catalog.input_shape,
    num_classes=omniglot_catalog.num_classes,
    open=_open_omniglot,
))

register(DatasetEntry(
    name="sinusoid",
    kind="regression",
    splits=("train", "val", "test"),
    input_shape=lambda size: (1,),
    num_classes=lambda split, rotations: None,
    open=_open_sinusoid,
))
