"""Spatial guidance: colour-coded region maps -> pairs of (content region, style region) masks.

A guidance map is an image painted in flat colours; a region of the content map is stylised with the
region of the style map painted in the same colour (STROTSS, Kolkin et al. 2019, sec. 2.6). Guidance
maps are often saved as JPEG, so colours match within a tolerance instead of exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .errors import PainterlyError

# A colour code must cover this fraction of the style map to count as a region (the original's
# ">10000 pixels" at its working size); pixels farther than TOLERANCE (RGB distance, [0, 1] units)
# from every code belong to no region.
MIN_FRACTION = 0.01
TOLERANCE = 0.2


@dataclass(frozen=True)
class RegionPair:
    """One colour code and the masks (HxW bool, each at its guide's size) it selects."""

    color: tuple[float, float, float]
    content: torch.Tensor
    styles: tuple[torch.Tensor, ...]


def _codes(guide: torch.Tensor, min_fraction: float) -> torch.Tensor:
    """(K, 3) dominant colours of a 1x3xHxW guide: 5-bit-rounded colours covering >= min_fraction."""
    q = (guide[0].reshape(3, -1).T * 31).round()
    colors, counts = torch.unique(q, dim=0, return_counts=True)
    keep = counts >= min_fraction * q.shape[0]
    return colors[keep] / 31


def _assign(guide: torch.Tensor, codes: torch.Tensor, tolerance: float) -> torch.Tensor:
    """HxW index of the nearest code for each pixel, -1 where none is within `tolerance`."""
    pixels = guide[0].reshape(3, -1).T
    dist = torch.cdist(pixels, codes)
    best, index = dist.min(dim=1)
    index[best > tolerance] = -1
    return index.reshape(guide.shape[-2:])


def region_pairs(content_guide: torch.Tensor, style_guides: list[torch.Tensor], min_fraction: float = MIN_FRACTION,
                 tolerance: float = TOLERANCE) -> list[RegionPair]:
    """Regions painted in the same colour in the content guide and in every style guide.

    Colour codes come from the first style guide; a code is kept when it covers some of the content
    guide and of each style guide. Raises when no colour is shared.
    """
    if not style_guides:
        raise PainterlyError("style guidance needs one map per style image")
    codes = _codes(style_guides[0], min_fraction)
    content_index = _assign(content_guide, codes, tolerance)
    style_index = [_assign(g, codes, tolerance) for g in style_guides]
    pairs = []
    for k, code in enumerate(codes):
        c = content_index == k
        s = tuple(i == k for i in style_index)
        if c.any() and all(m.any() for m in s):
            pairs.append(RegionPair(tuple(float(v) for v in code), c, s))
    if not pairs:
        raise PainterlyError("the content and style guidance maps share no region colour")
    return pairs


def check_guides(content_guide: Optional[torch.Tensor], style_guides: Sequence[torch.Tensor],
                 content: torch.Tensor, styles: Sequence[torch.Tensor]) -> None:
    """Both kinds of map, one per style image, each with its image's aspect ratio (within 2%): a map
    stretched onto an image of another shape would pair the wrong places."""
    if content_guide is None or not style_guides:
        raise PainterlyError("guidance needs both a content guidance map and style guidance maps")
    if len(style_guides) != len(styles):
        raise PainterlyError(f"{len(style_guides)} style guidance map(s) for {len(styles)} style image(s); "
                             "give one per style image")
    checks = [("the content guidance map", content_guide, "the content", content)]
    checks += [(f"style guidance map {i}", g, f"style image {i}", s)
               for i, (g, s) in enumerate(zip(style_guides, styles), 1)]
    for guide_name, guide, image_name, image in checks:
        (gh, gw), (h, w) = guide.shape[-2:], image.shape[-2:]
        if abs(gw / gh - w / h) > 0.02 * (w / h):
            raise PainterlyError(f"{guide_name} is {gw}x{gh} but {image_name} is {w}x{h}; "
                                 "a guidance map must have its image's aspect ratio")


def pair_masks(pairs: Optional[Sequence[RegionPair]]) -> list[torch.Tensor]:
    """Every mask of `pairs` (none: an empty list), to fingerprint a guided run's inputs."""
    return [m for p in pairs or () for m in (p.content, *p.styles)]


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """HxW bool mask -> `size` (nearest neighbour)."""
    return F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0] > 0.5
