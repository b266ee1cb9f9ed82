"""Decoders from a VGG19 layer back to an image: the mirror of the encoder up to relu{b}_1.

Each VGG block is undone by its convolutions in reverse (3x3, reflection padding, ReLU) and a
nearest-neighbour 2x upsampling in place of each pooling, ending in a 3-channel convolution with no
activation. This is the AdaIN decoder (Huang and Belongie 2017) for relu4_1 and the WCT decoders
(Li et al. 2017) for relu1_1 ... relu5_1. `width_divisor` slims every layer but the first (which
reads the encoder's channels): a divisor of 2 has about a quarter of the weights, which is what
makes decoders fast on a CPU and small to ship. `widths` sets the channels at each resolution
instead (full resolution first): a decoder can be wide where the image is small, where a channel
costs a sixteenth of one at full resolution two levels up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PainterlyError
from ..features import VGG19_BLOCKS, layer_stride
from .padding import empty_map, interior, reflect_border, reflect_pad, replicate_border
from .polyphase import upsampled_conv

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# painterly's VGG19 takes Caffe inputs (0..255), so its features are ~58x those of a torchvision-
# normalised VGG; the decoder scales them down first so its first layer starts at a sane magnitude
# (unscaled, the first relu1_1 reconstructions were ~20x off in pixels).
INPUT_SCALE = 1.0 / (255.0 * 0.226)


# (layer index, convolution, its padded input, whether it upsamples first) -> its output; every
# convolution of Decoder.decode goes through it, the picture layer too. An output may be quint8 (an int8
# convolution with its ReLU): the next input is then a quint8 map too.
DecoderConvs = Callable[[int, nn.Conv2d, torch.Tensor, bool], torch.Tensor]


def padded_input(y: torch.Tensor, upsampled: bool) -> torch.Tensor:
    """The next convolution's input: y's ReLU inside a one-pixel border, replicated where that
    convolution upsamples first (its phase convolution reads the edge), reflected otherwise. A quint8 y
    (its ReLU already applied by its int8 convolution) stays quint8, its codes copied exactly."""
    n, c, h, w = y.shape
    x = empty_map((n, c, h + 2, w + 2), y)
    if y.is_quantized:
        interior(x, 1).copy_(y)
    else:
        torch.clamp_min(y, 0, out=interior(x, 1))
    (replicate_border if upsampled else reflect_border)(x, 1)
    return x


def plain_decoder_conv(i: int, conv: nn.Conv2d, padded: torch.Tensor, upsampled: bool) -> torch.Tensor:
    """A decoder convolution as Decoder.decode computes it (before its ReLU)."""
    if upsampled:
        return upsampled_conv(padded, conv.weight, conv.bias, 2 * padded.shape[-2])
    return F.conv2d(padded, conv.weight, conv.bias)


@dataclass(frozen=True)
class DecoderArch:
    """A decoder's shape; stored in every decoder file."""

    level: str = "relu4_1"
    width_divisor: int = 1
    encoder_divisor: int = 1  # the encoder's own width divisor (1: VGG19; tests use slim random VGGs)
    # channels at full, half, quarter ... resolution, one per block below the level's; () takes them
    # from the VGG's widths over both divisors
    widths: tuple[int, ...] = ()
    # px of the picture's reflection around it that the decoder was trained to decode it inside of (train-decoder
    # --margin): inference encodes and decodes the picture so and keeps the inside; 0 for the papers' decoders
    margin: int = 0

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise PainterlyError(f"a decoder's level must be one of {', '.join(LEVELS)}, not '{self.level}'")
        if self.width_divisor < 1 or self.encoder_divisor < 1:
            raise PainterlyError("width divisors must be at least 1")
        if self.widths and (len(self.widths) != self.block - 1 or min(self.widths) < 1):
            raise PainterlyError(f"a {self.level} decoder takes {self.block - 1} channel counts (full resolution "
                                 f"first), not {','.join(map(str, self.widths))}")
        stride = layer_stride(self.level)
        if self.margin < 0 or self.margin % stride:
            raise PainterlyError(f"a {self.level} decoder's margin is a multiple of {stride} px, not {self.margin}")

    @property
    def block(self) -> int:
        return int(self.level[4])

    def channels(self, block: int) -> int:
        """The decoder's channels at VGG block `block`'s resolution (1: full)."""
        if self.widths:
            return self.widths[block - 1]
        return VGG19_BLOCKS[block - 1][0] // (self.encoder_divisor * self.width_divisor)

    def own_widths(self) -> tuple[int, ...]:
        return tuple(self.channels(block) for block in range(1, self.block))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "DecoderArch":
        try:
            return cls(str(data["level"]), int(data["width_divisor"]), int(data.get("encoder_divisor", 1)),
                       tuple(int(w) for w in data.get("widths", ())), int(data.get("margin", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise PainterlyError(f"the decoder's architecture is not readable ({exc})") from None


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, relu: bool = True) -> None:
        super().__init__()
        self.conv, self.relu = nn.Conv2d(cin, cout, 3), relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(reflect_pad(x, 1, 1))
        return x.relu_() if self.relu else x


class Decoder(nn.Module):
    """features at `arch.level` (1xCxhxw) -> image 1x3x(h*2^(b-1))x(w*2^(b-1)), unclamped."""

    def __init__(self, arch: DecoderArch = DecoderArch()) -> None:
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = []
        cin = VGG19_BLOCKS[arch.block - 1][0] // arch.encoder_divisor  # what the encoder hands over
        for block in range(arch.block, 0, -1):
            convs = VGG19_BLOCKS[block - 1][1]
            if block < arch.block:
                # undo this block's later convolutions (the level's own block has only its first)
                for _ in range(convs - 1):
                    layers.append(_Conv(cin, arch.channels(block)))
                    cin = arch.channels(block)
            if block > 1:
                below = arch.channels(block - 1)
                layers.append(_Conv(cin, below))
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                cin = below
        layers.append(_Conv(cin, 3, relu=False))
        self.layers = nn.Sequential(*layers)

    def relu_convs(self) -> list[tuple[int, nn.Conv2d, bool]]:
        """(index in layers, convolution, whether its input is upsampled first) of each convolution with
        a ReLU: those decode() hands to its `convs`."""
        layers = list(self.layers)
        return [(i, layer.conv, i > 0 and isinstance(layers[i - 1], nn.Upsample))
                for i, layer in enumerate(layers) if isinstance(layer, _Conv) and layer.relu]

    def convs(self) -> list[nn.Conv2d]:
        """The convolutions in order, each reading the one before (ReLU and upsampling between)."""
        return [layer.conv for layer in self.layers if isinstance(layer, _Conv)]

    def multiply_adds(self) -> float:
        """Multiply-adds of decoding per pixel of the picture, each convolution at its resolution (as
        the plain forward() computes them; decode()'s phases after an upsampling do fewer)."""
        scale, total = 2 ** (self.arch.block - 1), 0.0
        for layer in self.layers:
            if isinstance(layer, nn.Upsample):
                scale //= 2
            elif isinstance(layer, _Conv):
                total += layer.conv.weight.numel() / scale ** 2
        return total

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features * INPUT_SCALE)

    @torch.no_grad()
    def decode(self, features: torch.Tensor, convs: Optional[DecoderConvs] = None) -> torch.Tensor:
        """forward() for inference, the same picture: each convolution's ReLU is written straight into
        the interior of the next one's padded input, whose border is then filled in place, instead of
        padding by copies; a convolution after a 2x upsampling runs at the low resolution by phases
        (nets/polyphase), so no upsampled map is made. convs: computes each convolution instead
        (nets/quantized runs those with a ReLU in int8, the ReLU fused, handing on quint8 maps)."""
        layers, convs = list(self.layers), convs or plain_decoder_conv
        x = reflect_pad(features * INPUT_SCALE, 1, 1).contiguous(memory_format=torch.channels_last)
        upsampled = False  # whether x is to be upsampled before the next convolution
        for i, layer in enumerate(layers):
            if not isinstance(layer, _Conv):
                continue
            y = convs(i, layer.conv, x, upsampled)
            if not layer.relu:  # the last layer: the picture
                return y
            upsampled = isinstance(layers[i + 1], nn.Upsample)
            x = padded_input(y, upsampled)
        raise PainterlyError("a decoder ends with its picture layer")
