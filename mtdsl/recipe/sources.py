"""The experiment's datasets, opened as task sources on the training device."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DataError
from ..validate import spec as S


@dataclass
class Sources:
    train: object
    valid: object | None
    tests: dict[str, object]  # "<dataset>/<split>" -> task source


def open_source(exp: S.Experiment, ds, device, split: str | None = None):
    from ..data.registry import open_dataset

    options = ds.model_dump(exclude={"kind", "split", "root"})
    return open_dataset(ds.kind, root=getattr(ds, "root", None) or exp.data.root, split=split or ds.split,
                        ways=exp.task.ways if ds.task_kind == "classification" else None,
                        shots=exp.task.shots, queries=exp.task.queries, **options).to(device)


def label(ds) -> str:
    return ds.label


def open_sources(exp: S.Experiment, device, key_spans: dict | None = None) -> Sources:
    """Every dataset of the experiment as a task source. With the spec's `key_spans`
    (validate.tree.Located), a dataset that cannot be opened is reported at the line that
    names it."""
    def opened(role: str, ds):
        try:
            return open_source(exp, ds, device)
        except DataError as e:
            at = (key_spans or {}).get(("data", role))
            if at is None:
                raise
            raise DataError(f"{at}: data.{role}: {e}") from None

    tests = {}
    for ds in exp.data.test:
        key, n = label(ds), 1
        while key in tests:  # the same dataset and split twice, e.g. at two sizes
            n += 1
            key = f"{label(ds)}#{n}"
        tests[key] = opened("test", ds)
    valid = opened("valid", exp.data.valid) if exp.data.valid else None
    return Sources(opened("train", exp.data.train), valid, tests)
