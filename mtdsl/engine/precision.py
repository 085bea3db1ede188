"""Mixed precision and memory format: the plan's `device` options made concrete for one
device and one model.

bf16 autocast runs convolutions and matrix products in bfloat16 while every tensor the
engine keeps (weights, scores, meta-learned values, gradients) stays float32; batch norm
and the loss compute in float32 (see compile.module). Channels-last stores conv kernels and
images as NHWC, the layout cuDNN's fast bf16 kernels want; values never change with it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor

from mtdsl.compile.plan import DevicePlan
from mtdsl.errors import RunError


@dataclass(frozen=True)
class Precision:
    device_type: str
    amp: bool  # bf16 autocast of the forward pass
    channels_last: bool

    @classmethod
    def decide(cls, plan: DevicePlan, device: torch.device, has_conv: bool) -> "Precision":
        """`auto` turns both on for a conv net on CUDA (bf16 only where the GPU has it) and
        off otherwise; an explicit choice is followed on any device that supports it."""
        cuda = device.type == "cuda"
        bf16_here = not cuda or torch.cuda.is_bf16_supported()
        if plan.amp == "bf16" and not bf16_here:
            raise RunError("the spec asks for `device.amp: bf16`, but this GPU has no bfloat16 "
                           "support; use `device { amp: off }`")
        amp = plan.amp == "bf16" or (plan.amp == "auto" and cuda and has_conv and bf16_here)
        channels_last = plan.channels_last is True or (plan.channels_last == "auto" and cuda and has_conv)
        return cls(device.type, amp, channels_last)

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def to_format(self, t: Tensor) -> Tensor:
        """A 4-d tensor (a conv kernel, a batch of images) in the memory format the forward
        pass wants."""
        if self.channels_last and t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def task_images(self, x: Tensor) -> Tensor:
        """Task-stacked images [tasks, examples, C, H, W] laid out so that every task's
        [examples, C, H, W] slice is channels-last (a 5-d tensor has no such format)."""
        if self.channels_last and x.dim() == 5:
            return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
        return x

    def describe(self) -> str:
        return ", ".join([("bf16 autocast" if self.amp else "float32"),
                          *(["channels-last"] if self.channels_last else [])])
