"""N-way K-shot classification tasks drawn from in-memory images, classes of any size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mtdsl.data.batch import TaskBatch
from mtdsl.errors import DataError


@dataclass(frozen=True)
class PixelMap:
    """What happens to pixels after the division by 255: `invert` maps x to 1 - x, then
    (x - mean) / std, with one value or one per channel."""

    invert: bool = False
    mean: float | Sequence[float] = 0.0
    std: float | Sequence[float] = 1.0

    @property
    def identity(self) -> bool:
        return not self.invert and self._values(self.mean) == [0.0] and self._values(self.std) == [1.0]

    @staticmethod
    def _values(v) -> list[float]:
        values = [float(x) for x in (v if isinstance(v, Sequence) else [v])]
        return values[:1] if len(set(values)) == 1 else values

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., C, H, W] in [0, 1], changed in place."""
        if self.invert:
            x.neg_().add_(1.0)
        shape = (-1, 1, 1)
        mean = torch.tensor(self._values(self.mean), dtype=x.dtype, device=x.device).view(shape)
        std = torch.tensor(self._values(self.std), dtype=x.dtype, device=x.device).view(shape)
        return x.sub_(mean).div_(std)


class ClassificationTasks:
    """Tasks from images uint8 [classes, images per class, C, H, W], or, for classes of
    different sizes, from images uint8 [total, C, H, W] with `offsets` int64 [classes + 1]
    (class c holds images[offsets[c]:offsets[c + 1]], as in ClassImages).

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
                 offsets: torch.Tensor | None = None, name: str = "the dataset",
                 classes: list[str] | None = None, pixels: PixelMap | None = None,
                 hint: str = ""):
        if offsets is None:
            if images.dtype != torch.uint8 or images.dim() != 5:
                raise ValueError(f"images must be uint8 [classes, images, C, H, W], "
                                 f"got {images.dtype} {tuple(images.shape)}")
            count, per_class = images.shape[:2]
            offsets = torch.arange(count + 1, dtype=torch.int64) * per_class
            images = images.flatten(0, 1)
        elif images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images with offsets must be uint8 [total, C, H, W], "
                             f"got {images.dtype} {tuple(images.shape)}")
        if min(ways, shots, queries) < 1:
            raise DataError(f"tasks need ways, shots and queries of at least 1, "
                            f"got ways={ways}, shots={shots}, queries={queries}")
        offsets = offsets.to("cpu", torch.int64)
        counts = offsets.diff()
        if ways > len(counts):
            raise DataError(f"{ways}-way tasks need {ways} classes but {name} has {len(counts)}: "
                            f"lower the ways (`mtdsl test --ways`), or use a split with more "
                            f"classes{hint}")
        smallest = int(counts.argmin()) if len(counts) else 0
        if shots + queries > counts[smallest]:
            which = f" ({classes[smallest]})" if classes else ""
            uniform = bool((counts == counts[smallest]).all())
            has = (f"only {int(counts[smallest])} images per class" if uniform else
                   f"a class{which} with only {int(counts[smallest])} images")
            raise DataError(f"shots + queries = {shots + queries} images per class, but {name} "
                            f"has {has}: lower the shots or queries (`mtdsl test --shots`, "
                            f"`--queries`)")
        self.images = images
        self.offsets = offsets
        self.ways, self.shots, self.queries = ways, shots, queries
        self.name, self.classes = name, classes
        self.pixels = None if pixels is None or pixels.identity else pixels
        self.hint = hint
        self._counts = counts
        self._largest = int(counts.max())
        # All classes alike (Omniglot, CIFAR, mini-ImageNet): no masking, and the same draws
        # as a dense [classes, per_class] tensor would give.
        self._uniform = bool((counts == self._largest).all())

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self._counts)

    def to(self, device) -> "ClassificationTasks":
        return ClassificationTasks(self.images.to(device), self.ways, self.shots, self.queries,
                                   offsets=self.offsets, name=self.name, classes=self.classes,
                                   pixels=self.pixels, hint=self.hint)

    def sample(self, n_tasks: int, generator: torch.Generator) -> TaskBatch:
        n, k, q = self.ways, self.shots, self.queries
        # The positions of the largest of i.i.d. uniforms are a uniform draw without
        # replacement, ordered by value and so in uniformly random order. topk, not a full
        # sort: 10x faster for a thousand tasks over four thousand classes.
        draw = generator.device
        chosen = torch.rand(n_tasks, self.num_classes, generator=generator, device=draw).topk(n, dim=1).indices
        keys = torch.rand(n_tasks, n, self._largest, generator=generator, device=draw)
        if not self._uniform:
            # A smaller class's positions past its end can never win: every class has at
            # least k + q real positions, whose keys are all >= 0 > -1.
            counts = self._counts.to(draw)[chosen]
            keys.masked_fill_(torch.arange(self._largest, device=draw) >= counts.unsqueeze(-1), -1.0)
        picks = keys.topk(k + q, dim=2).indices
        index = self.offsets.to(draw)[chosen].unsqueeze(-1) + picks  # [T, N, K+Q] into images
        device = self.images.device
        x = self.images[index.to(device)].float().div_(255)  # [T, N, K+Q, C, H, W]
        if self.pixels is not None:
            x = self.pixels(x)
        labels = torch.arange(n, device=device).view(1, n, 1)

        def flat(part: torch.Tensor) -> torch.Tensor:
            return part.reshape(n_tasks, -1, *part.shape[3:])

        return TaskBatch(flat(x[:, :, :k]), flat(labels.expand(n_tasks, n, k)),
                         flat(x[:, :, k:]), flat(labels.expand(n_tasks, n, q)))
