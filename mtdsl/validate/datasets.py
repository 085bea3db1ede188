"""Dataset components a spec can name: `omniglot(split: "train", size: 28)`.

Each class is one dataset's spec-level settings; the loader that reads it is registered
in `mtdsl.data.registry` under the same `kind`, and receives every field but kind, split and
root as a keyword. `input_shape` and `task_kind` answer without loading anything, so
`mtdsl check` infers every shape. Names are identifiers: the papers' "CIFAR-FS" is
`cifar_fs`, "mini-ImageNet" is `mini_imagenet`. docs/datasets.md describes every dataset.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from .spec_base import Component, Fraction, PositiveInt, Strict

Split = Literal["train", "val", "test"]
Channels = Literal[1, 3]


class Omniglot(Strict):
    """Omniglot, Vinyals split 1028/172/423 characters, each rotation its own class.
    `channels: 3` repeats the gray channel, for a model built for RGB input."""

    kind: Literal["omniglot"]
    split: Split = "train"
    size: PositiveInt = 28
    rotations: list[Literal[0, 90, 180, 270]] = [0, 90, 180, 270]
    channels: Channels = 1
    download: bool = True
    root: str | None = None

    task_kind: ClassVar[str] = "classification"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, self.size, self.size)


class Sinusoid(Strict):
    """Sinusoid regression (paper Appendix C): y = A sin(x - phase)."""

    kind: Literal["sinusoid"]
    split: Split = "train"
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, 3.141592653589793)
    x_range: tuple[float, float] = (-5.0, 5.0)

    task_kind: ClassVar[str] = "regression"
    input_shape: ClassVar[tuple[int, ...]] = (1,)


class _Images(Strict):
    """What every image dataset takes. Images become `size` x `size` with `channels` channels
    (1: grayscale, 3: RGB). Without `resize` they are resized straight to size x size; with
    it, their shorter side goes to `resize` and the central size x size is kept."""

    split: Split = "train"
    size: PositiveInt
    resize: PositiveInt | None = None
    channels: Channels = 3
    root: str | None = None

    task_kind: ClassVar[str] = "classification"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, self.size, self.size)

    @model_validator(mode="after")
    def _crop_fits(self):
        if self.resize is not None and self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be at least size ({self.size}): the "
                             f"size x size centre crop is taken from the resized image")
        return self


class _Downloadable(_Images):
    """`download: false` (or $MTDSL_OFFLINE=1) makes missing files an error, never a download."""

    download: bool = True


class CifarFS(_Downloadable):
    """CIFAR-FS (Bertinetto et al. 2019): CIFAR-100 split 64/16/20 classes of 600 images.
    `verify: false` accepts CIFAR-100 files whose checksums differ from the published ones."""

    kind: Literal["cifar_fs"]
    size: PositiveInt = 32
    verify: bool = True


class FC100(_Downloadable):
    """FC100 (Oreshkin et al. 2018): CIFAR-100 split by superclass, 60/20/20 classes."""

    kind: Literal["fc100"]
    size: PositiveInt = 32
    verify: bool = True


class VggFlower(_Downloadable):
    """VGG Flowers 102, split 71/15/16 classes as Meta-Dataset and the Meta-ticket code split it."""

    kind: Literal["vgg_flower"]
    size: PositiveInt = 32
    verify: bool = True


class Aircraft(_Downloadable):
    """FGVC-Aircraft, 70/15/15 variants as the Meta-ticket paper splits them; photos cropped
    to their bounding boxes unless `boxes: false`."""

    kind: Literal["aircraft"]
    size: PositiveInt = 32
    boxes: bool = True


class Cars(_Images):
    """Stanford Cars, 98/49/49 classes as the Meta-ticket paper splits them; photos cropped
    to their bounding boxes unless `boxes: false`. Not downloadable: see docs/datasets.md."""

    kind: Literal["cars"]
    size: PositiveInt = 84
    boxes: bool = True


class Cub(_Downloadable):
    """CUB-200-2011 birds, 100/50/50 species (Hilliard et al.); by default the Meta-ticket
    code's preprocessing, shorter side to 126 then the centre 84 x 84."""

    kind: Literal["cub"]
    size: PositiveInt = 84
    resize: PositiveInt | None = 126


class MiniImagenet(_Downloadable):
    """mini-ImageNet (Vinyals et al.; Ravi & Larochelle split), 64/16/20 classes of 600."""

    kind: Literal["mini_imagenet"]
    size: PositiveInt = 84


class TieredImagenet(_Downloadable):
    """tiered-ImageNet (Ren et al. 2018), 351/97/160 classes."""

    kind: Literal["tiered_imagenet"]
    size: PositiveInt = 84


class Folder(_Images):
    """A user's images, one sub-folder per class: `folder("path/to/images")`.

    A relative `path` is looked up under the data root, then the working directory. The
    classes of each split come from `splits` (a folder of train/val/test .json or .txt lists)
    or, without it, from a random split by `fractions` (train, val, test) drawn with `seed`.
    """

    kind: Literal["folder"]
    path: str
    splits: str | None = None
    fractions: tuple[Fraction, Fraction, Fraction] = (0.64, 0.16, 0.20)
    seed: int = 0
    size: PositiveInt = 84

    @model_validator(mode="before")
    @classmethod
    def _positional_path(cls, data: Any) -> Any:
        """`folder("images")` is `folder(path: "images")`."""
        if isinstance(data, dict) and "__positional__" in data:
            data = dict(data)
            given = data.pop("__positional__")
            if len(given) != 1 or not isinstance(given[0], str):
                raise ValueError('folder takes one positional argument, the path: folder("path/to/images")')
            if "path" in data:
                raise ValueError("the path is given twice: positionally and as `path:`")
            data["path"] = given[0]
        return data

    @model_validator(mode="after")
    def _fractions(self):
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions (train, val, test) must sum to 1, not {sum(self.fractions):g}")
        return self


Dataset = Component(Omniglot, Sinusoid, CifarFS, FC100, VggFlower, Aircraft, Cars, Cub,
                    MiniImagenet, TieredImagenet, Folder)
