"""Tiled optimisation: an image too large to optimise whole is optimised one overlapping tile at a time.

Method-agnostic. A method gives `optimize_tiled` the image at the current scale (the canvas) and a
function that optimises one crop of it against the method's losses; this module decides where the
tiles go and blends each result back.

Why the result is seam-free:
- Tiles overlap, and each optimised tile is written back through a feathered window (0 at a tile
  edge inside the image, rising to 1 over the overlap), so the tile's own border, where VGG sees
  zero padding instead of the neighbouring pixels, never reaches the canvas.
- Tiles run one after another and each starts from the canvas as the previous tiles left it, so a
  tile continues its neighbour's strokes in the overlap instead of painting an independent texture
  that blending would average into a blur.
- The grid shifts by a fraction of a tile between rounds, so no seam stays in one place.
Style targets stay global (the caller computes them from the whole style image); only the content
term is per tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .errors import PainterlyError

# VGG19 needs 16 px per side to reach relu5_1; an overlap narrower than this blends too abruptly.
MIN_OVERLAP = 16


@dataclass(frozen=True)
class Box:
    """A tile's place in the canvas, in pixels."""

    top: int
    left: int
    height: int
    width: int

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """The tile's view of an NxCxHxW tensor (a view: writing to it writes to `image`)."""
        return image[..., self.top:self.top + self.height, self.left:self.left + self.width]


def axis_spans(length: int, tile: int, overlap: int, shift: float = 0.0, packed: bool = False) -> list[tuple[int, int]]:
    """[start, end) spans covering 0..length, each at most `tile` long, neighbours sharing `overlap` px.

    Seams (the overlaps' centres) sit evenly `step` apart; `shift` in [0, 1) moves them by that
    fraction of a step. A seam closer than `overlap` to an end is pulled in to `overlap`, and seams
    closer than `overlap` to each other merge; the step leaves room for both, so no span exceeds `tile`.
    packed=True (a tiling of one round, never shifted) keeps no such room: the fewest spans that fit,
    all of one length.
    """
    if length <= tile:
        return [(0, length)]
    seams = _even_seams(length, tile, overlap) if packed else _shifted_seams(length, tile, overlap, shift)
    starts = [0] + [c - overlap // 2 for c in seams]
    ends = [c - overlap // 2 + overlap for c in seams] + [length]
    return list(zip(starts, ends))


def _shifted_seams(length: int, tile: int, overlap: int, shift: float) -> list[int]:
    """Seams `step` apart moved by `shift` of a step, with room for pulling them in from the ends."""
    n = math.ceil(length / (tile - 2 * overlap))
    step = length / n
    seams: list[int] = []
    for i in range(1, n + 1):
        c = (i - shift) * step
        if c >= length:  # unshifted, the last seam would sit on the far end
            continue
        c = round(min(max(c, overlap), length - overlap))
        if seams and c - seams[-1] < overlap:
            continue
        seams.append(c)
    return seams


def _even_seams(length: int, tile: int, overlap: int) -> list[int]:
    """The fewest seams for spans of at most `tile`: n spans, each `overlap` plus a whole-pixel step of
    (length - overlap) / n rounded down or up, which the tile holds."""
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - overlap) / n) + overlap // 2 for i in range(1, n)]


@dataclass(frozen=True)
class Tiling:
    """How one scale is tiled: tile side, overlap and rounds (passes, each with the grid shifted).

    packed: one round in the fewest tiles that fit (axis_spans); the driver's plan packs every tiling
    of one round. Unpacked, the spans keep the room that shifted rounds need."""

    tile: int
    overlap: int
    rounds: int = 2
    packed: bool = False

    def __post_init__(self) -> None:
        if self.overlap < MIN_OVERLAP:
            raise PainterlyError(f"tile overlap must be at least {MIN_OVERLAP} px, got {self.overlap}")
        if self.tile < 4 * self.overlap:
            raise PainterlyError(f"a {self.tile} px tile is too small for a {self.overlap} px overlap; "
                                 f"tiles must be at least 4x the overlap")
        if self.rounds < 1:
            raise PainterlyError(f"tile rounds must be at least 1, got {self.rounds}")
        if self.packed and self.rounds != 1:
            raise PainterlyError("only a tiling of one round can be packed (its grid never shifts)")

    def boxes(self, size: tuple[int, int], round_index: int) -> list[Box]:
        """The tiles of one round, row by row; round r shifts the grid by r/rounds of a step."""
        shift = (round_index % self.rounds) / self.rounds
        rows = axis_spans(size[0], self.tile, self.overlap, shift, self.packed)
        cols = axis_spans(size[1], self.tile, self.overlap, shift, self.packed)
        return [Box(t, l, b - t, r - l) for t, b in rows for l, r in cols]

    def tile_count(self, size: tuple[int, int]) -> int:
        """Tiles over all rounds."""
        return sum(len(self.boxes(size, r)) for r in range(self.rounds))

    def largest_box(self, size: tuple[int, int]) -> tuple[int, int]:
        """The largest tile's (height, width) over all rounds: what memory must hold.

        From the spans, not the boxes: planning probes sizes up to a million px, where listing every
        box would take seconds per probe."""
        shifts = [(r % self.rounds) / self.rounds for r in range(self.rounds)]
        return tuple(max(b - a for shift in shifts
                         for a, b in axis_spans(length, self.tile, self.overlap, shift, self.packed))
                     for length in size)


