"""Pure loss functions over features and images. No state, no VGG: callers pass features in.

Normalisations follow Gatys et al. and pastiche so that equal weights give equal losses:
Gram matrices are divided by the number of positions, content and style terms are mean squared errors.
"""

from __future__ import annotations

import torch


class _Gram(torch.autograd.Function):
    """G = F F^T / P with a one-matmul backward, dF = (dG + dG^T) F / P.

    Autograd's own backward for F F^T does two matmuls and an add; this halves the Gram cost of a
    step. F is taken as (N, P, C) when the features are channels-last (a free view), else as
    (N, C, P), so no layout copy happens either way.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n, c, h, w = features.shape
        positions_last = not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last)
        if positions_last:
            flat = features.permute(0, 2, 3, 1).reshape(n, h * w, c)
            gram = torch.bmm(flat.transpose(1, 2), flat)
        else:
            flat = features.reshape(n, c, h * w)
            gram = torch.bmm(flat, flat.transpose(1, 2))
        ctx.save_for_backward(flat)
        ctx.positions_last = positions_last
        ctx.shape = features.shape
        return gram / (h * w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (flat,) = ctx.saved_tensors
        n, c, h, w = ctx.shape
        sym = (grad + grad.transpose(1, 2)) / (h * w)
        if ctx.positions_last:
            return torch.bmm(flat, sym).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(sym, flat).reshape(n, c, h, w)


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Channel co-activations F F^T / positions, for NxCxHxW features -> NxCxC.

    With a mask (Nx1xHxW, weights in [0, 1]) only the masked positions count, normalised by the
    mask's total weight, so a region's Gram is comparable to a whole image's.
    """
    n, c, h, w = features.shape
    if mask is None:
        return _Gram.apply(features)
    flat = features.reshape(n, c, h * w)
    weights = mask.reshape(n, 1, h * w).to(flat)
    total = weights.sum(dim=2, keepdim=True).clamp_min(1e-8)
    return torch.bmm(flat * weights, flat.transpose(1, 2)) / total


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared feature difference (Gatys et al. 2016, eq. 1, as a mean instead of a half-sum)."""
    return torch.mean((features - target) ** 2)


def gram_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the features' Gram matrix and a target Gram matrix."""
    return torch.mean((gram_matrix(features) - target_gram) ** 2)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Squared-difference total variation: mean of squared horizontal plus vertical neighbour steps.

    Squared (not absolute) differences keep the loss smooth, which L-BFGS needs.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx**2) + torch.mean(dy**2)


def blend_grams(grams: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """One target from several styles: the weight-normalised sum of their Gram matrices."""
    total = float(sum(weights))
    return sum(g * (w / total) for g, w in zip(grams, weights))
