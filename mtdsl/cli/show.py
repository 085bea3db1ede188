"""`mtdsl show`: what will actually run — the compiled model table and the plan."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..compile.compiler import Compiled
from ..compile.layers import fmt_shape
from ..compile.plan import ParamPlan


def starting_sparsity(p: ParamPlan, sparsity: float) -> float:
    """The pruned fraction at initialisation: the threshold is the k-th smallest initial
    score with k = 1 + round(q (n - 1)), so exactly k - 1 entries fall below it."""
    return round(sparsity * (p.numel - 1)) / p.numel


def print_compiled(console: Console, c: Compiled, point: str | None = None) -> None:
    """`point` labels one point of a sweep (e.g. "model.width=2,seed=1")."""
    exp, plan, graph = c.experiment, c.plan, c.graph
    if not console.is_terminal:  # a pipe or file: room for the whole table
        console = Console(file=console.file, width=max(console.width, 140), highlight=False)
    name = c.resolved.name + (f" [{point}]" if point else "")
    table = Table(title=escape(f"{name}: model {exp.model.func}, input {fmt_shape(graph.input_shape)}"))
    for col in ("layer", "output", "parameter", "shape", "count", "role", "inner lr", "init", "start sparsity"):
        table.add_column(col, justify="right" if col in ("count", "inner lr", "start sparsity") else "left")
    plans = {p.name: p for p in plan.params}
    for layer in graph.layers():
        for i, spec in enumerate(layer.params or [None]):
            p = plans[spec.name] if spec else None
            table.add_row(
                f"{layer.scope or '.'} {layer.kind}" if i == 0 else "",
                fmt_shape(layer.out_shape) if i == 0 else "",
                *((p.name, fmt_shape(p.shape), f"{p.numel:,}", p.role, f"{p.inner_lr:g}", p.init,
                   f"{starting_sparsity(p, plan.mask.sparsity):.1%}" if p.role == "masked" else "")
                  if p else [""] * 7))
    console.print(table)
    total = sum(p.numel for p in plan.params)
    by_role = {r: sum(p.numel for p in plan.params if p.role == r) for r in ("masked", "meta", "fixed")}
    console.print(f"parameters: {total:,} ({total / 1e6:.2f} M) — "
                  + ", ".join(f"{r} {n:,}" for r, n in by_role.items() if n))
    learned = [w for w, r in (("scores of masked tensors", "masked"), ("initial values of meta tensors", "meta"))
               if by_role[r]]
    console.print("meta-learned: " + " and ".join(learned))
    o, i, m = plan.outer, plan.inner, plan.mask
    if by_role["masked"]:
        masked = [p for p in plan.params if p.role == "masked"]
        other = [p for p in masked if p.init != exp.mask.weights]
        weights = exp.mask.weights if not other else (
            ", ".join(sorted({p.init for p in masked})) + f" (`init` overrides mask.weights "
            f"{exp.mask.weights} for {len(other)} of {len(masked)} masked tensors)")
        console.print(f"mask: weights {weights}, scores {m.scores_init}, threshold at sparsity "
                      f"{m.sparsity:g}" + (f", IteRand every {m.iterand_every} (p={m.iterand_prob:g})"
                                           if m.iterand_every else ""))
    console.print(f"inner: {i.steps} step(s) in training, {i.test_steps} at test, {i.order} order")
    opt = o.optimizer
    console.print(f"outer: {opt.name}(lr {opt.lr:g}" + (f", momentum {opt.momentum:g}" if opt.name == "sgd" else "")
                  + f"), schedule {o.schedule.name}"
                  + (f" (warmup {o.schedule.warmup})" if o.schedule.name != "none" else "")
                  + f", {o.iterations} iterations x {o.meta_batch} tasks "
                  + (f"(chunks of {o.chunk_size})" if o.tasks_in == "chunks" else f"({o.tasks_in})"))
    t = plan.task
    console.print("tasks: " + (f"{t.ways}-way " if t.ways else "") + f"{t.shots}-shot, {t.queries} queries"
                  f"; loss {plan.loss}; seeds {exp.seeds}")


def print_batches(console: Console, c: Compiled) -> None:
    """One task of every dataset as the model receives it: a check of the pixel convention
    (an inverted or unnormalised foreign dataset shows here, before any training)."""
    import torch

    from ..data.registry import open_declared
    from ..validate.datasets import Folder

    exp = c.experiment
    datasets = [("data.train", exp.data.train)] + ([("data.valid", exp.data.valid)] if exp.data.valid else [])
    datasets += [(f"data.test[{i}]", ds) for i, ds in enumerate(exp.data.test)]
    for where, ds in datasets:
        source = open_declared(ds, root=exp.data.root, shots=exp.task.shots,
                               queries=exp.task.queries or exp.task.shots,
                               ways=exp.task.ways if ds.task_kind == "classification" else None)
        x = source.sample(1, torch.Generator().manual_seed(0)).support_x
        console.print(f"{where} {ds.kind}/{ds.split}: support {fmt_shape(tuple(x.shape[1:]))}, "
                      f"inputs in [{x.min().item():.3g}, {x.max().item():.3g}], mean "
                      f"{x.mean().item():.3g}, std {x.std().item():.3g}"
                      + (f"; {type(ds).facts.pixels}" if not isinstance(ds, Folder) else ""),
                      markup=False, highlight=False, soft_wrap=True)
