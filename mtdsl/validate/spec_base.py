"""Building blocks of the typed spec: strict models and components told apart by `kind`."""

from __future__ import annotations

import typing
from functools import lru_cache
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator


class Strict(BaseModel):
    """No coercion: `iterations: "30000"`, `nesterov: "yes"` or `iterations: 1e4` are type
    errors, not silently converted; a float must be finite. Lists are the language's only
    sequences, so a list given for a tuple field (`betas: [0.9, 0.99]`) becomes the tuple,
    and its elements are checked as strictly."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        tuples = _tuple_fields(cls)
        if not any(isinstance(data.get(f), list) for f in tuples):
            return data
        return {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in data.items()}


@lru_cache(maxsize=None)
def _tuple_fields(model: type[BaseModel]) -> frozenset[str]:
    def is_tuple(annotation) -> bool:
        if typing.get_origin(annotation) is tuple:
            return True
        return any(is_tuple(a) for a in typing.get_args(annotation))
    return frozenset(name for name, f in model.model_fields.items() if is_tuple(f.annotation))


def _component(v: Any) -> Any:
    """A bare name stands for a call with no arguments: `sgd` == `sgd()`. A quoted string in
    a spec is text, not a name, so `train: "omniglot"` is an error rather than a dataset."""
    if is_name(v):
        return {"kind": str(v)}
    if isinstance(v, str):
        raise ValueError(f'must be a component such as `{v}(...)` or `{v}`, not the string "{v}"')
    return v


def is_name(v: Any) -> bool:
    """A component's name: a bare name in a spec, any string from Python; not a quoted string."""
    from .evaluate import Text

    return isinstance(v, str) and not isinstance(v, Text)


def Component(*members):
    return Annotated[Union[members], Field(discriminator="kind"), BeforeValidator(_component)]


PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

# The largest float32: a learning rate or weight decay beyond it cannot be applied to a
# float32 tensor (torch stops with an overflow error in the first step).
FLOAT32_MAX = 3.4028234663852886e38


def _float32(v: float) -> float:
    if v > FLOAT32_MAX:
        raise ValueError(f"{v:g} is beyond what a float32 tensor can hold (at most 3.4e38)")
    return v


Rate = Annotated[float, Field(ge=0.0), AfterValidator(_float32)]  # learning rates, weight decay
