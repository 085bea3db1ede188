"""The found subnetwork of a finished run: which weights its masks keep, per tensor.

resolved.json lists the parameters in model order with their roles; final.pt holds their
tensors (report/rundir.py's FinalTensors): a masked tensor's value is its drawn weight
times its mask, a meta tensor's its learned value, a fixed tensor's its weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mtdsl.errors import RunError
from mtdsl.report.rundir import FINAL, FinalTensors, RESOLVED, Run, open_run
from mtdsl.report.summary import format_metric


@dataclass(frozen=True)
class TicketParam:
    name: str
    shape: tuple[int, ...]
    role: str  # masked, meta or fixed
    kept: int  # entries the mask keeps; every entry for meta and fixed tensors
    total: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.kept / self.total if self.total else 0.0


def parameter_roles(run: Run) -> dict[str, str]:
    """Parameter name -> role in model order, from resolved.json's parameter table."""
    roles = run.roles()
    if not roles:
        raise RunError(f"{run.path / RESOLVED} has no parameter table, so the model's "
                       "tensors cannot be named in order")
    return roles


def ticket_tensors(run: Run, final: FinalTensors | None = None) -> tuple[dict, dict]:
    """(values, masks): each parameter's value in the found network — weight * mask for a
    masked tensor, the meta-learned or fixed value otherwise — and each masked tensor's
    mask as a bool tensor, both keyed by parameter name."""
    final = run.final() if final is None else final
    values, masks = {}, {}
    for name, role in parameter_roles(run).items():
        group = {"masked": final.masks, "meta": final.learned}.get(role, final.weights)
        if name not in group or (role == "masked" and name not in final.weights):
            raise RunError(f"{run.path / FINAL} has no {role} tensor for parameter {name!r}; "
                           f"it does not belong to this run's {RESOLVED}")
        if role == "masked":
            values[name] = (final.weights[name] * final.masks[name]).contiguous()
            masks[name] = final.masks[name].bool().contiguous()
        else:
            values[name] = group[name].contiguous()
    return values, masks


def ticket_params(run: Run, final: FinalTensors | None = None) -> list[TicketParam]:
    values, masks = ticket_tensors(run, final)
    roles = parameter_roles(run)
    return [TicketParam(name, tuple(value.shape), roles[name],
                        int(masks[name].sum()) if name in masks else value.numel(), value.numel())
            for name, value in values.items()]


def print_ticket(console: Console, run_dir: str | Path) -> None:
    """`mtdsl show RUN_DIR`: the subnetwork's per-tensor sparsity and parameter counts."""
    run = open_run(run_dir)
    rows = ticket_params(run)
    masked = [p for p in rows if p.role == "masked"]
    what = "the found subnetwork" if masked else "the meta-learned network (no masks)"
    table = Table(title=f"{run.experiment} seed {run.seed}: {what}", title_justify="left")
    for title in ("parameter", "shape", "role", "kept / total", "sparsity"):
        table.add_column(title, justify="right" if title in ("kept / total", "sparsity") else "left",
                         no_wrap=title != "parameter")
    for p in rows:
        table.add_row(Text(p.name), "×".join(map(str, p.shape)), p.role, f"{p.kept:,} / {p.total:,}",
                      f"{p.sparsity * 100:.2f}%" if p.role == "masked" else "")
    console.print(table)
    total = sum(p.total for p in rows)
    kept = sum(p.kept for p in rows)
    whole = total - sum(p.total for p in masked)
    if masked:
        m_kept, m_total = sum(p.kept for p in masked), sum(p.total for p in masked)
        console.print(f"subnetwork: {kept:,} of {total:,} parameters ({kept / total * 100:.2f}%); "
                      f"masked tensors keep {m_kept:,} of {m_total:,} "
                      f"({(1 - m_kept / m_total) * 100:.2f}% pruned), {whole:,} meta/fixed kept whole",
                      markup=False, highlight=False)
    else:
        console.print(f"no masked tensors: all {total:,} parameters are kept", highlight=False)
    for split, entry in run.result.get("test", {}).items():
        console.print(f"test {split}: {format_metric(entry.get('metric', 'accuracy'), entry.get('mean'), entry.get('ci95'))}"
                      f" over {entry.get('tasks', '?')} tasks", markup=False, highlight=False)
    console.print(f"run folder: {run.path}", markup=False, highlight=False, soft_wrap=True)
