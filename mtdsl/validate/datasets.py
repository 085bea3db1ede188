"""Dataset components a spec can name: `omniglot(split: "train", size: 28)`.

Each class is the one declaration of a dataset: its fields are the options a spec may set
(with their defaults), `facts` says what is known without the data (splits, class counts,
images per class, where the files go and how big they are, the pixel convention) and which
loader reads it. `mtdsl.data.registry` opens a dataset from its component alone, so adding a
dataset is one class here plus the loader that reads its files. Names are identifiers: the
papers' "CIFAR-FS" is `cifar_fs`, "mini-ImageNet" is `mini_imagenet`. docs/datasets.md
describes every dataset.

A dataset written without `split` takes the one its place implies: `data.train` its train
split, `data.valid` its val split, `data.test` its test split (see `Data` in spec.py), except
that a `folder()` being meta-tested is used whole unless it is also the training folder.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from mtdsl.data.facts import UNIT_RANGE, Facts, Files

from .spec_base import Component, Fraction, PositiveInt, Strict

Split = Literal["train", "val", "test"]
Channels = Literal[1, 3]


class _Declared(Strict):
    """What every dataset answers without loading anything."""

    facts: ClassVar[Facts]

    @property
    def task_kind(self) -> str:
        return self.facts.task

    def class_count(self, split: str) -> int | None:
        """Classes in `split`, None where only the files can tell."""
        return None if self.facts.classes is None else self.facts.classes.get(split)

    @property
    def images_per_class(self) -> int | None:
        return self.facts.images_per_class

    @property
    def label(self) -> str:
        """How results name this dataset: `omniglot/test`, plus every option that changes
        the data from its default, so two datasets never share a name:
        `omniglot(channels=3)/test`, `folder(path=glyphs, size=28, channels=1)/all`."""
        shown = []
        fields = type(self).model_fields.items()
        for name, field in sorted(fields, key=lambda item: not item[1].is_required()):
            if name in _NOT_IN_LABEL:
                continue
            value = getattr(self, name)
            if field.is_required() or value != field.default:
                shown.append(f"{name}={_label_value(value)}")
        return f"{self.kind}({', '.join(shown)})/{self.split}" if shown else f"{self.kind}/{self.split}"


# Where the files are and how they were fetched or checked do not change the data.
_NOT_IN_LABEL = ("kind", "split", "root", "download", "verify")


def _label_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_label_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class Omniglot(_Declared):
    """Omniglot, Vinyals split 1028/172/423 characters, each rotation its own class.
    `channels: 3` repeats the gray channel, for a model built for RGB input."""

    kind: Literal["omniglot"]
    split: Split = "train"
    size: PositiveInt = 28
    rotations: list[Literal[0, 90, 180, 270]] = [0, 90, 180, 270]
    channels: Channels = 1
    download: bool = True
    root: str | None = None

    facts: ClassVar[Facts] = Facts(
        title="Omniglot", task="classification", loader="omniglot:open_omniglot",
        classes={"train": 1028, "val": 172, "test": 423},  # characters; times the rotations
        images_per_class=20,
        files=Files(layout="<root>/omniglot/omniglot-py/images_background/<Alphabet>/characterNN/"
                           "*.png and images_evaluation/ likewise: the official "
                           "images_background.zip and images_evaluation.zip unpacked, 20 PNGs "
                           "per character (<root>/omniglot-py/ works too)",
                    size="16 MB (images_background.zip 9.5 MB, images_evaluation.zip 6.5 MB)",
                    obtain="allow downloads (torchvision fetches both zips), or download them "
                           "from https://github.com/brendenlake/omniglot/tree/master/python and "
                           "unpack them into <root>/omniglot/omniglot-py."),
        pixels="grayscale as PIL reads the PNGs: white background 255, ink 0; divided by 255, "
               "so background 1.0 and ink 0.0, no normalisation")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, self.size, self.size)

    def class_count(self, split: str) -> int | None:
        characters = super().class_count(split)
        return None if characters is None else characters * len(self.rotations)

    @model_validator(mode="after")
    def _distinct_rotations(self):
        if not self.rotations or len(set(self.rotations)) != len(self.rotations):
            raise ValueError(f"rotations must be distinct values among 0, 90, 180, 270, "
                             f"not {self.rotations}")
        return self


class Sinusoid(_Declared):
    """Sinusoid regression (paper Appendix C): y = A sin(x - phase)."""

    kind: Literal["sinusoid"]
    split: Split = "train"
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, 3.141592653589793)
    x_range: tuple[float, float] = (-5.0, 5.0)

    facts: ClassVar[Facts] = Facts(
        title="sinusoid", task="regression", loader="sinusoid:open_sinusoid",
        pixels="1-d points x drawn uniformly from x_range; targets A sin(x - phase), unscaled")
    input_shape: ClassVar[tuple[int, ...]] = (1,)


class _Images(_Declared):
    """What every image dataset takes. Images become `size` x `size` with `channels` channels
    (1: grayscale, 3: RGB). Without `resize` they are resized straight to size x size; with
    it, their shorter side goes to `resize` and the central size x size is kept."""

    split: Split = "train"
    size: PositiveInt
    resize: PositiveInt | None = None
    channels: Channels = 3
    root: str | None = None

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


CIFAR100 = Files(
    layout="<root>/cifar100/cifar-100-python/{train,test,meta}: the python version of CIFAR-100 "
           "unpacked, as torchvision.datasets.CIFAR100(root='<root>/cifar100', download=True) "
           "leaves it (<root>/cifar-100-python/ works too)",
    size="161 MB (cifar-100-python.tar.gz)",
    obtain="allow downloads (torchvision fetches it), or download "
           "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and unpack it into "
           "<root>/cifar100.")


class CifarFS(_Downloadable):
    """CIFAR-FS (Bertinetto et al. 2019): CIFAR-100 split 64/16/20 classes of 600 images.
    `verify: false` accepts CIFAR-100 files whose checksums differ from the published ones."""

    kind: Literal["cifar_fs"]
    size: PositiveInt = 32
    verify: bool = True

    facts: ClassVar[Facts] = Facts(
        title="CIFAR-FS", task="classification", loader="cifar:open_cifar_fs",
        classes={"train": 64, "val": 16, "test": 20}, images_per_class=600, files=CIFAR100,
        pixels="RGB, " + UNIT_RANGE)


class FC100(_Downloadable):
    """FC100 (Oreshkin et al. 2018): CIFAR-100 split by superclass, 60/20/20 classes."""

    kind: Literal["fc100"]
    size: PositiveInt = 32
    verify: bool = True

    facts: ClassVar[Facts] = Facts(
        title="FC100", task="classification", loader="cifar:open_fc100",
        classes={"train": 60, "val": 20, "test": 20}, images_per_class=600, files=CIFAR100,
        pixels="RGB, " + UNIT_RANGE)


class VggFlower(_Downloadable):
    """VGG Flowers 102, split 71/15/16 classes as Meta-Dataset and the Meta-ticket code split it."""

    kind: Literal["vgg_flower"]
    size: PositiveInt = 32
    verify: bool = True

    facts: ClassVar[Facts] = Facts(
        title="VGG Flowers 102", task="classification", loader="flowers:open_vgg_flower",
        classes={"train": 71, "val": 15, "test": 16},  # 40 to 258 photos per class
        files=Files(
            layout="<root>/flowers-102/{jpg/image_00001.jpg ... image_08189.jpg, "
                   "imagelabels.mat}, as torchvision.datasets.Flowers102(root='<root>', "
                   "download=True) leaves it (<root>/vgg_flower102/ as learn2learn leaves it, "
                   "or <root>/vgg_flower/, work too)",
            size="330 MB (102flowers.tgz and imagelabels.mat)",
            obtain="allow downloads (torchvision fetches it), or download 102flowers.tgz and "
                   "imagelabels.mat from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ "
                   "and unpack them into <root>/flowers-102."),
        pixels="RGB photos, " + UNIT_RANGE)


class Aircraft(_Downloadable):
    """FGVC-Aircraft, 70/15/15 variants as the Meta-ticket paper splits them; photos cropped
    to their bounding boxes unless `boxes: false`."""

    kind: Literal["aircraft"]
    size: PositiveInt = 32
    boxes: bool = True

    facts: ClassVar[Facts] = Facts(
        title="FGVC-Aircraft", task="classification", loader="aircraft:open_aircraft",
        classes={"train": 70, "val": 15, "test": 15}, images_per_class=100,
        files=Files(
            layout="<root>/fgvc-aircraft-2013b/data/{images/*.jpg, images_variant_trainval.txt, "
                   "images_variant_test.txt, images_box.txt}: the archive "
                   "fgvc-aircraft-2013b.tar.gz unpacked, as torchvision.datasets.FGVCAircraft"
                   "(root='<root>', download=True) leaves it (<root>/fgvc_aircraft/"
                   "fgvc-aircraft-2013b/ as learn2learn leaves it, or <root>/aircraft/"
                   "fgvc-aircraft-2013b/, work too)",
            size="2.6 GB (fgvc-aircraft-2013b.tar.gz)",
            obtain="allow downloads (torchvision fetches it), or download https://www.robots."
                   "ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz and "
                   "unpack it into <root>."),
        pixels="RGB photos cropped to their boxes (with `boxes: true`), " + UNIT_RANGE)


class Cars(_Images):
    """Stanford Cars, 98/49/49 classes as the Meta-ticket paper splits them; photos cropped
    to their bounding boxes unless `boxes: false`. Not downloadable: see docs/datasets.md."""

    kind: Literal["cars"]
    size: PositiveInt = 84
    boxes: bool = True

    facts: ClassVar[Facts] = Facts(
        title="Stanford Cars", task="classification", loader="cars:open_cars",
        classes={"train": 98, "val": 49, "test": 49},  # a few dozen photos per class
        files=Files(
            layout="<root>/stanford_cars/{devkit/cars_meta.mat, devkit/cars_train_annos.mat, "
                   "cars_train/00001.jpg ...}: car_devkit.tgz and cars_train.tgz unpacked, the "
                   "layout torchvision.datasets.StanfordCars reads (<root>/cars/ works too)",
            size="about 1 GB (cars_train.tgz; car_devkit.tgz is under 1 MB)",
            obtain="download it yourself: the original Stanford URLs are gone and "
                   "torchvision's StanfordCars download is disabled upstream. Find a mirror of "
                   "the original release (car_devkit.tgz and cars_train.tgz, e.g. on Kaggle or "
                   "Hugging Face) and unpack both into <root>/stanford_cars."),
        pixels="RGB photos cropped to their boxes (with `boxes: true`), " + UNIT_RANGE)


class Cub(_Downloadable):
    """CUB-200-2011 birds, 100/50/50 species (Hilliard et al.); by default the Meta-ticket
    code's preprocessing, shorter side to 126 then the centre 84 x 84."""

    kind: Literal["cub"]
    size: PositiveInt = 84
    resize: PositiveInt | None = 126

    facts: ClassVar[Facts] = Facts(
        title="CUB-200-2011", task="classification", loader="cub:open_cub",
        classes={"train": 100, "val": 50, "test": 50},  # 41 to 60 photos per species
        files=Files(
            layout="<root>/cubirds200/CUB_200_2011/images/<NNN.Species>/*.jpg (with "
                   "CUB_200_2011/images.txt), CUB_200_2011.tgz unpacked as learn2learn.vision."
                   "datasets.CUBirds200(root='<root>', download=True) leaves it (<root>/cub/"
                   "CUB_200_2011/ or <root>/CUB_200_2011/ work too)",
            size="1.1 GB (CUB_200_2011.tgz)",
            obtain="allow downloads (learn2learn fetches it; pip install learn2learn), or "
                   "download CUB_200_2011.tgz from https://data.caltech.edu/records/65de6-vp158 "
                   "and unpack it into <root>/cubirds200."),
        pixels="RGB photos, shorter side to `resize`, centre crop; " + UNIT_RANGE)


