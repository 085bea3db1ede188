"""Tasks a dataset cannot give, found before any data is read: more ways than a split has
classes, more shots + queries than a class has images. The numbers are each dataset's
declared facts (`mtdsl.validate.datasets`); datasets whose counts only the files know (a
user's folder, classes of different sizes) are checked when they are opened."""

from __future__ import annotations

from ..language.diagnostics import Diagnostic
from ..language.source import Span
from ..validate import spec as S


def roles(exp: S.Experiment):
    """(path in the spec, dataset) for every dataset of the experiment."""
    yield ("data", "train"), exp.data.train
    if exp.data.valid is not None:
        yield ("data", "valid"), exp.data.valid
    for i, ds in enumerate(exp.data.test):
        yield ("data", "test", i), ds


def check_task_limits(exp: S.Experiment, spans: dict, key_spans: dict, fallback: Span) -> list[Diagnostic]:
    task = exp.task
    if task.ways is None:
        return []
    per_class = task.shots + (task.queries if task.queries is not None else task.shots)
    out, too_small = [], set()
    for path, ds in roles(exp):
        if ds.task_kind != "classification":
            continue
        where = spans.get(path) or spans.get(path[:2]) or fallback
        name = f"`{'.'.join(map(str, path[:2]))}{f'[{path[2]}]' if len(path) > 2 else ''}`"
        classes = ds.class_count(ds.split)
        if classes is not None and task.ways > classes:
            out.append(Diagnostic(
                f"{name} is {ds.kind}'s {ds.split} split, {classes} classes, too few for "
                f"{task.ways}-way tasks (task.ways)", where,
                f"lower task.ways to at most {classes}, or use a split with more classes",
                notes=[("task.ways is set here", key_spans.get(("task", "ways"), fallback))]))
        images = ds.images_per_class
        if images is not None and per_class > images and ds.kind not in too_small:
            too_small.add(ds.kind)  # said once per dataset: every split has the same classes
            out.append(Diagnostic(
                f"{name}: tasks take shots + queries = {task.shots} + {per_class - task.shots} = "
                f"{per_class} images per class, but every {ds.kind} class has {images}", where,
                f"lower task.shots or task.queries so that they sum to at most {images}",
                notes=[("task.shots is set here", key_spans.get(("task", "shots"), fallback))]))
    return out
