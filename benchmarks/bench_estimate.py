"""How close `mtdsl run SPEC --estimate` comes to the run: the projected wall time against a
real run's wall_seconds, interleaved (estimate, run, estimate, run, ...) because this
machine's load varies from minute to minute, and the median ratio reported.

    .venv/bin/python benchmarks/bench_estimate.py                       # Omniglot MLP, 1000 iterations
    .venv/bin/python benchmarks/bench_estimate.py --rounds 3 --iterations 300 \\
        --spec specs/omniglot_mlp_maml.mt

Each estimate and each run is a fresh `mtdsl` process, as a user would start them. Not a
test: it asserts nothing. A ratio above 1 means the estimate was too high.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECTED = re.compile(r"projected wall time: .*?\(([\d.]+) s\)")


def mtdsl(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "mtdsl.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "MTDSL_DATA": os.environ.get("MTDSL_DATA", str(ROOT / "../shared/data"))})
    if done.returncode:
        sys.exit(done.stderr)
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "omniglot_mlp_ticket.mt"))
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    common = [args.spec, "--seed", "1", "--set", f"outer.iterations={args.iterations}"]
    ratios = []
    print(f"{'round':>5} {'projected s':>12} {'at start s':>11} {'run s':>8} {'ratio':>7}")
    for i in range(args.rounds):
        projected = float(PROJECTED.search(mtdsl("run", *common, "--estimate")).group(1))
        with tempfile.TemporaryDirectory() as folder:
            out = mtdsl("run", *common, "--out", f"{folder}/run")
            wall = json.loads(Path(folder, "run", "result.json").read_text())["wall_seconds"]
        at_start = PROJECTED.search(out)
        ratios.append(projected / wall)
        print(f"{i + 1:>5} {projected:>12.1f} {float(at_start.group(1)) if at_start else float('nan'):>11.1f} "
              f"{wall:>8.1f} {ratios[-1]:>7.3f}")
    print(f"median ratio projected / measured: {statistics.median(ratios):.3f} "
          f"({Path(args.spec).name}, {args.iterations} iterations, {args.rounds} rounds)")


if __name__ == "__main__":
    main()
