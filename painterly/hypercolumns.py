"""Hypercolumns: an image's RGB pixel and its VGG features at chosen positions, stacked per position.

STROTSS (Kolkin et al. 2019) compares sampled hypercolumns instead of whole feature maps; this module
draws the positions (a jittered grid for the output and content, uniform for the style), samples the
hypercolumns, and holds a scale's style side: all style feature maps (StyleFeatures) or, for a tiled
scale, a fixed pool read tile by tile (StylePool). Shared by the STROTSS method and anything else
trained or optimised on the STROTSS objective.

Feature scale. painterly's VGG19 takes Caffe inputs (0..255, mean-subtracted), the original takes
torchvision's (mean/std-normalised [0, 1]): activations come out about 255 x 0.226 = 57.6 times
larger. The cosine terms do not care, but the moment term and the weight of the RGB channels inside
each hypercolumn do, so VGG features are divided by that factor (FEATURE_SCALE) first.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .errors import PainterlyError
from .features import FeatureExtractor
from .losses import functional as LF
from .tiling import Tiling, assign_to_tiles, choose_tiling

FEATURE_SCALE = 1.0 / (255.0 * 0.226)
# The original's output grid: stride sqrt(H W / 128^2) px, so about 128 x 128 grid points at any size.
GRID_POINTS = 128**2
# Style positions the moment targets are estimated from, once per scale (the original's fixed style
# set is 5 x 1000 positions per scale; per-step 1024-point estimates would be noisier and cost more).
STYLE_MOMENT_SAMPLES = 4096

def grid_positions(size: tuple[int, int], count: int, generator: torch.Generator,
                   mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Output/content positions: a regular grid with a random offset, at most `count` of its points.

    The grid's stride is sqrt(H W / 128^2) px (at least 1), as in the original; a fresh random offset
    in [0, stride) is drawn per axis, and when the grid has more than `count` points a random subset
    is kept. With a mask (HxW bool) only grid points inside it count; a region too small to hold a
    grid point gets random pixels of its own. Returns (P, 2) float (y, x) pixel indices.
    """
    h, w = size
    stride = max(int(math.sqrt(h * w // GRID_POINTS)), 1)
    oy, ox = (int(v) for v in torch.randint(0, stride, (2,), generator=generator))
    ys = torch.arange(oy, h, stride)
    xs = torch.arange(ox, w, stride)
    pos = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
    if mask is not None:
        pos = pos[mask.cpu()[pos[:, 0], pos[:, 1]]]
        if pos.shape[0] == 0:
            return random_positions(size, min(count, int(mask.sum())), generator, mask)
    if pos.shape[0] > count:
        pos = pos[torch.randperm(pos.shape[0], generator=generator)[:count]]
    return pos.float()


def random_positions(size: tuple[int, int], count: int, generator: torch.Generator,
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """`count` positions drawn uniformly (with replacement) among the pixels (those of `mask` if
    given, HxW bool); (P, 2) float (y, x)."""
    h, w = size
    if mask is not None:
        allowed = mask.cpu().reshape(-1).nonzero()[:, 0]
        if allowed.numel() == 0:
            raise PainterlyError("a guidance region is empty at this scale")
        flat = allowed[torch.randint(0, allowed.numel(), (count,), generator=generator)]
    else:
        flat = torch.randint(0, h * w, (count,), generator=generator)
    return torch.stack([flat // w, flat % w], dim=1).float()


def sample_hypercolumns(image: torch.Tensor, features: dict[str, torch.Tensor], layers: Sequence[str],
                        positions: torch.Tensor) -> torch.Tensor:
    """(P, 3 + sum of channels) hypercolumns: the RGB pixel and every layer's features at `positions`.

    `positions` are (y, x) pixel indices of `image`; each layer's map is sampled bilinearly at the same
    physical point (pixel centres aligned across resolutions), so deep, coarse maps are interpolated.
    """
    h, w = image.shape[-2:]
    pos = positions.to(image.device, image.dtype)
    # Normalised grid_sample coordinates with align_corners=False: pixel centre i -> (2 i + 1) / n - 1.
    grid = torch.stack([(2 * pos[:, 1] + 1) / w - 1, (2 * pos[:, 0] + 1) / h - 1], dim=1).view(1, 1, -1, 2)
    columns = [F.grid_sample(image, grid, mode="bilinear", align_corners=False)]
    for layer in layers:
        fmap = features[layer]
        columns.append(F.grid_sample(fmap, grid.to(fmap.dtype), mode="bilinear", padding_mode="border",
                                     align_corners=False))
    out = torch.cat(columns, dim=1)[0, :, 0, :]
    out[3:].mul_(FEATURE_SCALE)  # one pass over the VGG rows instead of one per layer (cat keeps no input)
    # Row-major (P, C): the losses reduce and multiply along channels, which a transposed view makes
    # strided and several times slower (norms, gradient accumulation).
    return out.T.contiguous()


class StyleFeatures:
    """A whole scale's style side: every style image's feature maps, sampled at fresh random positions
    (inside each region's style masks when guided) whenever asked."""

    def __init__(self, extractor: FeatureExtractor, layers: Sequence[str], styles: Sequence[torch.Tensor],
                 generator: torch.Generator, masks: Sequence[Sequence[Optional[torch.Tensor]]]) -> None:
        self.layers = layers
        self.generator = generator
        self.masks = masks  # per region, one HxW bool mask (None: everywhere) per style image
        with torch.no_grad():
            self.styles = [(s, extractor(s, layers)) for s in styles]
            self.moments = [LF.feature_moments(self.sample(STYLE_MOMENT_SAMPLES, r)) for r in range(len(masks))]

    def sample(self, total: int, region: int) -> torch.Tensor:
        """`total` hypercolumns split as evenly as possible over the style images."""
        n = len(self.styles)
        counts = [total // n + (1 if i < total % n else 0) for i in range(n)]
        cols = []
        with torch.no_grad():
            for (image, feats), count, mask in zip(self.styles, counts, self.masks[region]):
                if count:
                    pos = random_positions(tuple(image.shape[-2:]), count, self.generator, mask)
                    cols.append(sample_hypercolumns(image, feats, self.layers, pos))
        return torch.cat(cols, dim=0)


class StylePool:
    """A tiled scale's style side: a fixed set of style hypercolumns per region, read tile by tile, so
    no style image's feature maps are ever held whole (at print sizes they are what does not fit).

    Positions are drawn uniformly over each style image (inside the region's masks when guided), split
    evenly between the images, so the set covers every image evenly; each is read from the tile of a
    one-round tiling (the scale's tile size) in which it lies farthest from a cut edge. Every step then
    draws its sample from the set, as the original matches against a fixed ~5000-point set per scale.
    """

    def __init__(self, extractor: FeatureExtractor, layers: Sequence[str], styles: Sequence[torch.Tensor],
                 generator: torch.Generator, masks: Sequence[Sequence[Optional[torch.Tensor]]], tiling: Tiling,
                 count: int) -> None:
        self.generator = generator
        n = len(styles)
        counts = [count // n + (1 if i < count % n else 0) for i in range(n)]
        columns: list[list[torch.Tensor]] = [[] for _ in masks]
        with torch.no_grad():
            for i, (image, per_image) in enumerate(zip(styles, counts)):
                size = tuple(image.shape[-2:])
                positions = [random_positions(size, per_image, generator, region[i]) for region in masks]
                style_tiling = choose_tiling(tiling.tile, tiling.overlap, 1)
                owners = [assign_to_tiles(pos, size, style_tiling) for pos in positions]
                for b, box in enumerate(style_tiling.boxes(size, 0)):
                    crop = box.crop(image)
                    features = None
                    for r, (pos, owner) in enumerate(zip(positions, owners)):
                        mine = pos[owner == b]
                        if mine.shape[0]:
                            features = features if features is not None else extractor(crop, layers)
                            offset = torch.tensor([box.top, box.left], dtype=mine.dtype)
                            columns[r].append(sample_hypercolumns(crop, features, layers, mine - offset))
            self.pools = [torch.cat(c, dim=0) for c in columns]
            self.moments = [LF.feature_moments(p) for p in self.pools]

    def sample(self, total: int, region: int) -> torch.Tensor:
        """`total` hypercolumns of the region's set, drawn without replacement (all of it if it holds no more)."""
        pool = self.pools[region]
        index = torch.randperm(pool.shape[0], generator=self.generator)[:total]
        return pool[index.to(pool.device)]
