"""What Omniglot holds, known without reading an image: the Vinyals et al. character splits
that ship with the package, and the default image size and rotations.

Torch-free, so `mtdsl check` can give input shapes and class counts without loading data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources

from mtdsl.errors import DataError

# {"background"|"evaluation": {alphabet: [characterNN, ...]}}; the first key names the
# folder images_background / images_evaluation.
CharacterList = Mapping[str, Mapping[str, Sequence[str]]]

SPLITS = ("train", "val", "test")
IMAGE_SETS = ("background", "evaluation")
DEFAULT_SIZE = 28
# Each rotation of a character is a class of its own (Vinyals et al., the Meta-ticket paper).
DEFAULT_ROTATIONS = (0, 90, 180, 270)


@lru_cache(maxsize=None)
def character_list(split: str) -> CharacterList:
    if split not in SPLITS:
        raise DataError(f"omniglot has no split {split!r}; known splits: {', '.join(SPLITS)}")
    text = resources.files("mtdsl.data").joinpath("splits", "omniglot", f"{split}.json").read_text()
    return json.loads(text)


def character_count(characters: CharacterList) -> int:
    return sum(len(names) for alphabets in characters.values() for names in alphabets.values())


def image_sets_used(characters: CharacterList) -> list[str]:
    """The image sets (background / evaluation) that hold at least one listed character."""
    unknown = sorted(set(characters) - set(IMAGE_SETS))
    if unknown:
        raise DataError(f"omniglot character list names unknown image set(s) {unknown}; "
                        f"known: {', '.join(IMAGE_SETS)}")
    return [s for s in IMAGE_SETS if any(characters.get(s, {}).values())]


def rotations_or_default(degrees: Sequence[int] | None) -> tuple[int, ...]:
    if degrees is None:
        return DEFAULT_ROTATIONS
    degrees = tuple(degrees)
    wrong = [d for d in degrees if not isinstance(d, int) or d % 90 != 0 or not 0 <= d < 360]
    if not degrees or wrong or len(set(degrees)) != len(degrees):
        raise DataError(f"omniglot rotations must be distinct values among 0, 90, 180, 270, "
                        f"not {list(degrees)}")
    return degrees


def input_shape(size: int | None = None, channels: int | None = None) -> tuple[int, int, int]:
    side = DEFAULT_SIZE if size is None else size
    return (1 if channels is None else channels, side, side)


def num_classes(split: str, rotations: Sequence[int] | None = None) -> int:
    return character_count(character_list(split)) * len(rotations_or_default(rotations))
