"""Building blocks of the typed spec: strict models and components told apart by `kind`."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field
from pydantic.functional_validators import BeforeValidator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _component(v: Any) -> Any:
    """A bare name stands for a call with no arguments: `sgd` == `sgd()`."""
    return {"kind": v} if isinstance(v, str) else v


def Component(*members):
    return Annotated[Union[members], Field(discriminator="kind"), BeforeValidator(_component)]


PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]

