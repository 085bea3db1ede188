"""The layer graph as a torch `nn.Module` whose parameter names are the graph's names.

Parameters are registered on nested holder modules so `named_parameters()` yields
`layer1.weight`, `layer1.bn.weight`, ...; the forward pass is the graph run in order with
torch.nn.functional, which `torch.func.functional_call` can swap tensors into.
BatchNorm uses batch statistics only (no running statistics), as in the paper, and
computes in float32 under bf16 autocast: reduced-precision batch statistics cost accuracy
(and torch's CPU batch-norm backward under vmap rejects a bf16 input with float32 weights).
Dropout is active in training mode only; the engine evaluates in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .graph import Graph, LayerNode, ResidualNode


class CompiledModel(nn.Module):
    def __init__(self, graph: Graph):
        super().__init__()
        self.graph = graph
        for p in graph.params:
            *path, local = p.name.split(".")
            holder = self
            for part in path:
                if not hasattr(holder, part):
                    holder.add_module(part, nn.Module())
                holder = getattr(holder, part)
            holder.register_parameter(local, nn.Parameter(torch.zeros(p.shape)))

    def tensor(self, name: str) -> torch.Tensor:
        # getattr, not get_parameter: under functional_call the attribute is a plain tensor.
        obj = self
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.graph.nodes, x)

    def _run(self, nodes, x):
        for node in nodes:
            if isinstance(node, ResidualNode):
                branch = self._run(node.body, x)
                x = branch + (self._run(node.shortcut, x) if node.shortcut else x)
            else:
                x = self._layer(node, x)
        return x

    def _layer(self, n: LayerNode, x):
        a = n.args
        p = {q.name.rsplit(".", 1)[-1]: self.tensor(q.name) for q in n.params}
        if n.kind == "linear":
            return F.linear(x, p["weight"], p.get("bias"))
        if n.kind == "conv":
            return F.conv2d(x, p["weight"], p.get("bias"), stride=a["stride"], padding=a["pad"])
        if n.kind == "batchnorm":
            if x.dtype in (torch.bfloat16, torch.float16):
                x = x.float()
            return F.batch_norm(x, None, None, p.get("weight"), p.get("bias"), training=True, eps=a["eps"])
        if n.kind == "relu":
            return F.relu(x)
        if n.kind == "leaky_relu":
            return F.leaky_relu(x, a["slope"])
        if n.kind == "maxpool":
            return F.max_pool2d(x, a["kernel"], a["stride"] or a["kernel"], a["pad"])
        if n.kind == "avgpool":
            return F.avg_pool2d(x, a["kernel"], a["stride"] or a["kernel"], a["pad"])
        if n.kind == "global_avgpool":
            return F.adaptive_avg_pool2d(x, 1)
        if n.kind == "flatten":
            return x.flatten(1)
        if n.kind == "dropout":
            return F.dropout(x, a["p"], training=self.training) if a["p"] else x
        raise AssertionError(f"layer kind {n.kind} has no forward")
