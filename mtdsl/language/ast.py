"""The syntax tree of a .mt file. Every node keeps the span it was parsed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .source import Span


@dataclass
class Node:
    span: Span = field(repr=False, compare=False)


# ---- values ------------------------------------------------------------------------------

@dataclass
class Number(Node):
    value: int | float
    text: str = ""


@dataclass
class String(Node):
    value: str


@dataclass
class Name(Node):
    """A bare name (`masked`, `kaiming_normal`) or a dotted reference (`task.ways`)."""
    parts: list[str]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass
class Arg(Node):
    name: str | None
    value: "Value"


@dataclass
class Call(Node):
    func: str
    args: list[Arg]

    @property
    def positional(self) -> list[Arg]:
        return [a for a in self.args if a.name is None]

    @property
    def keywords(self) -> list[Arg]:
        return [a for a in self.args if a.name is not None]


@dataclass
class List(Node):
    items: list["Value"]


@dataclass
class Map(Node):
    entries: list["Entry"]


@dataclass
class BinOp(Node):
    op: str
    left: "Value"
    right: "Value"


@dataclass
class Neg(Node):
    operand: "Value"


Value = Union[Number, String, Name, Call, List, Map, BinOp, Neg]


# ---- experiment bodies -------------------------------------------------------------------

@dataclass
class Path(Node):
    """An assignment target: `outer.iterations` or `inner.lr["head.**"]`."""
    parts: list[str]
    index: str | None = None

    def __str__(self) -> str:
        s = ".".join(self.parts)
        return s + (f'["{self.index}"]' if self.index is not None else "")


@dataclass
class Selector(Node):
    """A quoted parameter selector used as a key, e.g. `"**.weight": masked`."""
    pattern: str


Target = Union[Path, Selector]


@dataclass
class Assign(Node):
    targets: list[Target]
    value: Value


@dataclass
class Section(Node):
    name: str
    name_span: Span = field(repr=False, compare=False)
    entries: list["Entry"] = field(default_factory=list)


Entry = Union[Assign, Section]


@dataclass
class Experiment(Node):
    name: str
    extends: str | None
    entries: list[Entry]
    name_span: Span = field(repr=False, compare=False)
    extends_span: Span | None = field(default=None, repr=False, compare=False)


@dataclass
class Sweep(Node):
    name: str
    base: str
    mode: str  # "grid" or "zip"
    entries: list[Entry]
    name_span: Span = field(repr=False, compare=False)
    base_span: Span = field(repr=False, compare=False)


@dataclass
class Import(Node):
    path: str


# ---- models ------------------------------------------------------------------------------

@dataclass
class TypeRef(Node):
    name: str
    args: list["TypeRef"]

    def __str__(self) -> str:
        return self.name + (f"[{', '.join(map(str, self.args))}]" if self.args else "")


@dataclass
class Param(Node):
    name: str
    type: TypeRef
    default: Value | None


@dataclass
class LayerName(Node):
    """`head`, or a template such as `layer{i+1}`: literal text and expressions in turn."""
    parts: list[Union[str, Value]]


@dataclass
class Layer(Node):
    name: LayerName | None
    call: Call  # a bare `relu` is a Call with no arguments


@dataclass
class Chain(Node):
    layers: list[Layer]


@dataclass
class ForLoop(Node):
    index: str | None
    var: str
    iterable: Value
    body: list["Stmt"]


@dataclass
class Residual(Node):
    body: list["Stmt"]
    shortcut: list["Stmt"] | None


Stmt = Union[Chain, ForLoop, Residual]


@dataclass
class ModelDef(Node):
    kind: str  # "model" or "block"
    name: str
    params: list[Param]
    body: list[Stmt]
    name_span: Span = field(repr=False, compare=False)


@dataclass
class Comment(Node):
    text: str


@dataclass
class Module(Node):
    """One parsed file."""
    items: list[Union[Import, Experiment, Sweep, ModelDef]]
    comments: list[Comment] = field(default_factory=list)
