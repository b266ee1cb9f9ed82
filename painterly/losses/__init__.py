"""Losses: pure functions (`functional`), thin modules over them (`modules`), and `LossTerms`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .functional import blend_grams, content_loss, gram_loss, gram_matrix, total_variation
from .modules import ContentLoss, GramStyleLoss, TotalVariationLoss


@dataclass
class LossTerms:
    """Named, already-weighted loss terms and their sum: what every objective returns and every log shows."""

    terms: dict[str, torch.Tensor]

    @property
    def total(self) -> torch.Tensor:
        return sum(self.terms.values())

    def floats(self) -> dict[str, float]:
        values = {name: float(t.detach()) for name, t in self.terms.items()}
        if values:  # a forward pass has no loss to report, not a total of 0
            values["total"] = sum(values.values())
        return values


__all__ = [
    "LossTerms", "ContentLoss", "GramStyleLoss", "TotalVariationLoss",
    "blend_grams", "content_loss", "gram_loss", "gram_matrix", "total_variation",
]
