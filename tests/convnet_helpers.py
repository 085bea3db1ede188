"""Conv-net experiments written in the language, compiled, and fed generated image tasks:
what the model and engine tests need to run the paper's networks without a dataset."""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch

from mtdsl.compile.compiler import Compiled, compile_experiment
from mtdsl.compile.module import CompiledModel
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner
from mtdsl.validate.loader import load

from conftest import ROOT

WAYS = 2

# Meta-ticket's roles for a conv net: weights masked; batch norm, biases and head fixed.
TICKET = '"**.weight": masked, "head.**", "**.bn.**": fixed'
TICKET_WITH_BIASES = '"**.weight": masked, "head.**", "**.bias", "**.bn.**": fixed'
MAML = '"**": meta'


def compile_spec(folder: Path, model: str, params: str, *, size: int = 16, shots: int = 2,
                 queries: int = 2, steps: int = 1, order: str = "second", tasks: int = 3,
                 tasks_in: str = "vmap", device: str = "cpu") -> Compiled:
    """One experiment on omniglot-shaped (1 x size x size) tasks; only its shapes are used."""
    text = textwrap.dedent(f"""\
        import "{ROOT}/specs/lib/models.mt"
        experiment e {{
          data  {{ train = omniglot(split: "train", size: {size}) }}
          task  {{ ways: {WAYS}, shots: {shots}, queries: {queries} }}
          model = {model}
          params {{ {params} }}
          inner {{ steps: {steps}, lr: 0.1, order: {order} }}
          outer {{ optimizer: adam(lr: 0.01), iterations: 2, meta_batch: {tasks}, tasks_in: {tasks_in} }}
          device: {device}
        }}
        """)
    path = folder / "spec.mt"
    path.write_text(text)
    return compile_experiment(load(path), "e")


def learner_for(c: Compiled, seed: int = 1) -> MetaLearner:
    return MetaLearner(CompiledModel(c.graph), c.plan, seed=seed)


def image_tasks(c: Compiled, seed: int = 0) -> TaskBatch:
    """Random images, every class in every task with `shots` support and `queries` query
    examples, as the data stage stacks them."""
    g = torch.Generator().manual_seed(seed)
    shape = c.graph.input_shape
    tasks = c.plan.outer.meta_batch
    task = c.plan.task

    def half(per_class):
        x = torch.rand(tasks, WAYS * per_class, *shape, generator=g)
        y = torch.arange(WAYS).repeat_interleave(per_class).expand(tasks, -1).clone()
        return x, y

    return TaskBatch(*half(task.shots), *half(task.queries))
