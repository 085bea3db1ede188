"""`mtdsl run SPEC --estimate`: what each run of the reference would cost on this machine,
measured, without running it or writing anything."""

from __future__ import annotations

import time

from rich.console import Console

from .select import compile_units


def estimate_ref(ref: str, overrides: list[str], *, seed: int | None, device: str | None,
                 console: Console) -> None:
    import torch

    from ..engine.init import seeded_generator
    from ..recipe.estimate import estimate, learner_for, print_estimate
    from ..recipe.meta_train import pick_device
    from ..recipe.sources import open_sources
    from ..report.summary import format_duration

    total, runs = 0.0, 0
    for unit in compile_units(ref, overrides):
        c = unit.compiled
        dev = pick_device(device or c.experiment.device.type)
        seeds = [seed] if seed is not None else c.experiment.seeds
        began = time.monotonic()
        sources = open_sources(c.experiment, dev, c.resolved.located.key_spans)
        torch.manual_seed(seeds[0])
        learner = learner_for(c, dev, seeds[0])
        setup = time.monotonic() - began
        if unit.label:
            console.print(f"[bold]{unit.group}[/] point {unit.label}:", highlight=False)
        # Compiled now, as the run would, so that the wait is announced; it is kept on disk,
        # so the run that follows loads it and the projection leaves it out.
        probe = sources.train.sample(c.plan.outer.meta_batch, seeded_generator(seeds[0], "probe"))
        said = learner.compile_now(probe)
        if said:
            console.print(said, markup=False, highlight=False)
        e = estimate(c, sources, learner, seeds[0], setup_seconds=setup)
        print_estimate(console, e)
        total += e.total_seconds * len(seeds)
        runs += len(seeds)
    if runs > 1:
        console.print(f"all {runs} runs, one after another: {format_duration(total)} ({total:.1f} s)",
                      highlight=False)
