"""The class lists of the published splits, shipped in mtdsl/data/splits/<dataset>/<split>.json
(each folder's SOURCE.md says where a list comes from). Torch-free.

The class counts these lists give are also stated in each dataset's declaration
(`mtdsl.validate.datasets`), so `mtdsl check` needs no file; a test keeps the two equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources

from mtdsl.data.facts import SPLITS
from mtdsl.errors import DataError

# FC100's lists name CIFAR-100 superclasses, five fine classes each.
FC100_CLASSES_PER_SUPERCLASS = 5

# Omniglot's lists: {"background"|"evaluation": {alphabet: [characterNN, ...]}}; the first
# key names the folder images_background / images_evaluation.
CharacterList = Mapping[str, Mapping[str, Sequence[str]]]
IMAGE_SETS = ("background", "evaluation")


@lru_cache(maxsize=None)
def packaged_list(dataset: str, split: str):
    """The classes of one split as shipped (for Omniglot, a CharacterList)."""
    if split not in SPLITS:
        raise DataError(f"{dataset} has no split {split!r}; known splits: {', '.join(SPLITS)}")
    text = resources.files("mtdsl.data").joinpath("splits", dataset, f"{split}.json").read_text()
    return json.loads(text)


def listed_classes(dataset: str, split: str) -> int:
    """How many classes the packaged list of a split makes."""
    listed = packaged_list(dataset, split)
    if dataset == "omniglot":
        return character_count(listed)
    return len(listed) * (FC100_CLASSES_PER_SUPERCLASS if dataset == "fc100" else 1)


def character_count(characters: CharacterList) -> int:
    return sum(len(names) for alphabets in characters.values() for names in alphabets.values())


def image_sets_used(characters: CharacterList) -> list[str]:
    """The Omniglot image sets (background / evaluation) that hold a listed character."""
    unknown = sorted(set(characters) - set(IMAGE_SETS))
    if unknown:
        raise DataError(f"omniglot character list names unknown image set(s) {unknown}; "
                        f"known: {', '.join(IMAGE_SETS)}")
    return [s for s in IMAGE_SETS if any(characters.get(s, {}).values())]
