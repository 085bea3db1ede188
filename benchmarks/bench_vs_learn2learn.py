"""mtdsl's engine against learn2learn's MAML, the base of the public Meta-ticket code: the
same network, initial values and tasks, the meta-gradient of one meta-batch (5-way 5-shot,
one inner step, second order) for meta-batches of 4 and 32, with 15 queries per class and
with 5 (queries = shots, as the specs meta-train). The gradients are checked equal first
(in float64, see `_same_gradients`), so the comparison is between two computations of the
same numbers; then mtdsl (compiled, stacked, and eager: vmap) and learn2learn are timed
interleaved in one process. The compiled meta-gradient is compared with the stacked one in
float32 (a float64 graph would be a second compile); its gap is a column.

    .venv/bin/python benchmarks/bench_vs_learn2learn.py [--rounds 9] [--device cuda]

Writes benchmarks/results/vs_learn2learn.json. A ratio above 1 means mtdsl is faster.
"""

from __future__ import annotations


import learn2learn as l2l
import torch
import torch.nn.functional as F
from torch import nn

from common import (MAML, compile_seconds, compile_spec, interleaved, learner, omniglot_mlp,
                    options, table, tasks_for, write_result)
from mtdsl.engine.compiled import relative_gap
from mtdsl.data.batch import TaskBatch


class Mlp(nn.Module):
    """The paper's Omniglot MLP written as plain torch modules, for learn2learn."""

    def __init__(self, sizes=(784, 256, 128, 64, 64), ways=5):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b, eps=1e-3, track_running_stats=False) for b in sizes[1:])
        self.head = nn.Linear(sizes[-1], ways)

    def forward(self, x):
        x = x.flatten(1)
        for layer, norm in zip(self.layers, self.norms):
            x = F.relu(norm(layer(x)))
        return self.head(x)

    def in_compiled_order(self):
        """Parameters in the order mtdsl's compiled MLP names them: per layer weight, bias,
        bn.weight, bn.bias; then the head."""
        for layer, norm in zip(self.layers, self.norms):
            yield from (layer.weight, layer.bias, norm.weight, norm.bias)
        yield from (self.head.weight, self.head.bias)


def l2l_gradients(maml, batch: TaskBatch) -> list[torch.Tensor]:
    maml.zero_grad()
    for i in range(batch.tasks):
        clone = maml.clone()
        clone.adapt(F.cross_entropy(clone(batch.support_x[i]), batch.support_y[i]))
        (F.cross_entropy(clone(batch.query_x[i]), batch.query_y[i]) / batch.tasks).backward()
    return [p.grad.clone() for p in maml.module.in_compiled_order()]


def their_maml(ours, device: torch.device):
    """learn2learn's MAML (inner lr 0.4, second order) of the MLP, starting from the values
    of `ours`, a MetaLearner of the compiled MLP with every parameter meta-learned, and in
    its dtype."""
    model = Mlp().to(device, next(iter(ours.learned.values())).dtype)
    with torch.no_grad():
        for p, name in zip(model.in_compiled_order(), ours.learned):
            p.copy_(ours.learned[name])
    return l2l.algorithms.MAML(model, lr=0.4, first_order=False)


def _same_gradients(c, batch: TaskBatch, device: torch.device) -> float:
    """The largest difference, relative to the gradient's norm, between learn2learn's
    meta-gradient and mtdsl's (stacked and eager), computed in float64: at the rounding of
    float32, a unit whose pre-activation lies within rounding of relu's kink can take either
    side in two implementations, and the meta-gradient jumps with it."""
    batch = TaskBatch(batch.support_x.double(), batch.support_y, batch.query_x.double(),
                      batch.query_y)
    stacked, eager = (learner(c, device, stacked=s, dtype=torch.float64) for s in (True, False))
    theirs = l2l_gradients(their_maml(stacked, device), batch)
    scale = torch.cat([g.flatten() for g in theirs]).norm()
    worst = 0.0
    for ours in (stacked.meta_gradients(batch)[0], eager.meta_gradients(batch)[0]):
        for g, name in zip(theirs, ours):
            worst = max(worst, ((ours[name] - g).norm() / scale).item())
    return worst


def compare(tasks: int, queries: int, device: torch.device, rounds: int) -> dict:
    c = compile_spec(omniglot_mlp(1), MAML, tasks=tasks, queries=queries, inner_lr=0.4)
    batch = tasks_for(c, device)
    worst = _same_gradients(c, batch, device)
    assert worst < 1e-10, f"the meta-gradients differ (relative {worst:.2e})"
    stacked, eager = learner(c, device), learner(c, device, stacked=False)
    compiled = learner(c, device, compiled=True)
    maml = their_maml(stacked, device)
    order = list(stacked.learned)
    gap = relative_gap([compiled.meta_gradients(batch)[0][k] for k in order],
                       [stacked.meta_gradients(batch)[0][k] for k in order])
    r = interleaved({"learn2learn": lambda: l2l_gradients(maml, batch),
                     "compiled": lambda: compiled.meta_gradients(batch),
                     "stacked": lambda: stacked.meta_gradients(batch),
                     "eager": lambda: eager.meta_gradients(batch)}, device, rounds)
    return {"queries": queries, "meta-batch": tasks, "learn2learn ms": r["learn2learn_s"] * 1e3,
            "mtdsl compiled ms": r["compiled_s"] * 1e3,
            "mtdsl stacked ms": r["stacked_s"] * 1e3, "mtdsl eager ms": r["eager_s"] * 1e3,
            "l2l/compiled": r["ratio:learn2learn/compiled"],
            "l2l/stacked": r["ratio:learn2learn/stacked"], "l2l/eager": r["ratio:learn2learn/eager"],
            "gradient difference (float64)": worst, "compiled/stacked gap (float32)": gap,
            "compile s": compile_seconds(compiled)}


def main() -> None:
    args, device = options(__doc__, 9)
    rows = []
    # Queries per class: 15, as this comparison was first set, and 5, the specs' own (queries
    # = shots, the paper's protocol); the paper's meta-batches: 4 (most experiments) and 32
    # (section 4.1.2).
    for queries, tasks in ((15, 4), (15, 32), (5, 4), (5, 32)):
        rows.append(compare(tasks, queries, device, args.rounds))
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    path = write_result("vs_learn2learn", device, rows, rounds=args.rounds,
                        case="Omniglot MLP 784-256-128-64-64-5, MAML, 5-way 5-shot, 1 inner step, "
                             "second order")
    print(table(rows, list(rows[0])))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
