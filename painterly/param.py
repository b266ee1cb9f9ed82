"""Image parameterisations: what the optimiser actually changes. forward() returns the image.

Kept apart from the loop so a Laplacian-pyramid parameterisation (STROTSS) plugs in unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class PixelImage(nn.Module):
    """The image's pixels themselves (RGB, nominally [0, 1]), as in Gatys et al.

    Values are not clamped while optimising (clamping would zero gradients and confuse L-BFGS's
    curvature history); the result is clamped when read out.
    """

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.pixels = nn.Parameter(init.detach().clone().float().contiguous())

    def forward(self) -> torch.Tensor:
        return self.pixels

    @torch.no_grad()
    def image(self) -> torch.Tensor:
        """The current image, detached and clamped to [0, 1]."""
        return self.forward().detach().clamp(0, 1)
