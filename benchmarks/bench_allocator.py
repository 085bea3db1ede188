"""glibc keeping freed memory (engine.allocator) against its defaults, switched at run time
in one process and interleaved: meta-test evaluation of 25 tasks x 3 steps and one
meta-step of 4 tasks, Omniglot MLP Meta-ticket.

    .venv/bin/python benchmarks/bench_allocator.py [--rounds 7]

Writes benchmarks/results/allocator.json. A ratio above 1 means keeping memory is faster.
"""

from __future__ import annotations

import argparse

import torch

from common import (TICKET, compile_spec, interleaved, learner, omniglot_mlp, set_threads, table,
                    tasks_for, write_result)
from mtdsl.engine.allocator import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    set_threads(args.threads)
    device = torch.device("cpu")
    if not keep_freed_memory():
        print("no glibc here: nothing to compare")
        return
    evaluation = compile_spec(omniglot_mlp(1), TICKET, tasks=25, queries=5)
    training = compile_spec(omniglot_mlp(1), TICKET, tasks=4)
    test, batch = tasks_for(evaluation, device, seed=1), tasks_for(training, device)
    evaluator, trainer = learner(evaluation, device), learner(training, device)
    evaluator.eval_chunk = 25
    cases = {"evaluation, 25 tasks x 3 steps": lambda: evaluator.evaluate(test, steps=3),
             "meta-step, 4 tasks": lambda: trainer.meta_step(batch)}
    rows = []
    for name, fn in cases.items():
        def under(keep, fn=fn):
            return lambda: (keep_freed_memory(keep), fn())
        r = interleaved({"default": under(False), "kept": under(True)}, device, args.rounds)
        rows.append({"case": name, "glibc defaults ms": r["default_s"] * 1e3,
                     "memory kept ms": r["kept_s"] * 1e3, "defaults/kept": r["ratio:default/kept"]})
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    keep_freed_memory()
    path = write_result("allocator", device, rows, rounds=args.rounds)
    print(table(rows, list(rows[0])))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
