"""N-way K-shot classification tasks drawn from an in-memory image tensor."""

from __future__ import annotations

import torch

from mtdsl.data.batch import TaskBatch
from mtdsl.errors import DataError


class ClassificationTasks:
    """Tasks from images uint8 [classes, images per class, channels, H, W].

    Each task draws `ways` distinct classes and `shots + queries` distinct images of each;
    the first `shots` are the support set, the rest the query set. Classes are drawn in a
    uniformly random order and label i goes to the i-th drawn, so labels are a fresh random
    permutation per task and say nothing about class identity. Items are grouped by label.

    Random numbers are drawn on the generator's device and only the indices move to the
    images' device, so a CPU generator gives the same tasks on any device while the gather
    itself runs where the images live.
    """

    kind = "classification"

    def __init__(self, images: torch.Tensor, ways: int, shots: int, queries: int, *,
                 name: str = "the dataset"):
        if images.dtype != torch.uint8 or images.dim() != 5:
            raise ValueError(f"images must be uint8 [classes, images, C, H, W], "
                             f"got {images.dtype} {tuple(images.shape)}")
        classes, per_class = images.shape[:2]
        if min(ways, shots, queries) < 1:
            raise DataError(f"tasks need ways, shots and queries of at least 1, "
                            f"got ways={ways}, shots={shots}, queries={queries}")
        if ways > classes:
            raise DataError(f"{ways}-way tasks need {ways} classes but {name} has {classes}")
        if shots + queries > per_class:
            raise DataError(f"shots + queries = {shots + queries} images per class, but {name} "
                            f"has only {per_class} images per class")
        self.images = images
        self.ways, self.shots, self.queries = ways, shots, queries
        self.name = name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[2:])

    @property
    def num_classes(self) -> int:
        return self.images.shape[0]

    def to(self, device) -> "ClassificationTasks":
        return ClassificationTasks(self.images.to(device), self.ways, self.shots, self.queries,
                                   name=self.name)

    def sample(self, n_tasks: int, generator: torch.Generator) -> TaskBatch:
        classes, per_class = self.images.shape[:2]
        n, k, q = self.ways, self.shots, self.queries
        # The positions of the largest of i.i.d. uniforms are a uniform draw without
        # replacement, ordered by value and so in uniformly random order. topk, not a full
        # sort: 10x faster for a thousand tasks over four thousand classes.
        draw = generator.device
        chosen = torch.rand(n_tasks, classes, generator=generator, device=draw).topk(n, dim=1).indices
        picks = torch.rand(n_tasks, n, per_class, generator=generator, device=draw).topk(k + q, dim=2).indices
        device = self.images.device
        chosen, picks = chosen.to(device), picks.to(device)
        x = self.images[chosen.unsqueeze(-1), picks].float().div_(255)  # [T, N, K+Q, C, H, W]
        labels = torch.arange(n, device=device).view(1, n, 1)

        def flat(part: torch.Tensor) -> torch.Tensor:
            return part.reshape(n_tasks, -1, *part.shape[3:])

        return TaskBatch(flat(x[:, :, :k]), flat(labels.expand(n_tasks, n, k)),
                         flat(x[:, :, k:]), flat(labels.expand(n_tasks, n, q)))
