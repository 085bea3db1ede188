#!/usr/bin/env python3
"""Copy the small files of finished run folders into the folder docs/results.md cites
(docs/results/runs/NAME/seedN/), leaving the tensors (checkpoint.pt, final.pt) behind.

    .venv/bin/python scripts/collect-results.py SOURCE [DEST]    (DEST: docs/results/runs)

SOURCE holds NAME/seedN/ run folders (what scripts/repro-queue.sh writes); only finished
ones (with a result.json) are copied, and a copy is replaced when its source changed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SMALL = ("result.json", "resolved.json", "spec.mt", "spec.sha256", "metrics.jsonl")


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(sys.argv[1])
    dest = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent.parent / "docs/results/runs"
    copied = 0
    for result in sorted(source.glob("*/seed*/result.json")):
        run = result.parent
        target = dest / run.parent.name / run.name
        target.mkdir(parents=True, exist_ok=True)
        for name in SMALL:
            if (run / name).exists():
                shutil.copyfile(run / name, target / name)
        copied += 1
    print(f"{copied} finished runs copied to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
