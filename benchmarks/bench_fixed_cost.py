"""How much of a meta-gradient is per-operator cost, whatever the network's size: the
Omniglot MLP's meta-gradient (4 tasks, 5-way 5-shot, one inner step, second order) against
the same computation on a network about 50 times smaller (hidden layers of 64 on 8x8
images), which dispatches the same operators (counted, and checked equal) on tensors too
small for their arithmetic to matter much. The small network's time is about what dispatch,
autograd's bookkeeping, allocation and Python cost; the difference is what the network's
size costs. `ceiling` is real / (real - small): how much faster the meta-gradient would be
if every per-operator cost vanished, which no eager implementation reaches. For MAML,
learn2learn's time on the real network gives the ratio today and at that ceiling.

    .venv/bin/python benchmarks/bench_fixed_cost.py [--rounds 15] [--threads 1]

Writes benchmarks/results/fixed_cost.json.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench_vs_learn2learn import l2l_gradients, their_maml
from common import (MAML, TICKET, compile_spec, interleaved, learner, omniglot_mlp, options,
                    table, tasks_for, write_result)

SMALL = "mlp(hidden: [64, 64, 64, 64], width: 1, classes: 5)"
# (roles, queries per class): Meta-ticket as the spec meta-trains (queries = shots), MAML
# also at the 15 queries of the learn2learn comparison.
CASES = {"meta-ticket, 5 queries": (TICKET, 5), "maml, 5 queries": (MAML, 5),
         "maml, 15 queries": (MAML, 15)}
CALLS = 10  # meta-gradients per timed call: one on the small network is too short to time


class _Operators(TorchDispatchMode):
    """Counts the operators dispatched while active, by name."""

    def __init__(self):
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def _operators(step) -> Counter[str]:
    with _Operators() as mode:
        step()
    return mode.counts


def measure(roles: str, queries: int, device: torch.device, rounds: int) -> dict:
    fns, batches = {}, {}
    for name, model, size in (("real", omniglot_mlp(1), 28), ("small", SMALL, 8)):
        c = compile_spec(model, roles, queries=queries, size=size)
        batches[name], meta = tasks_for(c, device), learner(c, device)
        fns[name] = (lambda meta=meta, batch=batches[name]: meta.meta_gradients(batch))
        fns[name]()  # the first call measures memory and imports: not part of a step
        if name == "real" and roles == MAML:
            maml = their_maml(meta, device)
            fns["learn2learn"] = lambda batch=batches[name]: l2l_gradients(maml, batch)
    counts = {name: _operators(fns[name]) for name in ("real", "small")}
    assert counts["real"] == counts["small"], "the two networks dispatch different operators"
    r = interleaved({name: (lambda fn=fn: [fn() for _ in range(CALLS)]) for name, fn in fns.items()},
                    device, rounds)
    real, small = r["real_s"] / CALLS * 1e3, r["small_s"] / CALLS * 1e3
    row = {"operators": sum(counts["real"].values()), "real ms": real, "small ms": small,
           "small/real": 1 / r["ratio:real/small"], "ceiling": real / (real - small)}
    if "learn2learn" in fns:
        theirs = r["learn2learn_s"] / CALLS * 1e3
        row |= {"learn2learn ms": theirs, "learn2learn/real": 1 / r["ratio:real/learn2learn"],
                "learn2learn/(real - small)": theirs / (real - small)}
    return row


def main() -> None:
    args, device = options(__doc__, 15)
    rows = []
    for case, (roles, queries) in CASES.items():
        rows.append({"case": case, **measure(roles, queries, device, args.rounds)})
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    path = write_result("fixed_cost", device, rows, rounds=args.rounds, small=SMALL)
    print(table(rows, list(rows[-1])))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
