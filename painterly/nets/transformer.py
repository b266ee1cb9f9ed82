"""Feed-forward style networks: Johnson et al. (2016) with conditional instance norm (Dumoulin et al. 2017).

    image -> conv9 -> down3 -> down3 -> residual blocks -> up3 -> up3 -> conv9 -> image

Every normalisation is an instance norm whose scale and shift are chosen per style: a network with
one style is Johnson's, one with N styles is Dumoulin's "learned representation". Styles mix by
weights (interpolation), one mix for the whole image or, with a per-pixel weight map, a mix per
region. Upsampling is nearest-neighbour then a convolution (no transposed convolutions: they leave
checkerboards), padding is by reflection (no dark borders).

`forward` normalises each layer with the statistics of the whole input, so a large image can be
run in horizontal bands (`run_banded`) and give the same result as in one piece: the bands only
bound the working memory of each convolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PainterlyError
from .padding import interior, reflect_border, reflect_pad, replicate_border
from .polyphase import picture_conv, upsampled_conv

EPS = 1e-5


@dataclass(frozen=True)
class Architecture:
    """The network's shape; stored in every model file."""

    widths: tuple[int, int, int] = (32, 64, 128)  # channels at full, half and quarter resolution (Johnson's)
    residual_blocks: int = 5
    styles: int = 1

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Architecture":
        try:
            arch = cls(tuple(int(w) for w in data["widths"]), int(data["residual_blocks"]), int(data["styles"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise PainterlyError(f"the model's architecture is not readable ({exc})") from None
        if len(arch.widths) != 3 or min(arch.widths) < 1 or arch.residual_blocks < 0 or arch.styles < 1:
            raise PainterlyError(f"the model's architecture is not valid: {data}")
        return arch


# Style weights: a (N,) vector for the whole image, or a 1xNxHxW map (any size; resized per layer).
StyleWeights = torch.Tensor


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with a learnt (scale, shift) per style, mixed by the style weights."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(styles, channels))
        self.shift = nn.Parameter(torch.zeros(styles, channels))

    def affine(self, weights: StyleWeights, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) broadcastable over a Bx C x H x W map: one mix, or a mix per pixel."""
        scale, shift = self.scale.float(), self.shift.float()
        if weights.dim() == 1:
            return (weights @ scale)[None, :, None, None], (weights @ shift)[None, :, None, None]
        w = F.interpolate(weights, size=size, mode="bilinear", align_corners=False) if weights.shape[-2:] != size \
            else weights
        return torch.einsum("bnhw,nc->bchw", w, scale), torch.einsum("bnhw,nc->bchw", w, shift)

    def forward(self, x: torch.Tensor, weights: StyleWeights,
                stats: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
                out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x normalised and given the style's scale and shift; written into `out` when given (a view
        of the next layer's padded input, at inference)."""
        mean, var = stats if stats is not None else moments(x)
        scale, shift = self.affine(weights.float(), tuple(x.shape[-2:]))
        # one fused pass over the activations: x * a + b, with a and b folded from the statistics
        a = scale * torch.rsqrt(var + EPS)
        b, a = (shift - mean * a).to(x.dtype), a.to(x.dtype)
        return torch.addcmul(b, x, a) if out is None else torch.addcmul(b, x, a, out=out)


# Elements of a map read into float32 at a time when statistics are taken without gradients.
MOMENT_CHUNK = 2**20


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and (biased) variance as float32 Nx C x1x1, accumulated in float32
    (a bf16 var_mean also rounds its result to bf16) as sums of x and x^2: E[x^2] - E[x]^2 takes one
    pass less than var_mean and activations after a convolution keep it well conditioned. On a
    channels-last map the reduction runs over a (N, HW, C) view, which torch vectorises.

    Without gradients (inference) the map is read through one reused float32 buffer of MOMENT_CHUNK
    elements instead of as a whole float32 copy and a whole square: at 1024 px those full-size
    temporaries (fresh pages at every layer) made the statistics a third of the network's time; in
    chunks they take 4-18x less (a float32 map is summed in place, only its squares go through the
    buffer: 0.75-0.85x the time again)."""
    n, c = x.shape[:2]
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        flat, dim = x.permute(0, 2, 3, 1).reshape(n, -1, c), 1
    else:
        flat, dim = x.reshape(n, c, -1), 2
    count = flat.shape[dim]
    if torch.is_grad_enabled() and x.requires_grad:
        whole = flat.float()
        total, squares = whole.sum(dim), (whole * whole).sum(dim)
    else:
        parts = flat.split(max(1, MOMENT_CHUNK // (n * c)), dim)
        buffer = torch.empty(parts[0].shape, dtype=torch.float32, device=x.device)
        total, squares = torch.zeros(n, c, device=x.device), torch.zeros(n, c, device=x.device)
        for part in parts:
            room = buffer.narrow(dim, 0, part.shape[dim])
            chunk = part if part.dtype == torch.float32 else room.copy_(part)  # float32 is read in place
            total += chunk.sum(dim)
            squares += torch.mul(chunk, chunk, out=room).sum(dim)
    mean = total / count
    var = (squares / count - mean * mean).clamp_min_(0)
    return mean.view(n, c, 1, 1), var.view(n, c, 1, 1)


# (layer index, layer, its padded input, band rows) -> its convolution's output
LayerConvs = Callable[[int, "ConvLayer", torch.Tensor, int], torch.Tensor]


class ConvLayer(nn.Module):
    """Reflection pad, convolution (stride 1 or 2), optionally after a nearest 2x upsampling."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: bool = False) -> None:
        super().__init__()
        self.pad, self.stride, self.upsample, self.kernel = kernel // 2, stride, upsample, kernel
        self.conv = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(reflect_pad(x, self.pad, self.pad))


class TransformerNet(nn.Module):
    """The image transformation network. forward(image, weights) -> image, both 1x3xHxW in [0, 1]."""

    def __init__(self, arch: Architecture = Architecture()) -> None:
        super().__init__()
        self.arch = arch
        c1, c2, c3 = arch.widths
        n = arch.styles
        # (layer, norm, relu) in order; a residual block is two entries with the skip around them.
        self.convs = nn.ModuleList([ConvLayer(3, c1, 9), ConvLayer(c1, c2, 3, 2), ConvLayer(c2, c3, 3, 2)])
        for _ in range(arch.residual_blocks):
            self.convs.extend([ConvLayer(c3, c3, 3), ConvLayer(c3, c3, 3)])
        self.convs.extend([ConvLayer(c3, c2, 3, upsample=True), ConvLayer(c2, c1, 3, upsample=True), ConvLayer(c1, 3, 9)])
        self.norms = nn.ModuleList([ConditionalInstanceNorm(c.conv.out_channels, n) for c in self.convs[:-1]])

    def style_weights(self, weights: Union[None, Sequence[float], torch.Tensor]) -> StyleWeights:
        """Weights as a tensor: None -> the first (or only) style; a list -> normalised to sum 1; a
        1xNxHxW map -> normalised at each pixel, pixels no map covers mixing the styles evenly."""
        n = self.arch.styles
        if weights is None:
            return F.one_hot(torch.tensor(0), n).float()
        w = torch.as_tensor(weights, dtype=torch.float32)
        if w.dim() == 1:
            if w.numel() != n:
                raise PainterlyError(f"style weights have {w.numel()} values for a model of {n} style(s)")
            if (w < 0).any() or float(w.sum()) <= 0:
                raise PainterlyError("style weights must be non-negative and not all zero")
            return w / w.sum()
        if w.dim() != 4 or w.shape[:2] != (1, n):
            raise PainterlyError(f"a style weight map must be 1x{n}xHxW, got {tuple(w.shape)}")
        total = w.sum(1, keepdim=True)
        return torch.where(total > 0, w / total.clamp_min(1e-8), torch.full_like(w, 1 / n))  # no mask: an even mix

    def forward(self, image: torch.Tensor, weights: Optional[StyleWeights] = None) -> torch.Tensor:
        return self.run(image, self.style_weights(None) if weights is None else weights, lambda layer, x: layer(x))

    def layer_scales(self) -> list[int]:
        """Each convolution's output grid, as the image pixels per output pixel along a side."""
        scale, scales = 1, []
        for conv in self.convs:
            scale = scale * conv.stride // (2 if conv.upsample else 1)
            scales.append(scale)
        return scales

    def multiply_adds(self) -> float:
        """Multiply-adds of a pass per pixel of the image, each convolution on its output grid."""
        return sum(c.conv.weight.numel() / s ** 2 for c, s in zip(self.convs, self.layer_scales()))

    def reach(self, output: bool = False) -> int:
        """Image pixels around a pixel that the last normalised layer's value there depends on (each
        convolution's padding on the grid it reads), rounded up to the 4-pixel sampling grid; with
        `output`, the picture's pixel (the last convolution too): what a tile needs around it."""
        inputs = [1] + self.layer_scales()[:-1]  # the grid each convolution's input is on
        convs = self.convs if output else self.convs[:-1]
        reach = sum(conv.pad * (s // 2 if conv.upsample else s) + conv.upsample  # an upsampling reads on the finer grid
                    for conv, s in zip(convs, inputs))
        return -(-reach // 4) * 4

    @torch.no_grad()
    def statistics_in_cells(self, image: torch.Tensor, weights: StyleWeights, cell: int, band_rows: int,
                            on_cell: Callable[[int, int], None] = lambda done, total: None
                            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each normalisation's whole-image (mean, var), as run_banded's `record` holds them, computed
        cell by cell in memory bounded by a cell and its surround: layer by layer, each cell (a
        multiple of 4 pixels a side) is run from the photo, with its `reach()` around it, up to that
        layer's convolution under the statistics found so far, and its part of the map summed. One
        mix of styles gives the whole pass's statistics to float rounding; a per-pixel weight map nearly
        (each cell's map is resized to the coarser layers from its own crop). The cost is about half the
        layers' worth of whole passes; on_cell(done, total) is called after each cell of each layer."""
        x = _to_multiple_of_4(image)
        h, w = x.shape[-2:]
        if weights.dim() == 4:  # stretched over the padded image, as the whole pass's first layer reads it
            weights = F.interpolate(weights, size=(h, w), mode="bilinear", align_corners=False)
        cell, halo, scales = max(4, cell // 4 * 4), self.reach(), self.layer_scales()
        cells = [(top, left) for top in range(0, h, cell) for left in range(0, w, cell)]
        stats: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer in range(len(self.norms)):
            s = scales[layer]
            total = squares = None
            for j, (top, left) in enumerate(cells):
                bottom, right = min(h, top + cell), min(w, left + cell)
                rows = slice(max(0, top - halo), min(h, bottom + halo))
                cols = slice(max(0, left - halo), min(w, right + halo))
                part = weights if weights.dim() == 1 else weights[..., rows, cols]
                y = self.run_banded(x[..., rows, cols], part, band_rows, stats, until=layer)
                inner = y[..., (top - rows.start) // s:(bottom - rows.start) // s,
                          (left - cols.start) // s:(right - cols.start) // s]
                mean, var = (t.double().sum(0).flatten() for t in moments(inner))  # chunked: no copy of the map
                n = inner.shape[-2] * inner.shape[-1]
                sums, sq = mean * n, (var + mean * mean) * n
                total, squares = (sums, sq) if total is None else (total + sums, squares + sq)
                on_cell(layer * len(cells) + j + 1, len(self.norms) * len(cells))
            count = x.shape[0] * (h // s) * (w // s)
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0)
            stats.append((mean.float().view(1, -1, 1, 1), var.float().view(1, -1, 1, 1)))
        return stats

    def block_edges(self, i: int) -> tuple[bool, bool]:
        """Whether layer i starts a residual block (its input is the skip) and whether it ends one (the
        skip is added to its normalised output instead of a ReLU)."""
        in_block = 3 <= i < 3 + 2 * self.arch.residual_blocks
        return in_block and (i - 3) % 2 == 0, in_block and (i - 3) % 2 == 1

    def run(self, image: torch.Tensor, weights: StyleWeights,
            apply: Callable[[ConvLayer, torch.Tensor], torch.Tensor],
            stats: Optional[list] = None, record: Optional[list] = None) -> torch.Tensor:
        """The forward pass with `apply(conv, x)` computing each convolution (whole, or in bands).

        stats: each normalisation's (mean, var) to use instead of the input's own (a tile normalised
        with the whole image's); record: a list that receives each normalisation's (mean, var)."""
        weights = weights.to(image.device)
        h, w = image.shape[-2:]
        x = _to_multiple_of_4(image)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            starts_block, ends_block = self.block_edges(i)
            if starts_block:
                skip = x
            y = apply(conv, x)
            layer_stats = stats[i] if stats is not None else moments(y)
            if record is not None:
                record.append(layer_stats)
            x = norm(y, weights, layer_stats)
            if ends_block:
                x = x.add_(skip)  # in place: the normalisation's fresh output (fewer full-size temporaries)
            else:
                x = x.relu_()
        return apply(self.convs[-1], x)[..., :h, :w]

    @torch.no_grad()
    def run_banded(self, image: torch.Tensor, weights: StyleWeights, band_rows: int,
                   stats: Optional[list] = None, record: Optional[list] = None,
                   on_layer: Callable[[int, int], None] = lambda done, total: None,
                   until: Optional[int] = None, convs: Optional[LayerConvs] = None) -> torch.Tensor:
        """forward() with every convolution computed in horizontal bands of at most `band_rows` output
        rows: the same result (normalisation statistics stay whole-image), bounded working memory.

        Each normalisation writes straight into the interior of the next layer's reflection-padded
        input and only the border is filled after, so no layer copies its whole input to pad it (a
        fifth of the fp32 time at 1024 px went to those copies); the bands are then plain row ranges
        of that padded input. A layer that upsamples first is computed at the low resolution from its
        input padded by replication (nets/polyphase), so no upsampled map is ever made. on_layer(done,
        total) is called after each layer. until: stop at that layer's convolution and return its
        output, before normalisation (for its statistics; `stats` then need only the layers before).
        convs: computes each convolution that does not upsample instead of padded_conv_in_bands
        (nets/quantized runs some in int8)."""
        weights = weights.to(image.device)
        h, w = image.shape[-2:]
        first = self.convs[0]
        x = reflect_pad(_to_multiple_of_4(image), first.pad, first.pad).contiguous(memory_format=torch.channels_last)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            starts_block, ends_block = self.block_edges(i)
            if starts_block:
                skip = interior(x, conv.pad)
            if conv.upsample:  # x is the low-resolution input, padded by replication
                y = upsampled_conv(x, conv.conv.weight, conv.conv.bias, band_rows)
            else:
                y = (convs or _plain_convs)(i, conv, x, band_rows)
            if i == until:
                return y
            layer_stats = stats[i] if stats is not None else moments(y)
            if record is not None:
                record.append(layer_stats)
            following = self.convs[i + 1]
            pad = following.pad
            x = torch.empty((*y.shape[:2], y.shape[2] + 2 * pad, y.shape[3] + 2 * pad), dtype=y.dtype,
                            device=y.device, memory_format=torch.channels_last)
            inside = interior(x, pad)
            norm(y, weights, layer_stats, out=inside)
            if ends_block:
                inside.add_(skip)
            else:
                inside.relu_()
            (replicate_border if following.upsample else reflect_border)(x, pad)
            on_layer(i + 1, len(self.convs))
        last = self.convs[-1].conv
        out = picture_conv(x, last.weight, last.bias, band_rows)[..., :h, :w]
        on_layer(len(self.convs), len(self.convs))
        return out


def padded_conv_in_bands(layer: ConvLayer, padded: torch.Tensor, band_rows: int) -> torch.Tensor:
    """layer's convolution (no upsampling) of an input already padded by layer.pad, band by band:
    each band reads a plain row range of it."""
    k, s = layer.kernel, layer.stride
    h_out = (padded.shape[-2] - k) // s + 1
    if h_out <= band_rows:
        return F.conv2d(padded, layer.conv.weight, layer.conv.bias, stride=s)
    bands = [F.conv2d(padded[..., top * s:(min(h_out, top + band_rows) - 1) * s + k, :], layer.conv.weight,
                      layer.conv.bias, stride=s) for top in range(0, h_out, band_rows)]
    return torch.cat(bands, dim=-2)


def _plain_convs(i: int, layer: ConvLayer, padded: torch.Tensor, band_rows: int) -> torch.Tensor:
    return padded_conv_in_bands(layer, padded, band_rows)


def _to_multiple_of_4(image: torch.Tensor) -> torch.Tensor:
    """The image padded by reflection to sides that are multiples of 4 (two stride-2 layers); the
    output is cropped back after."""
    h, w = image.shape[-2:]
    return F.pad(image, (0, -w % 4, 0, -h % 4), mode="reflect") if (h % 4 or w % 4) else image
