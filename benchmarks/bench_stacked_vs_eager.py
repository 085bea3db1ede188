"""The stacked engine (the meta-batch as one computation written out from the compiled
graph, engine.stacked) against the eager one (the per-task function under torch.func.vmap,
or one task at a time with plain autograd), on the paper's networks and methods: one
meta-gradient of a meta-batch of 4, and meta-test evaluation (100 tasks, 25 for conv4; 3
inner steps, 25 tasks at a time, as a run evaluates 1000 tasks). For the MLPs, the stacked
meta-gradient compiled (engine.compiled) too; conv nets are not compiled here (a first
compile of the full conv4 takes minutes on this CPU, and `compile: auto` leaves them eager).

    .venv/bin/python benchmarks/bench_stacked_vs_eager.py [--rounds 7]

Writes benchmarks/results/stacked_vs_eager.json. A ratio above 1 means stacked is faster.
"""

from __future__ import annotations

from common import (MAML, TICKET, compile_seconds, compile_spec, interleaved, learner,
                    omniglot_mlp, options, table, tasks_for, write_result)

ANIL = dict(roles=MAML, inner_lr='0, lr["head.**"]: 0.4')
CASES = {
    "omniglot mlp ticket": dict(model=omniglot_mlp(1), roles=TICKET),
    "omniglot mlp maml": dict(model=omniglot_mlp(1), roles=MAML),
    "omniglot mlp anil": dict(model=omniglot_mlp(1), **ANIL),
    "omniglot conv4 ticket": dict(model="conv4(classes: 5)", roles=TICKET),
    "omniglot conv4 maml": dict(model="conv4(classes: 5)", roles=MAML),
}


def main() -> None:
    args, device = options(__doc__, 7)
    rows = []
    for name, spec in CASES.items():
        c = compile_spec(**spec)
        batch = tasks_for(c, device)
        stacked, eager = learner(c, device), learner(c, device, stacked=False)
        fns = {"eager": lambda: eager.meta_gradients(batch),
               "stacked": lambda: stacked.meta_gradients(batch)}
        compiled = learner(c, device, compiled=True) if "conv" not in name else None
        if compiled is not None:
            fns["compiled"] = lambda: compiled.meta_gradients(batch)
        r = interleaved(fns, device, args.rounds)
        rows.append({"case": name, "what": "meta-gradient, 4 tasks", "eager ms": r["eager_s"] * 1e3,
                     "stacked ms": r["stacked_s"] * 1e3, "eager/stacked": r["ratio:eager/stacked"],
                     "eager runs": eager.execution(batch)})
        if compiled is not None:
            rows[-1].update({"compiled ms": r["compiled_s"] * 1e3,
                             "eager/compiled": r["ratio:eager/compiled"],
                             "stacked/compiled": r["stacked_s"] / r["compiled_s"],
                             "compile s": compile_seconds(compiled)})
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
        # conv4 evaluates at about 140 ms a task here: 25 tasks keep `make bench` short.
        test = tasks_for(compile_spec(**spec, tasks=25 if "conv" in name else 100), device, seed=1)
        for one in (stacked, eager):
            one.eval_chunk = 25
        r = interleaved({"eager": lambda: eager.evaluate(test, steps=3),
                         "stacked": lambda: stacked.evaluate(test, steps=3)},
                        device, max(3, args.rounds // 2))
        rows.append({"case": name, "what": f"evaluation, {test.tasks} tasks x 3 steps",
                     "eager ms": r["eager_s"] * 1e3, "stacked ms": r["stacked_s"] * 1e3,
                     "eager/stacked": r["ratio:eager/stacked"],
                     "eager runs": f"{eager.tasks_at_once(test, training=False)} tasks at a time"})
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    path = write_result("stacked_vs_eager", device, rows, rounds=args.rounds)
    print(table(rows, ["case", "what", "eager ms", "stacked ms", "eager/stacked", "compiled ms",
                       "eager/compiled", "stacked/compiled"]))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
