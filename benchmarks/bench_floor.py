"""Floor ratios: one meta-step (meta-gradients and the outer step) against the hardware
floor, a plain first-order forward and backward of the same network over the same examples
(benchmarks.common.floor_step). Both the stacked engine (the default) and the eager one
(per-task function under vmap, or one task at a time) are timed, interleaved with the floor,
and for the MLPs at meta-batch 4 the stacked meta-gradient compiled (engine.compiled).

    .venv/bin/python benchmarks/bench_floor.py [--rounds 5] [--quick]

Writes benchmarks/results/floor.json. Not a test: it asserts nothing.
"""

from __future__ import annotations

from common import (MAML, TICKET, TICKET_NO_BIAS, compile_seconds, compile_spec, floor_step,
                    interleaved, learner, omniglot_mlp, options, table, tasks_for, write_result)

# name: (compile_spec arguments, rounds divisor for heavy cases)
CASES = {
    **{f"omniglot mlp w{w} ticket mb{t}": (dict(model=omniglot_mlp(w), roles=TICKET, tasks=t), 1)
       for w in (1, 4) for t in (4, 32)},
    **{f"omniglot mlp w{w} maml mb{t}": (dict(model=omniglot_mlp(w), roles=MAML, tasks=t), 1)
       for w in (1, 4) for t in (4, 32)},
    "conv4 28px 1-shot ticket mb4": (dict(model="conv4(classes: 5)", roles=TICKET, shots=1,
                                          queries=5), 2),
    "conv4 32ch 84px 1-shot ticket mb4": (dict(model="conv4(hidden: 32, classes: 5)", roles=TICKET,
                                               size=84, channels=3, shots=1, queries=5), 2),
    "resnet12 16-64ch 84px 1-shot ticket mb4": (dict(
        model="resnet12(channels: [16, 32, 32, 64], classes: 5)", roles=TICKET_NO_BIAS, size=84,
        channels=3, shots=1, queries=5), 2),
}
QUICK = ("omniglot mlp w1 ticket mb4", "omniglot mlp w1 maml mb4")
# The cases timed compiled too (engine.compiled), at one thread: the MLPs at the paper's
# meta-batch, where the targets were set.
COMPILED = ("omniglot mlp w1 ticket mb4", "omniglot mlp w4 ticket mb4", "omniglot mlp w1 maml mb4",
            "omniglot mlp w4 maml mb4")


def main() -> None:
    args, device = options(__doc__, 5, lambda parser: parser.add_argument(
        "--quick", action="store_true", help="only the meta-batch-4 MLP cases"))
    rows = []
    for name, (spec, divisor) in CASES.items():
        if args.quick and name not in QUICK:
            continue
        c = compile_spec(**spec)
        batch = tasks_for(c, device)
        stacked, eager = learner(c, device), learner(c, device, stacked=False)
        fns = {"floor": floor_step(c, batch, device),
               "stacked": lambda: stacked.meta_step(batch),
               "eager": lambda: eager.meta_step(batch)}
        compiled = (learner(c, device, compiled=True)
                    if name in COMPILED and not args.quick else None)
        if compiled is not None:
            fns["compiled"] = lambda: compiled.meta_step(batch)
        r = interleaved(fns, device, max(3, args.rounds // divisor))
        row = {"case": name, "floor ms": r["floor_s"] * 1e3, "stacked ms": r["stacked_s"] * 1e3,
               "eager ms": r["eager_s"] * 1e3, "stacked/floor": 1 / r["ratio:floor/stacked"],
               "eager/floor": 1 / r["ratio:floor/eager"], "how": stacked.execution(batch)}
        if compiled is not None:
            row.update({"compiled ms": r["compiled_s"] * 1e3,
                        "compiled/floor": 1 / r["ratio:floor/compiled"],
                        "compile s": compile_seconds(compiled)})
        rows.append(row)
        print(table([row], list(row)).splitlines()[-1], flush=True)
        path = write_result("floor", device, rows, rounds=args.rounds)  # after every case
    print(table(rows, ["case", "floor ms", "stacked ms", "eager ms", "compiled ms", "stacked/floor",
                       "eager/floor", "compiled/floor"]))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
