"""Convolutions rearranged by polyphase decomposition: the same results at inference in fewer or
better-vectorised multiply-adds.

`upsampled_conv`: a nearest-neighbour 2x upsampling followed by a 3x3 reflection-padded convolution,
computed at the low resolution. Each output pixel of that pair reads a 2x2 window of the low-resolution
map: along each axis, an even output row 2m sees low rows (m-1, m) with taps (w0, w1 + w2) and an odd
one 2m+1 sees (m, m+1) with taps (w0 + w1, w2); at the borders the upsampled map's reflection is the
low map's replication. So the four output phases are one 2x2 convolution with four times the output
channels over the low map padded by replication, interleaved after: 4/9 of the multiply-adds and no
upsampled map ever made (at 1024 px the networks' two upsampling layers took 2.0-2.5x as long done the
plain way, gathering and padding the upsampled rows included).

`picture_conv`: a wide convolution to few channels (the style network's last layer, 9x9 from 16
channels to 3) vectorises badly, its 3 outputs filling a fifth of a 16-lane register: 58 GFLOP/s on
a CPU that runs a 128-channel 3x3 at 285. Read as 4x4 blocks (space to depth) it becomes a 3x3
convolution from 16 x 16 channels to 3 x 16 at a quarter of the resolution, each block's output pixels
as channels: 1.8x the multiply-adds, 0.6x the time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .padding import empty_map

# PHASE_TAPS[phase, low tap, 3x3 tap]: which of the 3 kernel taps along an axis fall on each of the
# 2 low-resolution rows an output row of that phase reads.
PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
                           [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def phase_weights(weight: torch.Tensor) -> torch.Tensor:
    """A Cout x Cin x 3x3 kernel as the (4 Cout) x Cin x 2x2 kernel of its four output phases,
    ordered (row phase, column phase, output channel); summed in float32 at least."""
    cout, cin = weight.shape[:2]
    dtype = torch.promote_types(weight.dtype, torch.float32)
    taps = PHASE_TAPS.to(weight.device, dtype)
    phases = torch.einsum("yak,xbl,oikl->yxoiab", taps, taps, weight.to(dtype))
    return phases.reshape(4 * cout, cin, 2, 2).to(weight.dtype)


def upsampled_conv(padded: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, band_rows: int) -> torch.Tensor:
    """conv3x3(reflection pad 1(nearest 2x upsampling(x))) from `padded`, x with a 1-pixel border
    filled by replication (`replicate_border`); computed `band_rows` output rows at a time, so only a
    band of the four phases is ever held besides the channels-last output."""
    n, _, h, w = padded.shape
    h, w = h - 2, w - 2
    cout = weight.shape[0]
    kernel, shift = phase_weights(weight), bias.repeat(4)
    out = torch.empty((n, cout, 2 * h, 2 * w), dtype=padded.dtype, device=padded.device,
                      memory_format=torch.channels_last)
    rows_out = out.permute(0, 2, 3, 1).view(n, h, 2, w, 2, cout)  # (row, row phase, column, column phase)
    rows = max(1, band_rows // 2)
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        _write_phases(rows_out[:, top:bottom], F.conv2d(padded[..., top:bottom + 2, :], kernel, shift))
    return out


def interleave_phases(phases: torch.Tensor) -> torch.Tensor:
    """What upsampled_conv makes of its phase convolution's whole output (N x 4C x (H+1) x (W+1),
    the phases ordered as phase_weights orders them): the N x C x 2H x 2W map, channels-last (quint8
    phases give a quint8 map, their codes moved as they are)."""
    n, c4, h, w = phases.shape
    cout, h, w = c4 // 4, h - 1, w - 1
    out = empty_map((n, cout, 2 * h, 2 * w), phases)
    _write_phases(out.permute(0, 2, 3, 1).view(n, h, 2, w, 2, cout), phases)
    return out


def _write_phases(rows_out: torch.Tensor, phases: torch.Tensor) -> None:
    """Each output phase's pixels from the phase convolution's output (one row and column more than
    the band: a phase's window starts at its offset) into rows_out (row, row phase, column, column
    phase, channel)."""
    rows, w, cout = rows_out.shape[1], rows_out.shape[3], rows_out.shape[5]
    phases = phases.permute(0, 2, 3, 1)
    for py in range(2):
        for px in range(2):
            first = (2 * py + px) * cout
            rows_out[:, :, py, :, px, :] = phases[:, py:py + rows, px:px + w, first:first + cout]


def _block_taps(kernel: int, factor: int) -> torch.Tensor:
    """taps[a, q, r, i] = 1 where kernel tap i joins output offset a (in its block) to input offset r of
    the block q blocks on: i = factor * q + r - a."""
    blocks = (kernel + 2 * factor - 2) // factor
    a, q, r, i = torch.meshgrid(*(torch.arange(n) for n in (factor, blocks, factor, kernel)), indexing="ij")
    return (i == factor * q + r - a).float()


def block_weights(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """A Cout x Cin x k x k kernel (stride 1, no padding) as the kernel of the same convolution on
    factor x factor blocks: (Cout f f) x (Cin f f) x n x n, channels ordered as pixel_(un)shuffle's."""
    cout, cin, k = weight.shape[:3]
    dtype = torch.promote_types(weight.dtype, torch.float32)
    taps = _block_taps(k, factor).to(weight.device, dtype)
    blocked = torch.einsum("aqri,btsj,ocij->oabcrsqt", taps, taps, weight.to(dtype))
    n = taps.shape[1]
    return blocked.reshape(cout * factor * factor, cin * factor * factor, n, n).to(weight.dtype)


BLOCK = 4  # the picture layer's block side: divides the network's sides (multiples of 4) and its padding (4)


def picture_conv(padded: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, band_rows: int) -> torch.Tensor:
    """F.conv2d(padded, weight, bias) for a map whose sides and padding are multiples of BLOCK, in blocks
    (space to depth), `band_rows` output rows at a time."""
    n, _, hp, wp = padded.shape
    k = weight.shape[-1]
    h, w = hp - k + 1, wp - k + 1
    if h % BLOCK or w % BLOCK or hp % BLOCK or wp % BLOCK:
        raise ValueError(f"picture_conv needs sides and padding in multiples of {BLOCK}, got {hp}x{wp} padded "
                         f"for a {k}x{k} kernel")
    kernel, shift = block_weights(weight, BLOCK), bias.repeat_interleave(BLOCK * BLOCK)
    reach = kernel.shape[-1] - 1  # extra block rows a band of blocks reads
    out = torch.empty((n, weight.shape[0], h, w), dtype=padded.dtype, device=padded.device,
                      memory_format=torch.channels_last)
    rows = max(1, band_rows // BLOCK)
    for top in range(0, h // BLOCK, rows):
        bottom = min(h // BLOCK, top + rows)
        blocks = F.pixel_unshuffle(padded[..., top * BLOCK:(bottom + reach) * BLOCK, :], BLOCK)
        out[..., top * BLOCK:bottom * BLOCK, :] = F.pixel_shuffle(F.conv2d(blocks, kernel, shift), BLOCK)
    return out
