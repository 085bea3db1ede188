"""Every dataset a spec can name, and the one function that turns a name into tasks.

The datasets are the components of `mtdsl.validate.datasets`, each its own declaration
(options, defaults, facts, loader); this module only opens them. Importing it must not import
torch: `mtdsl check` asks it for input shapes and class counts. A loader module (and torch)
is imported only when its dataset is opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import ValidationError

from mtdsl.errors import DataError
from mtdsl.validate.datasets import COMPONENTS

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


DATASETS: dict[str, type] = {c.model_fields["kind"].annotation.__args__[0]: c for c in COMPONENTS}
# Set by the spec itself, not passed to the loader as an option.
NOT_OPTIONS = ("kind", "split", "root")


def declaration(name: str) -> type:
    """The component class that declares dataset `name`."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None


def options(name: str) -> tuple[str, ...]:
    """The keywords of dataset `name`'s own (size, rotations, download, ...)."""
    return tuple(f for f in declaration(name).model_fields if f not in NOT_OPTIONS)


def open_dataset(name: str, *, root: str | None = None, split: str = "train", ways: int | None = None,
                 shots: int, queries: int, **given) -> TaskSource:
    """The tasks of one split of a dataset, on the CPU; `.to(device)` moves them.
    `given` are the dataset's own options (e.g. `size`, sinusoid's `amplitude`); the rest
    take their declared defaults."""
    cls = declaration(name)
    splits = cls.model_fields["split"].annotation.__args__
    if split not in splits:
        raise DataError(f"{name} has no split {split!r}; known splits: {', '.join(splits)}")
    unknown = sorted(set(given) - set(options(name)))
    if unknown:
        raise DataError(f"{name} takes no option {', '.join(unknown)}; its options: "
                        f"{', '.join(options(name))}")
    try:
        dataset = cls.model_validate({"kind": name, "split": split, **given})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in error.errors())
        raise DataError(f"{name}: {problems}") from None
    return open_declared(dataset, root=root, ways=ways, shots=shots, queries=queries)


def open_declared(dataset, *, root: str | None, ways: int | None, shots: int, queries: int) -> TaskSource:
    """The tasks of a validated dataset component; its own `root` wins over `root`."""
    module, function = dataset.facts.loader.split(":")
    loader = getattr(importlib.import_module(f"mtdsl.data.{module}"), function)
    kept = dataset.model_dump(exclude=set(NOT_OPTIONS))
    return loader(root=getattr(dataset, "root", None) or root, split=dataset.split, ways=ways,
                  shots=shots, queries=queries, **kept)
