"""Masks over fixed random weights: scores, their thresholds, straight-through masks, IteRand.

A masked tensor keeps its drawn weight w; a score tensor s of the same shape decides which
entries are kept: mask = (s >= threshold). The threshold is fixed at initialisation, so the
sparsity moves as the scores are meta-learned.
"""

from __future__ import annotations

import torch

from mtdsl.engine.init import draw


def threshold_at_sparsity(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """The `sparsity` quantile of the scores as a 0-d tensor: the k-th smallest score with
    k = 1 + round(sparsity * (numel - 1)), so 0 keeps every entry and 0.5 prunes half."""
    flat = scores.detach().flatten()
    k = 1 + round(sparsity * (flat.numel() - 1))
    return flat.kthvalue(k).values


def hard_mask(scores: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return (scores >= threshold).to(scores.dtype)


def straight_through_mask(scores: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """The hard mask in the forward pass, the identity to the scores in the backward pass.

    `(s - s.detach())` is exactly zero, so the value is exactly 0 or 1 (adding the scores
    first and subtracting them after would leave rounding errors in the kept entries).
    """
    return (scores - scores.detach()) + hard_mask(scores.detach(), threshold)


def iterand_redraw(weight: torch.Tensor, mask: torch.Tensor, *, prob: float, init: str,
                   fan: int | None, generator: torch.Generator) -> torch.Tensor:
    """IteRand: each pruned entry (mask 0) is replaced by a fresh draw from its init
    distribution (fan-in `fan`) with probability `prob`; kept entries never change."""
    fresh = draw(init, tuple(weight.shape), generator, fan=fan).to(weight.device, weight.dtype)
    coin = torch.rand(tuple(weight.shape), generator=generator).to(weight.device)
    redraw = (mask == 0) & (coin < prob)
    return torch.where(redraw, fresh, weight)
