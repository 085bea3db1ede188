"""Whole runs end to end: `mtdsl run specs/omniglot_mlp_ticket.mt --seed 1 --set
outer.iterations=N` from an earlier commit (a git worktree of it) against this checkout.
Each round starts both runs at the same moment, side by side, each a fresh single-threaded
process with the same environment: on a shared machine whose load changes by the minute,
runs one after the other see different machines, runs side by side the same one (each gets
one of two cores, or the same share of a busy machine). Reports each run's wall time, the
median ratio over rounds, and how the two result.json files compare.

This checkout's runs keep their compiled meta-gradients in a store of their own
($MTDSL_COMPILED), empty at the start: the first pair is a machine's first run of these
shapes, which compiles (with Inductor's own cache as this machine has it); the next pairs
load what it compiled, as every later run does. `--eager` adds pairs with
`device.compile=false`, the engine without compiling.

    .venv/bin/python benchmarks/bench_whole_run.py [--baseline 2049a95] [--iterations 1000] [--rounds 1] [--eager]

Writes benchmarks/results/whole_run.json (whole_run.N.json for N iterations other than 1000).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import ROOT, write_result

BASELINE = "2049a95"  # the engine before the stacked computation (vmap over tasks)
SPEC = "specs/omniglot_mlp_ticket.mt"


def worktree(commit: str) -> Path:
    """A checkout of `commit` beside this one (made once, kept for later runs)."""
    path = Path(tempfile.gettempdir()) / f"mtdsl-bench-{commit}"
    if not (path / "mtdsl").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
                       check=True, capture_output=True)
    return path


def side_by_side(codes: dict[str, tuple[Path, list[str]]], iterations: int,
                 threads: int, store: Path) -> dict[str, tuple[float, dict, str]]:
    """Start one run per checkout (with its own extra arguments) at once; each one's wall
    seconds, result.json and its line about compiling (empty if none)."""
    started, runs = {}, {}
    for which, (code, extra) in codes.items():
        out = Path(tempfile.mkdtemp(prefix="mtdsl-run-")) / "run"
        env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads),
               "COLUMNS": "200", "MTDSL_COMPILED": str(store),
               "MTDSL_DATA": os.environ.get("MTDSL_DATA", str(ROOT.parent / "shared" / "data"))}
        started[which] = time.perf_counter()
        log = (out.parent / "stdout").open("w+")
        runs[which] = (out, log, subprocess.Popen(
            [sys.executable, "-m", "mtdsl.cli.main", "run", SPEC, "--seed", "1", "--set",
             f"outer.iterations={iterations}", *extra, "--out", str(out)],
            cwd=code, env=env, stdout=log, stderr=subprocess.PIPE))
    done = {}
    while len(done) < len(runs):
        for which, (out, log, proc) in runs.items():
            if which not in done and proc.poll() is not None:
                seconds = time.perf_counter() - started[which]
                if proc.returncode != 0:
                    raise RuntimeError(f"the {which} run failed: {proc.stderr.read().decode()[-2000:]}")
                log.seek(0)
                said = next((line.strip() for line in log if "compiled" in line and "meta-gradient" in line), "")
                log.close()
                done[which] = (seconds, json.loads((out / "result.json").read_text()), said)
                shutil.rmtree(out.parent)
        time.sleep(0.5)
    return done


def compare_results(a: dict, b: dict) -> dict:
    """Test accuracy and sparsity of two result.json documents, and their largest gaps."""
    def test_means(r):
        return {k: v["mean"] for k, v in r["test"].items()}

    ta, tb = test_means(a), test_means(b)
    return {"test baseline": ta, "test new": tb,
            "test gap": max(abs(ta[k] - tb[k]) for k in ta),
            "test ci95": max(v["ci95"] for v in a["test"].values()),
            "sparsity gap": max(abs(a["sparsity"][k] - b["sparsity"][k]) for k in a["sparsity"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare against")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs side by side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        help="more overrides for both runs, PATH=VALUE")
    parser.add_argument("--eager", action="store_true",
                        help="also pairs with this checkout's `device.compile=false`")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the runs' thread count names the result file
    base = worktree(args.baseline)
    extra = [x for s in args.extra for x in ("--set", s)]
    modes = {"first run of these shapes": ([], 1), "as the spec says": ([], args.rounds)}
    if args.eager:
        modes["eager"] = (["--set", "device.compile=false"], args.rounds)
    store = Path(tempfile.mkdtemp(prefix="mtdsl-compiled-"))
    rows, times = [], {}
    for mode, (more, rounds) in modes.items():
        times[mode] = {"baseline": [], "new": []}
        results, said = {}, []
        for _ in range(rounds):
            done = side_by_side({"baseline": (base, extra), "new": (ROOT, extra + more)},
                                args.iterations, args.threads, store)
            for which, (seconds, results[which], line) in done.items():
                times[mode][which].append(seconds)
            said.append(done["new"][2])
            print(f"{mode}: baseline {times[mode]['baseline'][-1]:8.1f} s   "
                  f"new {times[mode]['new'][-1]:8.1f} s  {said[-1]}", flush=True)
        ratio = statistics.median(b / n for b, n in zip(times[mode]["baseline"], times[mode]["new"]))
        rows.append({"new runs": mode, "iterations": args.iterations,
                     "baseline s": statistics.median(times[mode]["baseline"]),
                     "new s": statistics.median(times[mode]["new"]), "baseline/new": ratio,
                     "compile": said, **compare_results(results["baseline"], results["new"])})
    shutil.rmtree(store)
    # The default length keeps the plain name; another is another result, not a replacement.
    name = "whole_run" if args.iterations == 1000 else f"whole_run.{args.iterations}"
    path = write_result(name, torch.device("cpu"), rows, baseline=args.baseline,
                        spec=SPEC, threads=args.threads, times=times,
                        overrides=args.extra)
    print(json.dumps(rows, indent=2))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
