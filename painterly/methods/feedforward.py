"""Trained style networks (Johnson et al. 2016; Dumoulin et al. 2017): one forward pass, any size.

A recipe for the driver with a forward stage instead of an optimisation. The network normalises
every layer with whole-image statistics and computes its convolutions in bands of rows, so a print
size needs only the band's working memory beyond the activations, and gives exactly the picture the
whole-image pass would (no tile seams, no colour shift between tiles).
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..config import CommonConfig, option
from ..errors import PainterlyError, require_file
from ..image import resize
from ..nets.io import bundled_models, is_network_file, load_model, model_architecture, model_path, prepared_model
from ..nets.quantized import Int8Trunk
from ..nets.transformer import Architecture, TransformerNet
from ..recipe import STYLE_MASKS, Recipe, RunContext, register
from ..schedule import Scale, scale_sizes
from ..tiling import Box, Tiling, axis_spans

STRIDE = 4  # the transformer's two stride-2 layers


@dataclass(frozen=True)
class NetworkConfig(CommonConfig):
    """A trained network's run: which model, how its styles mix."""

    model: str = option("", "a bundled model's name (painterly models) or a .safetensors file", default_text="none",
                        group="network", metavar="NAME|FILE", files=True,
                        names=lambda: [p.stem for p in bundled_models()])
    style_weights: Optional[tuple[float, ...]] = option(None, "mix of a multi-style model's styles, e.g. 0.7,0.3,0,0",
                                                        minimum=0, default_text="the first style", group="network",
                                                        metavar="W,W,...")
    band_rows: int = option(256, "rows of a layer computed at once (bounds memory; the result does not change)",
                            minimum=8, group="network", metavar="N")


def load_model_by_name(model: Union[str, os.PathLike]) -> tuple[TransformerNet, dict]:
    """A bundled model by name (painterly models) or a model file: the network and its metadata."""
    return load_model(model_path(os.fspath(model)))


@dataclass(frozen=True)
class NetworkMemory:
    """Peak of one banded pass: the image's own copies (decoded, float, resized, output: 24 bytes a
    pixel), about three full-size activations of the widest layer in the compute precision (five where
    the residual trunk is the widest per pixel: a block holds its skip, its input, its convolution's
    output and the next input), and one band's padded input rows. The 3.0 and the 350 MiB base fit peak RSS measured by
    benchmarks/network_memory.py (slim widths, 1024..6144 px, bf16 and fp32, a fresh process per
    size, session 17's polyphase layers): the estimate is 3-16% above every measurement of a pass that
    hands freed maps back to the kernel. One that keeps them in its heap peaks at up to 1.4x this
    estimate, so the driver lets it only where twice the estimate fits (driver.reuses_heap). The 5.0
    fits widths 4,16,256 and 8,32,512 at 2048 px (fp32 peaks 1357 and 2341 MiB, 0.94x each estimate).
    A tiled pass holds a tile's activations (its statistics found cell by cell, each cell with its
    surround no larger than a tile) and 96 bytes a pixel of whole-image copies: 2048x1536 in 512 and 1024
    px tiles peaked at 539 and 700 MiB (estimates 705 and 805)."""

    widths: tuple[int, int, int]
    band_rows: int
    activation_bytes: int = 4  # 2 where the network runs in bf16
    around: int = 0  # px a tile is run with on each side (the network's reach), its corner on the stride grid

    def scale_bytes(self, size: tuple[int, int], tiling: Optional[Tiling], iterations: int) -> int:
        h, w = size
        if tiling is not None:
            th, tw = tiling.largest_box(size)
            h, w = min(h, th + 2 * self.around + STRIDE), min(w, tw + 2 * self.around + STRIDE)
        c1, c2, c3 = self.widths
        a = self.activation_bytes
        # a tiled run also holds the whole image's canvas, windows and result beside the photo's copies
        images = size[0] * size[1] * (96 if tiling is not None else 24)
        full = images + h * w * a * max(3.0 * c1, 3.0 * c2 / 4, 5.0 * c3 / 16)
        band = 2 * a * (min(h, self.band_rows) + 8) * (w + 8) * max(c1, c2)
        return int(350 * 2**20 + full + band)