class MiniImagenet(_Downloadable):
    """mini-ImageNet (Vinyals et al.; Ravi & Larochelle split), 64/16/20 classes of 600."""

    kind: Literal["mini_imagenet"]
    size: PositiveInt = 84

    facts: ClassVar[Facts] = Facts(
        title="mini-ImageNet", task="classification", loader="imagenet:open_mini_imagenet",
        classes={"train": 64, "val": 16, "test": 20}, images_per_class=600,
        files=Files(
            layout="<root>/mini-imagenet/mini-imagenet-cache-{train,validation,test}.pkl, the "
                   "pickles learn2learn.vision.datasets.MiniImagenet downloads ({'image_data': "
                   "uint8 [N, 84, 84, 3], 'class_dict': {class: [indices]}}; also found "
                   "directly in <root> or in <root>/mini_imagenet); or a folder per split, "
                   "<root>/mini_imagenet/<split>/<class>/*.jpg",
            size="1.3 GB (the three pickles; train alone 0.8 GB)",
            obtain="allow downloads (learn2learn fetches the pickles; pip install "
                   "learn2learn), or put learn2learn's pickles or your own per-split class "
                   "folders in one of those places."),
        pixels="RGB, " + UNIT_RANGE)


class TieredImagenet(_Downloadable):
    """tiered-ImageNet (Ren et al. 2018), 351/97/160 classes."""

    kind: Literal["tiered_imagenet"]
    size: PositiveInt = 84

    facts: ClassVar[Facts] = Facts(
        title="tiered-ImageNet", task="classification", loader="imagenet:open_tiered_imagenet",
        classes={"train": 351, "val": 97, "test": 160},  # 732 to 1300 images per class
        files=Files(
            layout="<root>/tiered-imagenet/{train,val,test}_images_png.pkl and "
                   "{train,val,test}_labels.pkl, pickles of learn2learn.vision.datasets."
                   "TieredImagenet's download (PNG bytes per image; {'label_specific': [class "
                   "per image], ...}; <root>/tiered_imagenet/ works too); or a folder per "
                   "split, <root>/tiered_imagenet/<split>/<class>/*",
            size="12 GB (the pickles of all three splits)",
            obtain="allow downloads (learn2learn fetches the pickles; pip install "
                   "learn2learn), or put the pickles or your own per-split class folders in "
                   "one of those places."),
        pixels="RGB, " + UNIT_RANGE)


