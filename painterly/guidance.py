"""Spatial guidance: colour-coded region maps -> pairs of (content region, style region) masks.

A guidance map is an image painted in flat colours; a region of the content map is stylised with the
region of the style map painted in the same colour (STROTSS, Kolkin et al. 2019, sec. 2.6). Guidance
maps are often saved as JPEG, so colours match within a tolerance instead of exactly.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .errors import PainterlyError
from .features import FeatureExtractor, layer_stride
from .losses import gram_matrix
from .tiling import Tiling, blend_window

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
    guide and of each style guide. Black is a colour like any other: content left black takes its
    style from the black of the style maps (the rest from the rest). Raises when no colour is shared.
    """
    if not style_guides:
        raise PainterlyError("style guidance needs one map per style image")
    codes = _codes(style_guides[0], min_fraction)
    if len(codes) == 0:  # a photo given as a map: no colour covers enough of it to be a region
        raise PainterlyError(f"style guidance map 1 has no colour covering {min_fraction:.0%} of it: a guidance map "
                             "is painted in a few flat colours, one a region (is it a photo?)")
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


def unpaired_colours(content_guide: torch.Tensor, style_guides: Sequence[torch.Tensor], pairs: Sequence[RegionPair],
                     min_fraction: float = MIN_FRACTION, tolerance: float = TOLERANCE) -> list[str]:
    """A line for each colour covering some of the content map that `region_pairs` left out because a
    style map lacks it: that content pairs with no style region (Gatys, AdaIN and WCT give it the whole
    style, STROTSS no guided term), which is rarely meant (a colour mistyped on one map is the usual
    cause), so the run says so."""
    paired = torch.tensor([p.color for p in pairs])
    lines = []
    for code in _codes(content_guide, min_fraction):
        if (paired - code).norm(dim=1).min() <= tolerance:
            continue
        hexed = "#" + "".join(f"{round(float(v) * 255):02x}" for v in code)
        share = float((_assign(content_guide, code[None], tolerance) == 0).float().mean())
        missing = [i for i, g in enumerate(style_guides, 1) if not (_assign(g, code[None], tolerance) == 0).any()]
        where = ("in no style guidance map" if len(missing) == len(style_guides) else
                 f"not in style guidance map {', '.join(map(str, missing))}" if missing else
                 "in too little of style guidance map 1 to count as a region")
        lines.append(f"colour {hexed} covers {share:.0%} of the content guidance map but is {where}: that part of "
                     "the content pairs with no style region and is styled as if unguided")
    return lines


def paired_regions(content_guide: torch.Tensor, style_guides: list[torch.Tensor]) -> list[RegionPair]:
    """`region_pairs`, with a note on stderr for each content colour left out (`unpaired_colours`)."""
    pairs = region_pairs(content_guide, style_guides)
    for line in unpaired_colours(content_guide, style_guides, pairs):
        print(f"painterly: note: {line}", file=sys.stderr)
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


@torch.no_grad()
def layer_mask(mask: torch.Tensor, size: tuple[int, int], layer: str) -> torch.Tensor:
    """A content-aligned mask (1x1xHxW) at `layer`'s resolution for an input of `size`: area-averaged
    (antialiased), so a thin region keeps partial weight instead of vanishing as nearest-neighbour would."""
    f = layer_stride(layer)
    h, w = size[0] // f, size[1] // f
    return F.interpolate(mask, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


@torch.no_grad()
def masked_grams(extractor: FeatureExtractor, image: torch.Tensor, layers: Sequence[str],
                 masks: Sequence[Optional[torch.Tensor]], tiling: Optional[Tiling] = None
                 ) -> list[tuple[dict[str, torch.Tensor], dict[str, float]]]:
    """Per mask (None: the whole image; else 1x1xhxw, any size, resized to the image), the Gram of
    `image`'s features over the masked positions and those positions' total weight, per layer.

    One VGG pass serves every mask. With `tiling` the pass runs tile by tile (memory of one tile)
    and each position counts with its tile's blend window; the windows of a round sum to one
    everywhere, so the result is the whole image's Gram up to the tiles' border effects, which the
    windows fade out.
    """
    if not layers:
        return [({}, {}) for _ in masks]
    size = tuple(image.shape[-2:])
    full = [None if m is None else F.interpolate(m.float(), size=size, mode="bilinear", antialias=True,
                                                 align_corners=False).clamp(0, 1) for m in masks]
    if tiling is None:
        feats = extractor(image, layers)
        out = []
        for m in full:
            if m is None:
                out.append(({l: gram_matrix(f) for l, f in feats.items()},
                            {l: float(f.shape[-2] * f.shape[-1]) for l, f in feats.items()}))
            else:
                lm = {l: layer_mask(m, size, l) for l in layers}
                out.append(({l: gram_matrix(f, lm[l]) for l, f in feats.items()}, {l: float(lm[l].sum()) for l in layers}))
        return out
    sums: list[dict[str, torch.Tensor]] = [{} for _ in masks]
    weights: list[dict[str, float]] = [{l: 0.0 for l in layers} for _ in masks]
    for box in tiling.boxes(size, 0):
        feats = extractor(box.crop(image), layers)
        window = blend_window(box, size, tiling.overlap).to(image)
        for j, m in enumerate(full):
            w = window if m is None else window * box.crop(m)
            for l, f in feats.items():
                lm = layer_mask(w, box.size, l)
                total = float(lm.sum())
                g = gram_matrix(f, lm) * total
                sums[j][l] = sums[j][l] + g if l in sums[j] else g
                weights[j][l] += total
    return [({l: s[l] / max(w[l], 1e-8) for l in layers}, w) for s, w in zip(sums, weights)]


def region_targets(entries: Sequence[tuple[dict[str, torch.Tensor], torch.Tensor]], size: tuple[int, int],
                   layers: Sequence[str]) -> list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float]]:
    """(Gram targets, content mask at each layer's resolution for an image of `size`, share of the
    image) per region; regions absent from the image are left out."""
    shares = [float(m.mean()) for _, m in entries]
    total = sum(shares)
    return [(g, {l: layer_mask(m, size, l) for l in layers}, share / total)
            for (g, m), share in zip(entries, shares) if share > 0]
