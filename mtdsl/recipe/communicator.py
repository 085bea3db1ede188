"""How the processes of one run talk: one process, or the ranks of torch.distributed.

The recipe is written once against this interface; a single process is the case where
every collective is the identity. Every rank draws the same tasks from the same generators
and computes its share of them, so the numbers do not depend on how many ranks there are.
"""

from __future__ import annotations

from typing import Any, Callable


class SingleProcess:
    rank = 0
    world_size = 1
    backend = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> slice:
        """Which of n items (tasks of a meta-batch, validation or test tasks) this rank computes."""
        return slice(0, n)

    def sum(self, values: dict) -> dict:
        """Element-wise sums over ranks of a dict of tensors."""
        return values

    def gather(self, values: list[float]) -> list[float]:
        """Every rank's list, concatenated in rank order (so in the order of `share`)."""
        return values

    def on_main(self, work: Callable[[], Any]) -> Any:
        """`work()` run on the main rank alone; its value (or its error) on every rank."""
        return work()

    def describe(self) -> dict:
        """For resolved.json."""
        return {"world_size": self.world_size, "backend": self.backend}
