"""The meta-gradients of one meta-batch, computed by this process alone or, under torchrun,
shared among its processes: `python tests/distributed_gradients.py SPEC OUT` (rank 0 saves
them to OUT). Imported by test_distributed.py for the one-process reference."""

from __future__ import annotations

import sys

import torch

from mtdsl.cli.select import compile_units
from mtdsl.compile.module import CompiledModel
from mtdsl.engine.init import seeded_generator
from mtdsl.engine.meta import MetaLearner
from mtdsl.recipe.communicator import SingleProcess, this_process
from mtdsl.recipe.meta_train import share_of
from mtdsl.recipe.sources import open_sources

TASKS = 5  # does not divide among 2 processes: the mean must still be over all 5


def meta_gradients(spec: str, comm=SingleProcess()) -> dict:
    c = compile_units(spec, [])[0].compiled
    learner = MetaLearner(CompiledModel(c.graph), c.plan, seed=3)
    batch = open_sources(c.experiment, "cpu").train.sample(TASKS, seeded_generator(3, "train-tasks"))
    grads, stats = learner.meta_gradients(share_of(batch, comm.share(TASKS)), comm.sum)
    return {"grads": grads, "loss": stats.loss, "accuracy": stats.accuracy}


if __name__ == "__main__":
    comm = this_process()
    out = meta_gradients(sys.argv[1], comm)
    if comm.is_main:
        torch.save({**out, "world_size": comm.world_size}, sys.argv[2])
    comm.finish()  # every rank leaves together, as `mtdsl run` does
