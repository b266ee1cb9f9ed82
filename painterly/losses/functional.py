"""Pure loss functions over features and images. No state, no VGG: callers pass features in.

Normalisations follow Gatys et al. and pastiche so that equal weights give equal losses:
Gram matrices are divided by the number of positions, content and style terms are mean squared errors.
"""

from __future__ import annotations

import torch


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Channel co-activations F F^T / positions, for NxCxHxW features -> NxCxC.

    With a mask (Nx1xHxW, weights in [0, 1]) only the masked positions count, normalised by the
    mask's total weight, so a region's Gram is comparable to a whole image's.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    if mask is None:
        return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)
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
