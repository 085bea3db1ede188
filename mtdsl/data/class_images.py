"""A split's images grouped by class, classes of any size: the form every image dataset is
decoded into, cached in and sampled from."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClassImages:
    """images uint8 [total, C, H, W]; class c holds images[offsets[c]:offsets[c + 1]].

    One flat tensor and offsets rather than one tensor per class: Flowers, CUB and the
    ImageNet subsets have classes of different sizes, and one tensor caches, memory-maps and
    moves to a device as one piece.
    """

    images: torch.Tensor
    offsets: torch.Tensor  # int64 [classes + 1], offsets[0] == 0, offsets[-1] == total
    classes: list[str]

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 [total, C, H, W], got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.offsets.dim() != 1 or len(self.offsets) != len(self.classes) + 1:
            raise ValueError(f"{len(self.classes)} classes need {len(self.classes) + 1} offsets, "
                             f"got {tuple(self.offsets.shape)}")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.images):
            raise ValueError("offsets must run from 0 to the number of images")

    @staticmethod
    def from_counts(images: torch.Tensor, counts: list[int], classes: list[str]) -> "ClassImages":
        offsets = torch.zeros(len(counts) + 1, dtype=torch.int64)
        offsets[1:] = torch.tensor(counts, dtype=torch.int64).cumsum(0)
        return ClassImages(images, offsets, list(classes))

    @property
    def counts(self) -> torch.Tensor:
        return self.offsets.diff()

    def state(self) -> dict:
        """What the cache stores: plain tensors and strings, so torch.load(weights_only=True)
        reads it back."""
        return {"images": self.images, "offsets": self.offsets, "classes": self.classes}

    @staticmethod
    def from_state(state: dict) -> "ClassImages":
        return ClassImages(state["images"], state["offsets"], list(state["classes"]))
