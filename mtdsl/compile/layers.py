"""The layer catalogue: each layer's arguments, output shape and parameter tensors.

Pure Python (no torch), so `mtdsl check` can infer every shape and parameter count
before anything runs. `compile.module` gives the same layers their torch forward.
Shapes exclude the batch axis: (features,) or (channels, height, width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

REQUIRED = object()


class ShapeError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Arg:
    name: str
    type: str  # "int", "float", "bool"
    default: Any = REQUIRED


@dataclass(frozen=True)
class ParamShape:
    local: str  # name inside the layer: "weight", "bias"
    shape: tuple[int, ...]
    init: str  # default initial value (see compile.plan.ParamPlan.init)


@dataclass(frozen=True)
class LayerKind:
    name: str
    args: tuple[Arg, ...]
    out_shape: Callable[[dict, tuple], tuple]
    params: Callable[[dict, tuple], list[ParamShape]] = field(default=lambda a, s: [])
    doc: str = ""


def _need_rank(kind: str, shape: tuple, ranks: tuple[int, ...], hint: str | None = None):
    if len(shape) not in ranks:
        want = " or ".join({1: "a flat vector of features", 3: "an image (channels, height, width)"}[r]
                           for r in ranks)
        raise ShapeError(f"{kind} expects {want}, but its input has shape {fmt_shape(shape)}", hint)


def fmt_shape(shape: tuple) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _linear_out(a, s):
    _need_rank("linear", s, (1,), "add `flatten` before it")
    return (a["out"],)


def _linear_params(a, s):
    ps = [ParamShape("weight", (a["out"], s[0]), "kaiming_normal")]
    return ps + ([ParamShape("bias", (a["out"],), "zeros")] if a["bias"] else [])


def _spatial(size: int, kernel: int, stride: int, pad: int, what: str) -> int:
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise ShapeError(f"{what} with kernel {kernel} does not fit an input of size {size}",
                         "use a smaller kernel, padding, or fewer poolings before it")
    return out


def _conv_out(a, s):
    _need_rank("conv", s, (3,))
    h = _spatial(s[1], a["kernel"], a["stride"], a["pad"], "conv")
    w = _spatial(s[2], a["kernel"], a["stride"], a["pad"], "conv")
    return (a["out"], h, w)


def _conv_params(a, s):
    k = a["kernel"]
    ps = [ParamShape("weight", (a["out"], s[0], k, k), "kaiming_normal")]
    return ps + ([ParamShape("bias", (a["out"],), "zeros")] if a["bias"] else [])


def _bn_out(a, s):
    _need_rank("batchnorm", s, (1, 3))
    return s


def _bn_params(a, s):
    if not a["affine"]:
        return []
    return [ParamShape("weight", (s[0],), "ones"), ParamShape("bias", (s[0],), "zeros")]


def _pool_out(kind):
    def out(a, s):
        _need_rank(kind, s, (3,))
        stride = a["stride"] or a["kernel"]
        return (s[0], _spatial(s[1], a["kernel"], stride, a["pad"], kind),
                _spatial(s[2], a["kernel"], stride, a["pad"], kind))
    return out


def _global_pool_out(a, s):
    _need_rank("global_avgpool", s, (3,))
    return (s[0], 1, 1)


def _same(a, s):
    return s


def _dropout_out(a, s):
    if not 0.0 <= a["p"] < 1.0:
        raise ShapeError(f"dropout's `p` must be at least 0 and below 1, got {a['p']:g}",
                         "`p` is the probability of zeroing each activation")
    return s


_POOL_ARGS = (Arg("kernel", "int"), Arg("stride", "int", None), Arg("pad", "int", 0))

KINDS: dict[str, LayerKind] = {k.name: k for k in [
    LayerKind("linear", (Arg("out", "int"), Arg("bias", "bool", True)), _linear_out, _linear_params,
              "fully connected layer; input features are inferred"),
    LayerKind("conv", (Arg("out", "int"), Arg("kernel", "int"), Arg("stride", "int", 1),
                       Arg("pad", "int", 0), Arg("bias", "bool", True)), _conv_out, _conv_params,
              "2-d convolution with a square kernel; input channels are inferred"),
    LayerKind("batchnorm", (Arg("eps", "float", 1e-5), Arg("affine", "bool", True)), _bn_out, _bn_params,
              "batch normalisation with batch statistics only (1-d or 2-d from the input)"),
    LayerKind("relu", (), _same),
    LayerKind("leaky_relu", (Arg("slope", "float", 0.01),), _same),
    LayerKind("maxpool", _POOL_ARGS, _pool_out("maxpool")),
    LayerKind("avgpool", _POOL_ARGS, _pool_out("avgpool")),
    LayerKind("global_avgpool", (), _global_pool_out),
    LayerKind("flatten", (), lambda a, s: (math.prod(s),)),
    LayerKind("dropout", (Arg("p", "float", 0.5),), _dropout_out,
              doc="zeroes each activation with probability p while meta-training, never at evaluation"),
]}
