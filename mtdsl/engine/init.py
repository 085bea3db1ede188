"""Initial values, drawn by the engine from the plan with its own seeded generators.

Draws happen on the CPU with a CPU generator, so a seed gives the same network on every
device; the caller moves the result. Gains follow the relu convention of
`nn.init.kaiming_*_(mode="fan_in", nonlinearity="relu")`.
"""

from __future__ import annotations

import math
import zlib

import torch

INITS = ("kaiming_normal", "kaiming_uniform", "constant", "signed_constant", "zeros", "ones",
         "torch_default")
RELU_GAIN = math.sqrt(2.0)


def seeded_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one purpose (weights, scores, IteRand), so that adding scores to
    a plan does not change the weights a seed gives."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(stream.encode()))


def fan_in(shape: tuple[int, ...]) -> int:
    """Inputs feeding one output unit: in*kh*kw for a conv kernel [out, in, kh, kw], in for a
    linear weight [out, in]; a vector counts its own length (there is no better convention)."""
    if len(shape) >= 2:
        return math.prod(shape[1:])
    return max(math.prod(shape), 1)


def draw(init: str, shape: tuple[int, ...], generator: torch.Generator, *,
         fan: int | None = None) -> torch.Tensor:
    """A fresh float32 CPU tensor of `shape` drawn as `init` says. `fan` is the owning
    layer's fan-in (`ParamPlan.fan_in`); without it the tensor's own shape decides.

    "torch_default" is torch's default for Linear and Conv weights and biases:
    uniform(+-1/sqrt(fan_in)).
    """
    fan = fan or fan_in(shape)
    std = RELU_GAIN / math.sqrt(fan)
    if init == "kaiming_normal":
        return torch.randn(shape, generator=generator) * std
    if init == "kaiming_uniform":
        bound = math.sqrt(3.0) * std
        return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound
    if init == "constant":
        return torch.full(shape, std)
    if init == "signed_constant":
        return torch.randn(shape, generator=generator).sign() * std
    if init == "zeros":
        return torch.zeros(shape)
    if init == "ones":
        return torch.ones(shape)
    if init == "torch_default":
        bound = 1.0 / math.sqrt(fan)
        return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound
    raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
