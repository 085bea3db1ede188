"""Where a run's records go besides the terminal: metrics.jsonl first, experiment trackers
beside it. The recipe calls every sink of its list, on the main rank only; a sink overrides
the calls it cares about.

  start(resolved, folder)   once, with resolved.json's document (fresh or resumed run)
  record(record)            every metrics record: training steps and validation lines
  flush()                   before each checkpoint is written: what was recorded so far is
                            made durable, so no checkpoint covers steps a sink could lose
  artifact(path)            each finished file: checkpoint.pt after it is saved, final.pt,
                            result.json
  finish(result)            the run's result.json document
  close()                   always last, also when the run fails or is interrupted
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..report.rundir import RunDir


class Sink:
    def start(self, resolved: dict, folder: Path) -> None:
        pass

    def record(self, record: dict[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def artifact(self, path: Path) -> None:
        pass

    def finish(self, result: dict) -> None:
        pass

    def close(self) -> None:
        pass


class MetricsFile(Sink):
    """metrics.jsonl in the run folder."""

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir

    def record(self, record: dict[str, Any]) -> None:
        self.run_dir.append_metrics(record)

    def close(self) -> None:
        self.run_dir.close()


def open_sinks(experiment, run_dir: RunDir) -> list[Sink]:
    """The sinks a run's spec asks for (`experiment`: the validated spec.Experiment);
    metrics.jsonl always."""
    return [MetricsFile(run_dir)]
