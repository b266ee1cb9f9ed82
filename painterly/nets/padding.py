"""Reflection padding in the map's own dtype.

CPU autocast runs `F.pad(mode="reflect")` in float32: a bf16 map is copied up to float32, padded and
copied back down by the convolution that reads it, and the backward pass does the same. Training the
starry_night network (widths 16,32,128, batch 4, 256 px) spent 0.76 s in the network's forward and
backward with those copies and 0.60 s without them. (Inference casts the networks to bf16 and runs
without autocast, so it never paid them.)

At inference the networks skip the padding copy altogether: each layer writes into the interior of the
next one's padded input, and `reflect_border` fills the border in place (`replicate_border` where the
next layer upsamples first: see nets/polyphase). In int8 (nets/quantized) these maps are quint8 and
stay so: copies and borders between quint8 maps of one scale move their codes exactly, at a quarter of
float32's bytes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def empty_map(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised channels-last map of `like`'s dtype and device; for a quint8 `like`, on its scale
    and zero point, so codes copied in from it keep their values."""
    if like.is_quantized:
        return torch._empty_affine_quantized(shape, scale=like.q_scale(), zero_point=like.q_zero_point(),
                                             dtype=like.dtype, device=like.device, memory_format=torch.channels_last)
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)


def reflect_pad(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """`F.pad(x, (cols, cols, rows, rows), mode="reflect")`, kept out of autocast's float32 list."""
    with torch.autocast(x.device.type, enabled=False):
        return F.pad(x, (cols, cols, rows, rows), mode="reflect")


def interior(padded: torch.Tensor, pad: int) -> torch.Tensor:
    """The unpadded map inside a map padded by `pad` on every side (a view)."""
    return padded if pad == 0 else padded[..., pad:-pad, pad:-pad]


def reflect_border(padded: torch.Tensor, pad: int) -> None:
    """Fill the `pad`-wide border of `padded` in place by reflecting its interior (as F.pad's
    "reflect": the edge row is not repeated); rows first, then columns over the full height, so the
    corners come out as F.pad's."""
    if pad == 0:
        return
    h, w = padded.shape[-2] - 2 * pad, padded.shape[-1] - 2 * pad
    cols = slice(pad, pad + w)
    padded[..., :pad, cols] = padded[..., pad + 1:2 * pad + 1, cols].flip(-2)
    padded[..., pad + h:, cols] = padded[..., h - 1:h - 1 + pad, cols].flip(-2)
    padded[..., :, :pad] = padded[..., :, pad + 1:2 * pad + 1].flip(-1)
    padded[..., :, pad + w:] = padded[..., :, w - 1:w - 1 + pad].flip(-1)


def replicate_border(padded: torch.Tensor, pad: int) -> None:
    """Fill the `pad`-wide border of `padded` in place by repeating its edge rows and columns (as
    F.pad's "replicate"), rows first, then columns over the full height."""
    if pad == 0:
        return
    h, w = padded.shape[-2] - 2 * pad, padded.shape[-1] - 2 * pad
    cols = slice(pad, pad + w)
    padded[..., :pad, cols] = padded[..., pad:pad + 1, cols]
    padded[..., pad + h:, cols] = padded[..., pad + h - 1:pad + h, cols]
    padded[..., :, :pad] = padded[..., :, pad:pad + 1]
    padded[..., :, pad + w:] = padded[..., :, pad + w - 1:pad + w]
