"""Reading the pickle files some datasets ship as (CIFAR-100, learn2learn's mini- and
tiered-ImageNet), allowing only what those files hold: containers and numpy arrays.

A pickle can run any code it names; a data file found on disk should not be able to.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from mtdsl.errors import DataError

# Everything numpy arrays and scalars need to unpickle, under numpy 1 and numpy 2 names.
_ALLOWED = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
     ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
     # how protocol 2 pickles written by Python 3 spell a bytes object
     ("_codecs", "encode")}


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a data file should not")
        return super().find_class(module, name)


def load_pickle(path: Path, dataset: str) -> Any:
    """The file's content. latin1 reads the Python 2 pickles these datasets were first
    published as (numpy buffers inside them are byte strings); Python 3 pickles ignore it."""
    try:
        with open(path, "rb") as stream:
            return _DataOnly(stream, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as error:
        raise DataError(f"{dataset}: {path} is not a readable data pickle ({error}); a partial "
                        f"download or another file under that name. Delete it and download "
                        f"it again.") from None
