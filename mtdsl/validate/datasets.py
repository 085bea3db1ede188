"""Dataset components a spec can name: `omniglot(split: "train", size: 28)`.

Each class is one dataset's spec-level settings; the loader that reads it is registered
in `mtdsl.data.registry` under the same `kind`. `input_shape` and `task_kind` answer
without loading anything, so `mtdsl check` infers every shape.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from .spec_base import Component, PositiveInt, Strict

Split = Literal["train", "val", "test"]


class Omniglot(Strict):
    """Omniglot, Vinyals split 1028/172/423 characters, each rotation its own class."""

    kind: Literal["omniglot"]
    split: Split = "train"
    size: PositiveInt = 28
    rotations: list[Literal[0, 90, 180, 270]] = [0, 90, 180, 270]
    root: str | None = None

    task_kind: ClassVar[str] = "classification"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, self.size, self.size)


class Sinusoid(Strict):
    """Sinusoid regression (paper Appendix C): y = A sin(x - phase)."""

    kind: Literal["sinusoid"]
    split: Split = "train"
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, 3.141592653589793)
    x_range: tuple[float, float] = (-5.0, 5.0)

    task_kind: ClassVar[str] = "regression"
    input_shape: ClassVar[tuple[int, ...]] = (1,)


Dataset = Component(Omniglot, Sinusoid)