class Network(Recipe):
    name = "network"
    config_class = NetworkConfig
    summary = "a trained feed-forward network (painterly train): one pass, about a second"
    accepts = frozenset({STYLE_MASKS})
    optimises = False
    runs_int8 = True  # the residual blocks (nets/quantized)
    needs_styles = False

    def net(self, run: RunContext) -> TransformerNet:
        """The model, channels-last, its weights stored once in the compute precision; shared by the
        runs of this process (nets.io.prepared_model)."""
        if "net" not in run.shared:
            run.shared["net"] = prepared_model(model_path(run.config.model), run.device, run.precision)[0]
            if run.precision == "int8":  # packed now, before any map of the run, so the heap keeps no hole
                int8_trunk(run.shared["net"])
        return run.shared["net"]

    def layers(self, config: NetworkConfig) -> list[str]:
        return []

    def scales(self, config: NetworkConfig, final: tuple[int, int]) -> list[Scale]:
        return [Scale(*size, 1) for size in scale_sizes(final, 1)]  # one scale, refused under 16 px a side

    def check(self, config: NetworkConfig) -> None:
        """A model is named, and a mix of styles has one non-negative weight per style the model holds, not all
        zero."""
        path = model_path(config.model)  # a one-line error where none is named or the name is unknown
        require_file(path, "model")
        if not is_network_file(path):  # the loader's own one-line error, before any count read off a default
            load_model(path)
        styles = model_architecture(path).styles
        if config.style_weights is not None and len(config.style_weights) != styles:
            raise PainterlyError(f"style weights have {len(config.style_weights)} values for a model of {styles} "
                                 f"style(s)")
        if config.style_weights is not None and (min(config.style_weights) < 0 or sum(config.style_weights) <= 0):
            raise PainterlyError("style weights must be non-negative and not all zero")

    def check_masks(self, config: NetworkConfig, masks: int) -> None:
        """One mask per style the model holds, and no style weights beside them."""
        styles = self.architecture(config).styles
        if masks != styles:
            raise PainterlyError(f"{masks} style mask(s) for a model of {styles} style(s)")
        if config.style_weights is not None:
            raise PainterlyError("style masks give each style its own region; they take no style-weights")

    def architecture(self, config: NetworkConfig) -> Architecture:
        """The model's architecture from its file's metadata (the default one while no file is named)."""
        path = model_path(config.model) if config.model else None
        return model_architecture(path) if path is not None and path.is_file() else Architecture()

    def memory(self, config: NetworkConfig, style_hws: Sequence[tuple[int, int]], precision: str) -> NetworkMemory:
        arch = self.architecture(config)
        with torch.device("meta"):  # the shape alone: no weights made
            around = TransformerNet(arch).reach(output=True)
        return NetworkMemory(tuple(arch.widths), config.band_rows, 2 if precision == "bf16" else 4, around)

    def optimizer_name(self, config: NetworkConfig) -> str:
        return "none (one forward pass)"

    # A pass's rate end to end at 1024x1024, 2 x the convolutions' multiply-adds over its time: int8 on the
    # Zen 4 of session 25 (0.84 s), bf16 on the Zen 5 of session 14 (0.64 s), fp32 on the Xeon of session 17
    # (1.11 s).
    PASS_GFLOPS: ClassVar[dict[str, float]] = {"int8": 290.0, "bf16": 380.0, "fp32": 220.0}

    def time_model(self, precision: str) -> str:
        return self.one_pass_time_model("the network's convolutions", self.PASS_GFLOPS[precision], precision)

    def seconds(self, config: NetworkConfig, scale: Scale, precision: str) -> float:
        with torch.device("meta"):  # the shape alone: no weights made
            net = TransformerNet(self.architecture(config))
        whole = 2 * net.multiply_adds() * scale.height * scale.width / (self.PASS_GFLOPS[precision] * 1e9)
        if scale.tiling is None:
            return whole
        return whole * tiled_passes(net, scale.size, scale.tiling)

    def start(self, run: RunContext, k: int, scale: Scale, previous: Optional[torch.Tensor]) -> torch.Tensor:
        return resize(run.content, scale.size)

    def targets(self, run: RunContext, k: int, scale: Scale, style, box: Optional[Box]) -> tuple:
        """(style weights, normalisation statistics, the tile's result). The weights are one mix or,
        from the style masks (one per style), a mix per pixel. For a tile, the statistics are the
        whole image's, found once in cells that fit in a tile with their surround
        (TransformerNet.statistics_in_cells: memory bounded by the tile, about half the layers' worth
        of whole passes in time), so tiles are normalised alike, and the tile is run from the corner of
        the whole image's sampling grid above-left of it (its two stride-2 layers sample every 4th
        pixel; off that grid every pixel of the tile would differ) with the picture around it that its
        pixels depend on (the network's reach), then cut back: the whole pass's pixels."""
        net = self.net(run)
        height, width = scale.size
        padded = (-(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE)  # as a pass pads the picture
        if run.style_masks is None:
            mix = net.style_weights(run.config.style_weights)
        elif run.cache.get("mix_scale") == k:
            mix = run.cache["mix"]
        else:
            mix = run.cache["mix"] = self._mix_map(net, run, scale.size, padded)
            run.cache["mix_scale"] = k
        if box is None:
            return mix, None, None
        if run.cache.get("stats_scale") != k:
            whole = self.targets(run, k, scale, style, None)[0]
            cell = statistics_cell(net, scale.size, scale.tiling)
            image = run.content_at(k, scale.size).to(next(net.parameters()).dtype)
            stats = net.statistics_in_cells(image.contiguous(memory_format=torch.channels_last), whole.to(run.device),
                                            cell, run.config.band_rows, run.progress)
            run.cache.update(stats_scale=k, stats=stats)
        # the tile with the picture around it that its pixels depend on (as far as the image goes), its
        # corner on the stride grid: its pixels are then the whole pass's (tiles alone differed from it
        # by up to 106/255 along their borders, where the network saw reflection for its neighbours)
        # (every edge on the grid, so a per-pixel mix is read on the padded picture's grid as the whole pass reads it)
        around = net.reach(output=True)
        top, left = max(0, box.top - around), max(0, box.left - around)
        top, left = top - top % STRIDE, left - left % STRIDE
        bottom = min(padded[0], -(-(box.top + box.height + around) // STRIDE) * STRIDE)
        right = min(padded[1], -(-(box.left + box.width + around) // STRIDE) * STRIDE)
        weights = mix if mix.dim() == 1 else mix[..., top:bottom, left:right]
        photo = run.content_at(k, scale.size)[..., top:min(bottom, height), left:min(right, width)]
        out = self._pass(run, weights, run.cache["stats"], photo)
        y, x = box.top - top, box.left - left
        return weights, run.cache["stats"], out[..., y:y + box.height, x:x + box.width]

    @staticmethod
    def _mix_map(net: TransformerNet, run: RunContext, size: tuple[int, int], padded: tuple[int, int]) -> torch.Tensor:
        """The style masks as a mix per pixel over the padded picture (1 x styles x H x W, summing to 1),
        read by the whole pass and cut by its tiles alike. Pixels no mask covers mix the styles that have
        a region evenly (an all-black mask leaves its style out there too)."""
        masks = torch.cat([resize(m.expand(-1, 3, -1, -1), size)[:, :1] for m in run.style_masks], dim=1)
        used = (masks.amax(dim=(2, 3), keepdim=True) > 0).to(masks.dtype)
        masks = torch.where(masks.sum(1, keepdim=True) > 0, masks, used / used.sum())
        mix = net.style_weights(masks)
        return F.interpolate(mix, size=padded, mode="bilinear", align_corners=False) if padded != size else mix

    def forward(self, run: RunContext, targets: tuple, image: torch.Tensor) -> torch.Tensor:
        weights, stats, done = targets
        return done if done is not None else self._pass(run, weights, stats, image, run.progress)

    @torch.no_grad()
    def _pass(self, run: RunContext, weights: torch.Tensor, stats: Optional[list], image: torch.Tensor,
              on_layer: Callable[[int, int], None] = lambda done, total: None) -> torch.Tensor:
        """The network over `image` (a tile's own pass reports no layers: it is one step)."""
        net = self.net(run)
        dtype = next(net.parameters()).dtype
        x = image.to(dtype).contiguous(memory_format=torch.channels_last)
        convs = None
        if run.precision == "int8":
            convs = int8_trunk(net)
        return net.run_banded(x, weights, run.config.band_rows, stats, on_layer=on_layer, convs=convs).float()


# a shared network's int8 trunk, made once as the network is (its weights packed; it keeps no state per call)
int8_trunk = functools.lru_cache(maxsize=16)(Int8Trunk)

NETWORK = register(Network())


def statistics_cell(net: TransformerNet, size: tuple[int, int], tiling: Tiling) -> int:
    """The side of the cells a tiled pass finds its statistics in: cells that fit in a tile with their surround,
    no smaller than half a tile (tiles under 4x the reach, 208 px, only where asked for), lest the surrounds
    cost more than the cells."""
    side = min(tiling.largest_box(size))
    return max(side - 2 * net.reach(), side // 2)


def _surrounded_area(length: int, spans: Sequence[tuple[int, int]], around: int) -> int:
    """Pixels along one axis that spans read with `around` px of the picture each side (as far as it goes)."""
    return sum(min(length, end + around) - max(0, start - around) for start, end in spans)


# The statistics pass's multiply-adds run this much slower than a whole pass's (small crops, and in float where
# the pass is int8): fitted to tiled int8 runs on the Zen 4 of session 33, 1.55 (2048 px in 1024 px tiles),
# 1.62 (1024 px in 512) and 2.03 (768 px in 200).
STATISTICS_SLOWDOWN = 1.7


def tiled_passes(net: TransformerNet, size: tuple[int, int], tiling: Tiling) -> float:
    """A tiled pass's time in whole passes: the statistics, each normalised layer's found over cells run from
    the photo up to it with the network's reach around each, then every tile with its reach around it. A fixed
    10x held for 1024 px tiles and was a third of it for 200 px tiles (768 px: 25.5 s, estimated 3.6 s); this
    model gives 0.85-1.08x the times measured (docs/benchmarks.md, session 33)."""
    height, width = size
    costs = [conv.conv.weight.numel() / s ** 2 for conv, s in zip(net.convs, net.layer_scales())]
    up_to_each = sum(itertools.accumulate(costs[:-1])) / sum(costs)  # whole passes' worth, every normalised layer
    reach, cell = net.reach(), statistics_cell(net, size, tiling)
    cells = [[(i, min(length, i + cell)) for i in range(0, length, cell)] for length in (height, width)]
    surround = (_surrounded_area(height, cells[0], reach) * _surrounded_area(width, cells[1], reach)
                / (height * width))
    statistics = STATISTICS_SLOWDOWN * up_to_each * surround
    around = net.reach(output=True)
    tiles = 0.0
    for r in range(tiling.rounds):
        shift = r / tiling.rounds
        rows = axis_spans(height, tiling.tile, tiling.overlap, shift, tiling.packed)
        cols = axis_spans(width, tiling.tile, tiling.overlap, shift, tiling.packed)
        tiles += _surrounded_area(height, rows, around) * _surrounded_area(width, cols, around) / (height * width)
    return statistics + tiles
