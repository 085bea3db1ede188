"""`mtdsl run SPEC --estimate`: what each run of the reference would cost on this machine,
measured, without running it or writing anything."""

from __future__ import annotations

import time

from rich.console import Console

from .select import compile_units


def estimate_ref(ref: str, overrides: list[str], *, seed: int | None, device: str | None,
                 console: Console) -> None:
    import torch

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
        if unit.label:
            console.print(f"[bold]{unit.group}[/] point {unit.label}:", highlight=False)
        e = estimate(c, sources, learner, seeds[0], setup_seconds=time.monotonic() - began)
        print_estimate(console, e)
        total += e.total_seconds * len(seeds)
        runs += len(seeds)
    if runs > 1:
        console.print(f"all {runs} runs, one after another: {format_duration(total)} ({total:.1f} s)",
                      highlight=False)
