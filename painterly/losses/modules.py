"""Thin, stateless loss modules: each names the layers it reads and applies one pure function.

Targets are passed in at call time (never stored), so one module serves every scale and tile.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from . import functional as LF


class ContentLoss(nn.Module):
    """Weighted sum over layers of the mean squared feature difference to the content's features."""

    def __init__(self, layers: Sequence[str], layer_weights: Sequence[float]) -> None:
        super().__init__()
        self.layers = list(layers)
        self.layer_weights = list(layer_weights)

    def forward(self, features: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(w * LF.content_loss(features[l], targets[l]) for l, w in zip(self.layers, self.layer_weights))


class GramStyleLoss(nn.Module):
    """Weighted sum over layers of the mean squared Gram-matrix difference to target Grams. Gatys's recipe
    weighs each layer by its weight / channels_of(layer)**2 (Gram entries grow with the channels), so
    weight 1 here is not stylize()'s style loss."""

    def __init__(self, layers: Sequence[str], layer_weights: Sequence[float]) -> None:
        super().__init__()
        self.layers = list(layers)
        self.layer_weights = list(layer_weights)

    def forward(self, features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
                masks: Optional[Mapping[str, torch.Tensor]] = None) -> torch.Tensor:
        """With `masks` (one per layer, at its resolution) only the masked positions' Gram is compared."""
        if masks is None:
            return sum(w * LF.gram_loss(features[l], target_grams[l]) for l, w in zip(self.layers, self.layer_weights))
        return sum(w * torch.mean((LF.gram_matrix(features[l], masks[l]) - target_grams[l]) ** 2)
                   for l, w in zip(self.layers, self.layer_weights))


class TotalVariationLoss(nn.Module):
    """Smoothness prior on the image itself (no features)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return LF.total_variation(image)
