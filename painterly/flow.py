"""Optical flow for video: OpenCV's DIS flow (no learnt weights to download), warping, and the
reliability masks of Ruder, Dosovitskiy and Brox (2016).

Flow here is backward in the sense warping needs: `flow(a, b)` gives, for every pixel of b, where it
came from in a, so `warp(a, flow(a, b))` lines a up with b. A pixel of b is unreliable where the flow
there and the flow back disagree (disocclusion; |w + ŵ|² ≥ 0.01(|w|² + |ŵ|²) + 0.5) or on a motion
boundary (|∇u|² + |∇v|² ≥ 0.01|w|² + 0.002), and where it came from outside the frame.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import PainterlyError
from .image import ImageLike, as_tensor


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PainterlyError("video needs OpenCV: pip install 'painterly[video]'") from None
    return cv2


def _grey(image: torch.Tensor) -> np.ndarray:
    """A 1x3xHxW [0, 1] tensor as the 8-bit grey image DIS reads, upsampled for DIS when small."""
    cv2 = _cv2()
    rgb = (image[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    scale = _flow_scale(h, w)
    return cv2.resize(grey, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC) if scale > 1 else grey


# DIS matches 8 px patches over a pyramid; frames smaller than this are upsampled for it (at 36x64 px
# the flow of a 2 px pan came out 25% short; upsampled to 256 px, within 3%).
MIN_FLOW_SIDE = 256


def _flow_scale(h: int, w: int) -> int:
    return max(1, -(-MIN_FLOW_SIDE // max(h, w)))


def _dis(grey_source: np.ndarray, grey_target: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setUseSpatialPropagation(True)
    h, w = size
    field = dis.calc(grey_target, grey_source, None)  # for each target pixel, its offset into source
    scale = _flow_scale(h, w)
    if scale > 1:
        field = cv2.resize(field, (w, h), interpolation=cv2.INTER_AREA) / scale
    return torch.from_numpy(field).permute(2, 0, 1)[None].float()


def flow(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1x2xHxW (dx, dy) in pixels: target pixel (x, y) came from source (x + dx, y + dy)."""
    return _dis(_grey(source), _grey(target), tuple(target.shape[-2:]))


def tracked(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(flow(source, target), its reliability mask): both directions from one grey conversion each."""
    grey_source, grey_target = _grey(source), _grey(target)
    size = tuple(target.shape[-2:])
    forward = _dis(grey_source, grey_target, size)
    return forward, reliability(forward, _dis(grey_target, grey_source, size))


@functools.lru_cache(maxsize=8)
def _pixel_grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) coordinates of every pixel, made once per frame size (read-only)."""
    return torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")


def warp(image: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """`image` (NxCxHxW) sampled at (x + dx, y + dy) for every pixel: bilinear, borders clamped."""
    n, _, h, w = image.shape
    ys, xs = _pixel_grid(h, w)
    x = (xs + offsets[:, 0].to(torch.float32)) * (2 / max(w - 1, 1)) - 1
    y = (ys + offsets[:, 1].to(torch.float32)) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack([x, y], dim=-1).to(image.dtype)
    return F.grid_sample(image, grid.expand(n, -1, -1, -1), mode="bilinear", padding_mode="border", align_corners=True)


def reliability(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """1x1xHxW mask (1 reliable, 0 not) for the pixels of the frame `forward` warps into.

    forward: flow(previous, current), offsets from the current frame into the previous one;
    backward: flow(current, previous), the other way. Ruder et al.'s forward-backward consistency
    and motion-boundary tests.
    """
    back_at = warp(backward, forward)  # the backward flow at the place each current pixel came from
    total = forward + back_at
    lhs = (total ** 2).sum(1, keepdim=True)
    rhs = 0.01 * ((forward ** 2).sum(1, keepdim=True) + (back_at ** 2).sum(1, keepdim=True)) + 0.5
    consistent = lhs < rhs
    gy, gx = torch.gradient(forward[0], dim=(1, 2))
    gradient = (gx ** 2 + gy ** 2).sum(0, keepdim=True)[None]
    boundary = gradient >= 0.01 * (forward ** 2).sum(1, keepdim=True) + 0.002
    return (consistent & ~boundary & _inside(forward)).float()


def _inside(offsets: torch.Tensor) -> torch.Tensor:
    """Pixels whose source lies inside the other frame (what came in over the border is not reliable)."""
    _, _, h, w = offsets.shape
    ys, xs = _pixel_grid(h, w)
    x, y = xs + offsets[:, 0], ys + offsets[:, 1]
    return ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1))[:, None]


def warping_error(frames: Sequence[ImageLike], outputs: Sequence[ImageLike]) -> float:
    """Lai et al. (2018)'s temporal warping error: the mean over frame pairs of
    Σ M·(O_t − warp(O_{t+1}))² / Σ M, with pixels in [0, 1] and flow and mask from the input frames.
    Frames and outputs: images as stylize() takes them (tensors, PIL images, arrays, paths), one each."""
    if len(frames) < 2:
        raise PainterlyError("the warping error needs at least two frames")
    if len(outputs) != len(frames):
        raise PainterlyError(f"the warping error needs an output per frame: {len(frames)} frames, "
                             f"{len(outputs)} outputs")
    frames = [as_tensor(f, f"frame {i}") for i, f in enumerate(frames, 1)]
    outputs = [as_tensor(o, f"output {i}") for i, o in enumerate(outputs, 1)]
    if any(f.shape != frames[0].shape or o.shape != frames[0].shape for f, o in zip(frames, outputs)):
        raise PainterlyError("the warping error needs frames and outputs all of one size")
    errors = []
    for t in range(len(frames) - 1):
        to_next, mask = tracked(frames[t + 1], frames[t])   # offsets from frame t into frame t+1
        warped = warp(outputs[t + 1], to_next)
        squared = ((outputs[t] - warped) ** 2).sum(1, keepdim=True)
        errors.append(float((mask * squared).sum() / mask.sum().clamp_min(1)))
    return float(np.mean(errors))


def random_motion(batch: int, size: tuple[int, int], generator: torch.Generator, shift: float = 0.04,
                  zoom: float = 0.03, turn_degrees: float = 2.0) -> torch.Tensor:
    """Sampling grids (Nx HxWx2, for grid_sample) of small random camera motions: a shift of up to
    `shift` of the frame, a zoom of up to `zoom` and a turn of up to `turn_degrees`: a next frame with a
    known flow, made from a still photo (for training networks to be consistent on video)."""
    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(batch, generator=generator) * 2 - 1) * limit

    angle = uniform(turn_degrees) * (torch.pi / 180)
    scale = 1 + uniform(zoom)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, uniform(2 * shift)], 1),
                         torch.stack([sin, cos, uniform(2 * shift)], 1)], 1)
    return F.affine_grid(theta, [batch, 1, *size], align_corners=False)


def move(image: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`image` seen through the motion `grid`, and the 1-channel mask of pixels that stayed in view.
    What comes in over the border repeats the edge (not black, which would shift a network's instance
    norm statistics and so its whole output)."""
    moved = F.grid_sample(image, grid.to(image), mode="bilinear", padding_mode="border", align_corners=False)
    inside = ((grid.abs() <= 1).all(-1, keepdim=True)).permute(0, 3, 1, 2).to(image)
    return moved, inside