class Folder(_Images):
    """A user's images, one sub-folder per class: `folder("path/to/images")`.

    A relative `path` is looked up under the data root, then the working directory. The
    classes of each split come from `splits` (a folder of train/val/test .json or .txt lists)
    or, without it, from a random split by `fractions` (train, val, test) drawn with `seed`;
    `split: "all"` is every class. Pixels are divided by 255, then `invert: true` maps x to
    1 - x (dark strokes on a light ground become light on dark, or back), then `mean` and
    `std` (one number, or one per channel) normalise: (x - mean) / std.
    """

    kind: Literal["folder"]
    split: Literal["train", "val", "test", "all"] = "train"
    path: str
    splits: str | None = None
    fractions: tuple[Fraction, Fraction, Fraction] = (0.64, 0.16, 0.20)
    seed: int = 0
    size: PositiveInt = 84
    invert: bool = False
    mean: float | list[float] = 0.0
    std: float | list[float] = 1.0

    facts: ClassVar[Facts] = Facts(
        title="folder", task="classification", loader="folder:open_folder",
        files=Files(layout="<path>/<class name>/<image files> (.jpg, .jpeg, .png, .bmp, .gif, "
                           ".tif, .tiff, .webp, .ppm, .pgm), one sub-folder per class",
                    size=None, obtain="your own images"),
        pixels="as the files store them (converted to `channels`), divided by 255; then "
               "`invert` and `mean`/`std` if given")

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
    def _checked(self):
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions (train, val, test) must sum to 1, not {sum(self.fractions):g}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, list) and len(value) != self.channels:
                raise ValueError(f"{name} has {len(value)} values but the images have "
                                 f"{self.channels} channel(s): give one number, or one per channel")
        std = self.std if isinstance(self.std, list) else [self.std]
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, not {self.std}")
        return self


COMPONENTS = (Omniglot, Sinusoid, CifarFS, FC100, VggFlower, Aircraft, Cars, Cub, MiniImagenet,
              TieredImagenet, Folder)
Dataset = Component(*COMPONENTS)


def default_split(role: str, data: Any, train: Any = None) -> str | None:
    """The split a dataset written without one takes in `data.<role>`; None when it gives one.
    A folder in data.test is used whole unless it is the training folder."""
    if not isinstance(data, dict) or "split" in data:
        return None
    if role == "test" and data.get("kind") == "folder" and _folder_path(data) != _folder_path(train):
        return "all"
    return {"train": "train", "valid": "val", "test": "test"}[role]


def _folder_path(data: Any) -> Any:
    if not isinstance(data, dict) or data.get("kind") != "folder":
        return None
    positional = data.get("__positional__") or [None]
    return data.get("path", positional[0])