def _ramp(length: int, overlap: int, rise: bool, fall: bool) -> torch.Tensor:
    """1-D window: 1 inside, rising from ~0 over the first `overlap` px (if `rise`) and falling over
    the last (if `fall`); a raised-cosine, so the blend has no kink."""
    w = torch.ones(length)
    ramp = torch.sin(0.5 * math.pi * (torch.arange(overlap) + 0.5) / overlap) ** 2
    if rise:
        w[:overlap] *= ramp
    if fall:
        w[length - overlap:] *= ramp.flip(0)
    return w


def blend_window(box: Box, size: tuple[int, int], overlap: int) -> torch.Tensor:
    """1x1xhxw write-back weights for `box`: feathered on sides inside the image, 1 at image borders."""
    rows = _ramp(box.height, overlap, box.top > 0, box.top + box.height < size[0])
    cols = _ramp(box.width, overlap, box.left > 0, box.left + box.width < size[1])
    return (rows[:, None] * cols[None, :])[None, None]


def assign_to_tiles(positions: torch.Tensor, size: tuple[int, int], tiling: Tiling, round_index: int = 0) -> torch.Tensor:
    """For each (y, x) pixel position (P x 2), the index in tiling.boxes(size, round_index) of the tile
    whose blend window is largest there: the tile in which the point lies farthest from a cut edge,
    so features read from that tile alone are least distorted by the zero padding at its border."""
    pos = positions.long().cpu()
    owner = torch.zeros(pos.shape[0], dtype=torch.long)
    best = torch.full((pos.shape[0],), -1.0)
    for i, box in enumerate(tiling.boxes(size, round_index)):
        y, x = pos[:, 0] - box.top, pos[:, 1] - box.left
        inside = (y >= 0) & (y < box.height) & (x >= 0) & (x < box.width)
        weight = torch.full((pos.shape[0],), -1.0)
        weight[inside] = blend_window(box, size, tiling.overlap)[0, 0][y[inside], x[inside]]
        better = weight > best
        owner[better] = i
        best[better] = weight[better]
    return owner


TileOptimizer = Callable[[torch.Tensor, Box, int, int], torch.Tensor]


@torch.no_grad()
def optimize_tiled(canvas: torch.Tensor, tiling: Tiling, optimize_tile: TileOptimizer,
                   start: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Optimise `canvas` (1xCxHxW, changed in place and returned) tile by tile, round by round.

    optimize_tile(crop, box, round_index, tile_index) returns the optimised crop (same shape); it
    runs with gradients enabled. `start` = (round, tile) skips the tiles a resumed run already did.
    """
    size = tuple(canvas.shape[-2:])
    for r in range(start[0], tiling.rounds):
        for t, box in enumerate(tiling.boxes(size, r)):
            if (r, t) < start:
                continue
            with torch.enable_grad():
                result = optimize_tile(box.crop(canvas).clone(), box, r, t)
            w = blend_window(box, size, tiling.overlap).to(canvas)
            view = box.crop(canvas)
            view.mul_(1 - w).add_(result.to(canvas) * w)
    return canvas


def tile_borders(size: tuple[int, int], tiling: Tiling) -> torch.Tensor:
    """HxW bool map of the pixel rows and columns where a tile of any round begins or ends inside
    the image: where a seam would show."""
    border = torch.zeros(size, dtype=torch.bool)
    for r in range(tiling.rounds):
        for box in tiling.boxes(size, r):
            for y in (box.top, box.top + box.height):
                if 0 < y < size[0]:
                    border[y - 1:y + 1, box.left:box.left + box.width] = True
            for x in (box.left, box.left + box.width):
                if 0 < x < size[1]:
                    border[box.top:box.top + box.height, x - 1:x + 1] = True
    return border


def seam_ratio(image: torch.Tensor, border: torch.Tensor, band: int = 2) -> float:
    """Mean image-gradient magnitude within `band` px of tile borders over that elsewhere.

    1.0 means the borders cannot be told apart by gradient; a visible seam (a step) raises it, a
    blurred band (two textures averaged) lowers it. The issue's bar is within 10% (0.9..1.1).
    """
    img = image.detach().float()
    if img.dim() == 4:
        img = img[0]
    dx = torch.zeros(img.shape[-2:])
    dy = torch.zeros(img.shape[-2:])
    dx[:, :-1] = (img[:, :, 1:] - img[:, :, :-1]).abs().mean(0)
    dy[:-1, :] = (img[:, 1:, :] - img[:, :-1, :]).abs().mean(0)
    grad = (dx**2 + dy**2).sqrt()
    near = border.clone()
    if band > 1:
        kernel = 2 * band - 1
        near = torch.nn.functional.max_pool2d(border[None, None].float(), kernel, stride=1,
                                              padding=band - 1)[0, 0] > 0
    far = ~near
    if not near.any() or not far.any():
        raise PainterlyError("the image has no tile borders (or nothing else) to compare")
    return float(grad[near].mean() / grad[far].mean())


# Beyond ~128 px a wider overlap costs time without hiding more: the zero padding at a tile's edge
# changes VGG's features appreciably only within about that distance.
MAX_DEFAULT_OVERLAP = 128


def default_overlap(tile: int) -> int:
    """An eighth of the tile, between MIN_OVERLAP and MAX_DEFAULT_OVERLAP px."""
    return max(MIN_OVERLAP, min(MAX_DEFAULT_OVERLAP, tile // 8))


def choose_tiling(tile: int, overlap: Optional[int], rounds: int, packed: bool = False) -> Tiling:
    """A Tiling with the overlap defaulting to `default_overlap(tile)`."""
    return Tiling(tile, default_overlap(tile) if overlap is None else overlap, rounds, packed)
