"""What AdaIN and WCT share: encode with VGG19, move the content's feature statistics to the style's,
decode with a trained decoder, level after level (one level for AdaIN, up to five for WCT).

The style side of every level is prepared once per scale (and reused by every frame of a video) as
regions: the whole image, or one region per style mask (a style per region) or per guidance colour
(content regions paired with style regions, unpainted content keeping the whole style). Inside a
region, each style contributes its own transform, mixed by the blend weights (as the AdaIN paper
interpolates), or a style set pools all images' statistics into one.

After the last decoder, an optional colour step (`color_match`) treats the RGB pixels as one more level
with no encoder or decoder: a WCT of the colours (mean and 3x3 covariance) part of the way to the
style's, since a decoder reproduces the statistics it is given only in part (AdaIN's misses them by
11-24% at every layer).

A decoder trained behind a margin (train-decoder --margin; its file says how many px) gets the picture
reflected that far beyond its edges, and the decoded inside is kept: VGG's zero padding then falls
outside the picture, where it painted a band of strokes along flat edges.

The content's statistics are always the whole image's (with a margin, the reflected picture's, as the
decoder was trained). A scale too big for memory is processed
level by level in tiles: the tiles' features are encoded once to accumulate the statistics (each
weighted by its blend window, which sum to one over the image), then transformed and decoded, and
blended into the next level's image. The deep levels' encodings (relu3_1 and below: at most 16 values a
pixel) are kept from the first pass to the second where the plan has room for them (`Scale.reserve`, sized
by `ArbitraryMemory.reserve_bytes`); the others are encoded again. So a tiled result differs from the
whole-image one only where a tile's border changes the encoder's view, and tiles never shift in colour.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..config import MAX_SIZE, CommonConfig, option
from ..errors import PainterlyError, require_file
from ..features import channels_of, layer_stride
from ..image import reflected, resize
from ..nets.decoder import Decoder, DecoderArch
from ..nets.io import DECODERS, decoder_architecture, decoder_path, prepared_decoder
from ..nets.quantized import Int8Decoder
from ..recipe import GUIDANCE, STYLE_MASKS, Recipe, RunContext
from ..schedule import Scale, scale_sizes, vgg_macs
from ..tiling import Box, Tiling, axis_spans, blend_window
from ..transforms import Moments, WctMap, by_regions, wct
from .gatys import MIN_STYLE_SIDE

# a shared decoder's int8 convolutions, made once as the decoder is (weights packed; no state per call)
int8_decoder = functools.lru_cache(maxsize=16)(Int8Decoder)
ENCODER_POOLING = "max"  # the decoders are trained behind a max-pooling VGG19, as in both papers
STYLE = "style"
COLOURS = "rgb"  # the colour step's level: the pixels themselves, transformed with full covariance
# Pixels of surroundings each tile is encoded and decoded with. At 512 px in 256 px tiles (session 25), against
# the whole-image picture: tiles alone differed by 10.0/255 on average (AdaIN; WCT 12.9), tiles on the level's
# stride grid 2.8 (4.3), with 32 px around them 0.51 (0.69), with 64 or 128 px no closer.
CONTEXT = 32
# A level whose features take at most this many float32 values a pixel of the image (relu3_1: 256 channels at a
# 4x4 stride; relu4_1, relu5_1) keeps its tiles' encodings between the statistics and the transform pass, where
# the plan has room: VGG19 to relu4_1 is 241344 multiply-adds a pixel against the bundled AdaIN decoder's 65376.
# The shallower levels' encoders cost little and their features much (relu1_1: 64 values a pixel).
KEPT_VALUES_PER_PIXEL = 16


@dataclass(frozen=True)
class ArbitraryConfig(CommonConfig):
    """Options AdaIN and WCT share."""

    strength: float = option(1.0, "how far the content's features move to the style's: 0 decodes the content's "
                             "own (the decoder's rendering of the photo), 1 is the full transform", minimum=0,
                             maximum=1, group=STYLE, metavar="A")
    style_blend_weights: Optional[tuple[float, ...]] = option(None, "relative weight of each style image, one per STYLE",
                                                              minimum=0, default_text="all equal", group=STYLE,
                                                              metavar="W,W,...")
    style_set: bool = option(False, "treat the STYLE images as one artist's work: their statistics pooled",
                             group=STYLE)
    style_scale: float = option(1.0, "style image size relative to the output (bigger = larger brush strokes)",
                                above=0, maximum=16, group=STYLE, metavar="F")
    style_max_side: Optional[int] = option(512, "encode style images at most this long before --style-scale (the "
                                           "AdaIN paper's 512: statistics of the same strokes, a quarter of the "
                                           "encoding at 1024 px)",
                                           minimum=32, maximum=MAX_SIZE, none_word="none", default_text="512",
                                           group=STYLE,
                                           metavar="PX|none")
    color_match: float = option(0.0, "after decoding, move the colours' mean and covariance this fraction of the way "
                                "to the style's (times --strength); 0 is the paper's method", minimum=0, maximum=1,
                                group=STYLE, metavar="F")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.style_set and self.style_blend_weights is not None:
            raise PainterlyError("style-set pools the style images; it takes no style-blend-weights")


def decoder_file(name: str, bundled: str) -> Path:
    """The decoder a config names: a bundled one's name or a file, or by default the bundled `bundled`
    (a one-line error when this installation lacks it)."""
    if name:
        return decoder_path(name)
    path = DECODERS / f"{bundled}.safetensors"
    if not path.is_file():
        raise PainterlyError(f"no bundled decoder '{bundled}' in this installation; train one with "
                             f"`painterly train-decoder` and pass its file")
    return path


@dataclass
class Region:
    """One region of a level's style side: the content mask (1x1xHxW weights at any size; None: the
    whole image) and the (weight, style moments) whose transforms are mixed inside it."""

    mask: Optional[torch.Tensor]
    styles: list[tuple[float, Moments]]


class FeatureLevel:
    """A step at a VGG layer: the image encoded to it, the recipe's transform, the layer's decoder."""

    def __init__(self, recipe: "ArbitraryRecipe", layer: str) -> None:
        self.recipe, self.name, self.layer = recipe, layer, layer
        self.stride, self.full = layer_stride(layer), recipe.full_covariance

    def encode(self, run: RunContext, image: torch.Tensor) -> torch.Tensor:
        return run.extractor(image, [self.layer])[self.layer].float()

    def transform(self, config, x: torch.Tensor, content: Moments, style: Moments) -> torch.Tensor:
        return self.recipe.transform(config, self.layer, x, content, style)

    def decode(self, run: RunContext, features: torch.Tensor) -> torch.Tensor:
        decoder = self.recipe.decoder(run, self.layer)
        dtype = next(decoder.parameters()).dtype
        features = features.to(dtype).contiguous(memory_format=torch.channels_last)
        convs = None
        if run.precision == "int8":
            convs = int8_decoder(decoder)
        return decoder.decode(features, convs).float().clamp(0, 1)


class ColourStep:
    """The colour step: the pixels themselves as a level with no encoder or decoder, their mean and 3x3
    covariance moved color_match x strength of the way to the style's (a WCT of the colours)."""

    name, layer, stride, full = COLOURS, None, 1, True

    def encode(self, run: RunContext, image: torch.Tensor) -> torch.Tensor:
        return image

    def transform(self, config, x: torch.Tensor, content: Moments, style: Moments) -> torch.Tensor:
        return wct(x, WctMap.between(content, style), config.color_match * config.strength)

    def decode(self, run: RunContext, features: torch.Tensor) -> torch.Tensor:
        return features.clamp(0, 1)


Step = Union[FeatureLevel, ColourStep]


class ArbitraryRecipe(Recipe):
    """A recipe for the encode-transform-decode methods. Subclasses name their levels, whether the
    transform needs full covariances, the transform itself and their decoders."""

    accepts = frozenset({STYLE_MASKS, GUIDANCE})
    optimises = False
    runs_int8 = True  # the VGG encoder (painterly.quantized) and the decoders (nets/quantized)
    full_covariance: bool = False

    # --- what a subclass provides ---------------------------------------------------------------
    def levels(self, config) -> list[str]:
        raise NotImplementedError

    def decoder_file(self, config, level: str) -> Path:
        raise NotImplementedError

    def transform(self, config, level: str, content: torch.Tensor, content_moments: Moments,
                  style_moments: Moments) -> torch.Tensor:
        raise NotImplementedError

    # --- the recipe -----------------------------------------------------------------------------
    def check(self, config) -> None:
        """Each level's decoder file exists (a bundled one missing from this installation: its own line)."""
        for level in dict.fromkeys(self.levels(config)):
            require_file(self.decoder_file(config, level), "decoder")

    def steps(self, config) -> list[Step]:
        """The levels in the order they run, then the colour step where it is asked for."""
        colours = [ColourStep()] if config.color_match > 0 and config.strength > 0 else []
        return [FeatureLevel(self, level) for level in self.levels(config)] + colours

    def layers(self, config) -> list[str]:
        return sorted(set(self.levels(config)), key=lambda l: int(l[4]))

    def pooling(self, config) -> str:
        return ENCODER_POOLING

    def scales(self, config, final: tuple[int, int]) -> list[Scale]:
        return [Scale(*size, 1) for size in scale_sizes(final, 1)]  # one scale, refused under 16 px a side

    def optimizer_name(self, config) -> str:
        return "none (encode, transform, decode)"

    def memory(self, config, style_hws: Sequence[tuple[int, int]], precision: str) -> "ArbitraryMemory":
        margin = max(self._architecture(config, level).margin for level in self.levels(config))
        return ArbitraryMemory(tuple(self.levels(config)), 2 if precision == "bf16" else 4,
                               3.0 if self.full_covariance else 2.0, margin, tuple(tuple(hw) for hw in style_hws),
                               config.style_scale, config.style_max_side)

    def tiled_area(self, config, size: tuple[int, int]) -> tuple[int, int]:
        """The picture reflected by the widest of its levels' margins (a level with a narrower one lays its
        tiles over less)."""
        return self.memory(config, [], "fp32").reflected(size)

    def _architecture(self, config, level: str) -> DecoderArch:
        """A level's decoder's shape from its file's metadata (for plans; the bundled width divisor where the
        file is not readable, which the run itself then reports)."""
        return decoder_architecture(self.decoder_file(config, level)) or DecoderArch(level, 2)

    # End to end, 2 x the multiply-adds of encoding and decoding over the time: AdaIN at 1024x1024 on the 2-core Zen 4 of
    # session 26 (int8 1.36 s idle; bf16 and fp32 1.22x and 2.31x int8's time in one run). WCT's whitening and
    # colouring (a covariance and one CxC map applied: 2 x C^2 multiply-adds a feature pixel) at TRANSFORM_GFLOPS,
    # what is left of WCT's 3.7 s (relu4_1, relu2_1, relu4_1) once its convolutions are counted so.
    PASS_GFLOPS: ClassVar[dict[str, float]] = {"int8": 570.0, "bf16": 465.0, "fp32": 245.0}
    TRANSFORM_GFLOPS: ClassVar[float] = 60.0

    def time_model(self, precision: str) -> str:
        return self.one_pass_time_model("the encoder's and decoders' convolutions", self.PASS_GFLOPS[precision],
                                        precision)

    def seconds(self, config, scale: Scale, precision: str) -> float:
        """Each level's encoding and decoding over the image with its decoder's margin (a tiled one: every
        tile with its surroundings, encoded twice, once for the statistics, unless its encodings are kept),
        its full-covariance transform, and the style images' encoding."""
        size = scale.size
        decoding = {}  # each level's decoder read once (WCT may run a level twice)
        for level in dict.fromkeys(self.levels(config)):
            arch = self._architecture(config, level)
            with torch.device("meta"):  # the shape alone: no weights made
                decoding[level] = Decoder(arch).multiply_adds(), arch.margin
        macs = transform = 0.0
        for level in self.levels(config):
            per_pixel, margin = decoding[level]
            margin = capped_margin(margin, size, layer_stride(level))
            whole = (size[0] + 2 * margin, size[1] + 2 * margin)
            boxes = [whole] if scale.tiling is None else [
                _with_context(box, whole, CONTEXT, 1).size for box in scale.tiling.boxes(whole, 0)]
            pixels = sum(h * w for h, w in boxes)
            encodes = 1 if scale.tiling is None or (scale.reserve and keeps_encodings(level)) else 2
            macs += pixels * (per_pixel + encodes * vgg_macs((1, 1), level))
            if self.full_covariance:
                transform += 2 * channels_of(level) ** 2 * pixels / layer_stride(level) ** 2
        side = round(min(max(size), config.style_max_side or max(size)) * config.style_scale)
        macs += vgg_macs((side, side), self.layers(config)[-1])  # the style images, once
        return 2 * (macs / self.PASS_GFLOPS[precision] + transform / self.TRANSFORM_GFLOPS) / 1e9

    def decoder(self, run: RunContext, level: str) -> Decoder:
        """A level's decoder, its weights stored in the compute precision, shared by the runs of this
        process (nets.io.prepared_decoder)."""
        key = f"decoder {level}"
        if key not in run.shared:
            path = self.decoder_file(run.config, level)
            decoder, meta = prepared_decoder(path, run.device, run.precision)
            trained_for = meta.get("method")  # None: a file that does not say
            if trained_for is not None and trained_for != self.name:
                raise PainterlyError(f"decoder '{path}' was trained for {trained_for}, not {self.name}")
            if decoder.arch.level != level:
                raise PainterlyError(f"the decoder for {level} was trained for {decoder.arch.level}")
            if decoder.arch.encoder_divisor != getattr(run.extractor, "width_divisor", 1):
                raise PainterlyError(f"the decoder for {level} was trained behind another encoder "
                                     f"(width divisor {decoder.arch.encoder_divisor})")
            if run.precision == "int8":  # packed now, before any map of the run, so the heap keeps no hole
                int8_decoder(decoder)
            run.shared[key] = decoder
        return run.shared[key]

    @torch.no_grad()
    def style_targets(self, run: RunContext, k: int, scale: Scale) -> dict[str, list[Region]]:
        """Per level, the regions of the style side (see the module's docstring)."""
        config, styles, guidance = run.config, run.styles, run.guidance
        for level in dict.fromkeys(self.levels(config)):  # a bad decoder file: refused before any encoding
            self.decoder(run, level)
        blend = run.style_blend()
        if run.style_masks is not None and len(run.style_masks) != len(styles):
            raise PainterlyError(f"{len(run.style_masks)} style mask(s) for {len(styles)} style image(s)")
        steps = list({step.name: step for step in self.steps(config)}.values())  # a level run twice: one style side
        sizes = [capped_style_size(scale.size, tuple(s.shape[-2:]), config.style_scale, config.style_max_side)
                 for s in styles]
        resized = [resize(s, hw) for s, hw in zip(styles, sizes)]
        per_style = [self._style_features(run, s, steps) for s in resized]

        def moments(i: int, step: Step, mask: Optional[torch.Tensor] = None) -> Moments:
            f = per_style[i][step.name]
            m = None if mask is None else _mask_at(mask[None, None].float(), f.shape[-2:])
            return Moments.of(f, m, step.full)

        def mix(step: Step, masks: Optional[Sequence[Optional[torch.Tensor]]] = None) -> list[tuple[float, Moments]]:
            masks = masks or [None] * len(styles)
            if config.style_set:
                pooled = moments(0, step, masks[0])
                for i in range(1, len(styles)):
                    pooled = pooled.merged(moments(i, step, masks[i]))
                return [(1.0, pooled)]
            parts = [(w, moments(i, step, masks[i])) for i, w in enumerate(blend) if w > 0]
            parts = [(w, m) for w, m in parts if float(m.count) > 0]  # a style with no pixels in the region
            if not parts:
                raise PainterlyError("a guidance colour is painted on no style image")
            total = float(sum(w for w, _ in parts))
            return [(w / total, m) for w, m in parts]

        side: dict[str, list[Region]] = {}
        for step in steps:
            if run.style_masks is not None:
                weights = _normalised([m.float() for m in run.style_masks])
                side[step.name] = [Region(w, [(1.0, moments(i, step))]) for i, w in enumerate(weights)]
            elif guidance is not None:
                content_masks = [p.content[None, None].float().to(run.device) for p in guidance]
                free = (1 - _resized_sum(content_masks)).clamp_min(0)
                regions = [Region(m, mix(step, [s.to(run.device) for s in pair.styles]))
                           for m, pair in zip(content_masks, guidance)]
                if free.any():
                    regions.append(Region(free, mix(step)))
                side[step.name] = regions
            else:
                side[step.name] = [Region(None, mix(step))]
        return side

    def _style_features(self, run: RunContext, style: torch.Tensor, steps: Sequence[Step]) -> dict[str, torch.Tensor]:
        """Each step's view of a style image: the feature levels from one pass of the encoder."""
        layers = [step.layer for step in steps if step.layer is not None]
        features = {layer: f.float() for layer, f in run.extractor(style, layers).items()} if layers else {}
        return {step.name: style.float() if step.layer is None else features[step.layer] for step in steps}

    def start(self, run: RunContext, k: int, scale: Scale, previous: Optional[torch.Tensor]) -> torch.Tensor:
        return run.content_at(k, scale.size)

    def targets(self, run: RunContext, k: int, scale: Scale, style: dict[str, list[Region]],
                box: Optional[Box]):
        """The style side; for a tile, the whole tiled result, made once per scale level by level."""
        if box is None:
            return style, None
        if run.cache.get("tiled_scale") != k:
            run.cache.update(tiled_scale=k, tiled=self._tiled(run, style, run.content_at(k, scale.size), scale))
        return style, box.crop(run.cache["tiled"])

    @torch.no_grad()
    def forward(self, run: RunContext, targets, image: torch.Tensor) -> torch.Tensor:
        style, done = targets
        if done is not None:
            return done
        size = tuple(image.shape[-2:])
        steps = self.steps(run.config)
        for i, step in enumerate(steps):  # two parts a step for run.progress: encoding, decoding
            margin = self._margin(run, step, size)
            regions = _reflected_regions(style[step.name], size, margin)
            whole = reflected(image, margin)
            padded, masks, _ = self._piece(whole, regions, tuple(whole.shape[-2:]), None, None, step)
            features = step.encode(run, padded)
            stats = [self._content_moments(step, features, m) for m in (masks or [None])]
            run.progress(2 * i + 1, 2 * len(steps))
            decoded = step.decode(run, self._apply(run, step, features, regions, stats, masks))
            image = decoded[..., margin:margin + size[0], margin:margin + size[1]]
            run.progress(2 * i + 2, 2 * len(steps))
        return image

    def _margin(self, run: RunContext, step: Step, size: tuple[int, int]) -> int:
        """Pixels of the picture's reflection a step encodes and decodes it inside of: its decoder's trained
        margin (none for the colour step), at most what the picture can reflect, on the level's stride grid.
        The content's statistics are then the whole reflected map's, as the decoder was trained."""
        if step.layer is None:
            return 0
        return capped_margin(self.decoder(run, step.layer).arch.margin, size, step.stride)

    # --- the pieces -----------------------------------------------------------------------------
    def _piece(self, image: torch.Tensor, regions: list[Region], size: tuple[int, int], box: Optional[Box],
               window: Optional[torch.Tensor], step: Step):
        """The image (or a tile of it) padded by reflection to a multiple of the level's stride, so the
        decoder gives back every pixel in place; the regions' masks and the tile's blend window cut and
        padded alike (the window with zeros: padding adds nothing to the statistics)."""
        stride = step.stride
        piece = image if box is None else box.crop(image)
        h, w = piece.shape[-2:]
        if min(h, w) < 2 * stride:
            raise PainterlyError(f"{'a tile of ' if box is not None else ''}{w}x{h} px is too small for {step.name} "
                                 f"(at least {2 * stride} px a side); use a larger --size or --tile-size")
        pad = (0, -w % stride, 0, -h % stride)
        padded = F.pad(piece, pad, mode="reflect") if any(pad) else piece
        masks = None
        if regions[0].mask is not None:
            masks = []
            for region in regions:
                m = _mask_at(region.mask, size)
                m = m if box is None else box.crop(m)
                masks.append(F.pad(m, pad, mode="replicate") if any(pad) else m)
        if window is not None and any(pad):
            window = F.pad(window, pad)
        return padded, masks, window

    def _content_moments(self, step: Step, features: torch.Tensor, mask: Optional[torch.Tensor],
                         window: Optional[torch.Tensor] = None) -> Moments:
        weights = None if mask is None else _mask_at(mask, features.shape[-2:])
        if window is not None:
            w = _mask_at(window, features.shape[-2:])
            weights = w if weights is None else weights * w
        return Moments.of(features, weights, step.full)

    def _apply(self, run: RunContext, step: Step, features: torch.Tensor, regions: list[Region],
               stats: list[Moments], masks: Optional[list[torch.Tensor]]) -> torch.Tensor:
        def one_region(x: torch.Tensor, r: int) -> torch.Tensor:
            return sum(w * step.transform(run.config, x, stats[r], s) for w, s in regions[r].styles)

        at_features = None if masks is None else [_mask_at(m, features.shape[-2:]) for m in masks]
        return by_regions(features, at_features, one_region)

    def _tiled(self, run: RunContext, style: dict[str, list[Region]], image: torch.Tensor, scale: Scale) -> torch.Tensor:
        """Every level over the whole image (with its decoder's margin of reflection) in tiles: statistics
        from all tiles first, then the transform (from the tiles' encodings kept, where the plan reserved room)."""
        size, tiling = tuple(image.shape[-2:]), scale.tiling
        steps = self.steps(run.config)
        keeps = [bool(scale.reserve) and step.layer is not None and keeps_encodings(step.layer) for step in steps]
        margins = [self._margin(run, step, size) for step in steps]
        tiles = [tiling.boxes((size[0] + 2 * m, size[1] + 2 * m), 0) for m in margins]
        parts, done = 2 * sum(map(len, tiles)), 0  # for run.progress: each tile's encoding, then decoding
        for step, keep, margin, boxes in zip(steps, keeps, margins, tiles):
            regions = _reflected_regions(style[step.name], size, margin)
            picture, image = size, reflected(image, margin)
            size = tuple(image.shape[-2:])
            windows = [blend_window(b, size, tiling.overlap).to(image) for b in boxes]
            # each tile encoded and decoded with its surroundings, on the whole image's grid of the level's
            # stride, so its pixels see what they see in the whole image; only the tile is kept
            grown = [_with_context(box, size, CONTEXT, step.stride) for box in boxes]
            placed = [_placed(window, box, context) for box, window, context in zip(boxes, windows, grown)]
            stats: list[Optional[Moments]] = [None] * len(regions)
            kept: list[Optional[torch.Tensor]] = []  # each tile's encoding, where the level keeps them
            for context, window in zip(grown, placed):
                padded, masks, padded_window = self._piece(image, regions, size, context, window, step)
                features = step.encode(run, padded)
                kept.append(features if keep else None)
                for r in range(len(regions)):
                    m = self._content_moments(step, features, None if masks is None else masks[r], padded_window)
                    stats[r] = m if stats[r] is None else stats[r].merged(m)
                done += 1
                run.progress(done, parts)
            out = torch.zeros_like(image)
            for j, (box, window, context) in enumerate(zip(boxes, windows, grown)):
                padded, masks, _ = self._piece(image, regions, size, context, None, step)
                features, kept[j] = kept[j] if keep else step.encode(run, padded), None  # handed back as used
                decoded = step.decode(run, self._apply(run, step, features, regions, stats, masks))
                top, left = box.top - context.top, box.left - context.left
                box.crop(out).add_(decoded[..., top:top + box.height, left:left + box.width] * window)
                done += 1
                run.progress(done, parts)
            image, size = out[..., margin:margin + picture[0], margin:margin + picture[1]], picture
        return image


def capped_margin(margin: int, size: tuple[int, int], stride: int) -> int:
    """A decoder's margin, at most what a `size` picture can reflect, on the level's stride grid."""
    return min(margin, (min(size) - 1) // stride * stride)


def _reflected_regions(regions: list[Region], size: tuple[int, int], margin: int) -> list[Region]:
    """The regions of a `size` picture over its copy reflected `margin` px beyond its edges."""
    if not margin or regions[0].mask is None:
        return regions
    return [Region(reflected(_mask_at(r.mask, size), margin), r.styles) for r in regions]


def _with_context(box: Box, size: tuple[int, int], margin: int, stride: int) -> Box:
    """`box` grown by `margin` px a side within the image, its top-left corner on the `stride` grid."""
    top = max(0, box.top - margin) // stride * stride
    left = max(0, box.left - margin) // stride * stride
    bottom = min(size[0], box.top + box.height + margin)
    right = min(size[1], box.left + box.width + margin)
    return Box(top, left, bottom - top, right - left)


def _placed(window: torch.Tensor, box: Box, context: Box) -> torch.Tensor:
    """A tile's blend window inside its context box (zero around it)."""
    out = window.new_zeros((*window.shape[:-2], context.height, context.width))
    top, left = box.top - context.top, box.left - context.left
    out[..., top:top + box.height, left:left + box.width] = window
    return out


def _mask_at(mask: torch.Tensor, size) -> torch.Tensor:
    size = tuple(size)
    if tuple(mask.shape[-2:]) == size:
        return mask
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False, antialias=True)


def _resized_sum(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    size = tuple(masks[0].shape[-2:])
    return sum(_mask_at(m, size) for m in masks)


def _normalised(masks: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Style masks as weights summing to one at every pixel (pixels in no mask split evenly)."""
    size = tuple(masks[0].shape[-2:])
    stack = torch.cat([_mask_at(m[:, :1] if m.dim() == 4 else m[None, None], size) for m in masks], dim=1)
    total = stack.sum(1, keepdim=True)
    stack = torch.where(total > 0, stack / total.clamp_min(1e-8), torch.full_like(stack, 1 / len(masks)))
    return list(stack.split(1, dim=1))


def capped_style_size(size: tuple[int, int], style_hw: tuple[int, int], style_scale: float,
                      max_side: Optional[int]) -> tuple[int, int]:
    """A style image's size for an output of `size`: the output's pixel count in the style's shape, at
    most `max_side` long, then times style_scale (the cap first: applied after it, it undid any style
    scale above 1 at 512 px)."""
    h, w = style_hw
    base_h = (size[0] * size[1] * h / w) ** 0.5
    base_w = base_h * w / h
    if max_side is not None and max(base_h, base_w) > max_side:
        shrink = max_side / max(base_h, base_w)
        base_h, base_w = base_h * shrink, base_w * shrink
    new_h, new_w = max(1, round(base_h * style_scale)), max(1, round(base_w * style_scale))
    if min(new_h, new_w) < MIN_STYLE_SIDE:
        raise PainterlyError(f"style-scale {style_scale:g} makes a style image {new_w}x{new_h} px for a "
                             f"{size[1]}x{size[0]} output; raise --style-scale or --size so each side is at least "
                             f"{MIN_STYLE_SIDE} px")
    return new_h, new_w


@dataclass(frozen=True)
class ArbitraryMemory:
    """Peak of encoding and decoding the whole image (no gradients): the widest full-resolution
    activations (VGG's and the decoder's 64-channel maps: two at a time, three for WCT, whose
    whitening and colouring hold centred and coloured copies of a level's features), the image, and a
    base. Measured in fp32 at 1024, 2048 and 3072 px (session 17, a fresh process each): AdaIN 767,
    1972, 3982 MiB against 820, 2080, 4180; WCT 994, 2605, 5374 MiB against 1012, 2851, 5909 (with two
    maps it had been 1.21-1.29x over its estimate). A tiled run also holds the encodings the deep levels keep
    between their two passes over the tiles, where its plan reserved room for them (`reserve_bytes`)."""

    levels: tuple[str, ...]
    bytes_per_value: int
    maps: float = 2.0
    margin: int = 0  # the widest margin of reflection a level's decoder works inside
    style_hws: tuple[tuple[int, int], ...] = ()  # the style images as given (sized per scale: capped_style_size)
    style_scale: float = 1.0
    style_max_side: Optional[int] = 512

    def reflected(self, size: tuple[int, int]) -> tuple[int, int]:
        """The picture with its reflection: the widest margin, at most what the picture can reflect (each level's
        own is no wider: capped_margin on its stride grid)."""
        margin = capped_margin(self.margin, size, 1)
        return size[0] + 2 * margin, size[1] + 2 * margin

    def scale_bytes(self, size: tuple[int, int], tiling: Optional[Tiling], iterations: int) -> int:
        whole = h, w = self.reflected(size)
        if tiling is not None:  # a tile with its surroundings (CONTEXT)
            h, w = (min(side, box + 2 * CONTEXT) for side, box in zip(whole, tiling.largest_box(whole)))
        widest = max(channels_of(l) / layer_stride(l) ** 2 for l in ("relu1_1", *self.levels))
        activations = self.maps * h * w * widest * max(self.bytes_per_value, 4)
        images = 4 * 4 * 3 * whole[0] * whole[1]  # content, canvas and output at the full size, float32
        return int(400 * 2**20 + max(activations, self.style_pass_bytes(size)) + images)

    def style_pass_bytes(self, size: tuple[int, int]) -> float:
        """The style side, made before the content's pass: every style image's levels kept in float32
        at once (their statistics come from them), and the encoder's two full-resolution 64-channel
        maps for the largest. A --style-scale of 4 encodes a style 2048 px long."""
        sizes = [capped_style_size(size, hw, self.style_scale, self.style_max_side) for hw in self.style_hws]
        if not sizes:
            return 0.0
        kept = sum(4 * channels_of(l) / layer_stride(l) ** 2 for l in dict.fromkeys(self.levels))
        largest = max(h * w for h, w in sizes)
        return sum(h * w for h, w in sizes) * kept + 2 * 64 * largest * max(self.bytes_per_value, 4)

    def reserve_bytes(self, size: tuple[int, int], tiling: Tiling) -> int:
        """What a tiled run keeps where its plan has room (Scale.reserve): the largest of the kept levels'
        encodings of every tile (one level's are held at a time)."""
        return max((self.kept_bytes(l, size, tiling) for l in self.levels if keeps_encodings(l)), default=0)

    def kept_bytes(self, level: str, size: tuple[int, int], tiling: Tiling) -> int:
        """A level's float32 encodings of every tile with its surroundings, padded to the level's stride (as
        _with_context grows each box): a grid, so summed along each axis, not box by box."""
        s = layer_stride(level)
        rows, cols = (sum(-(-(min(n, b + CONTEXT) - max(0, a - CONTEXT) // s * s) // s)
                          for a, b in axis_spans(n, tiling.tile, tiling.overlap, 0.0, tiling.packed))
                      for n in self.reflected(size))
        return 4 * channels_of(level) * rows * cols


def keeps_encodings(level: str) -> bool:
    """Whether a tiled run keeps a level's tile encodings from the statistics pass for the transform pass
    (where its plan reserved the room): a deep level's (KEPT_VALUES_PER_PIXEL)."""
    return channels_of(level) / layer_stride(level) ** 2 <= KEPT_VALUES_PER_PIXEL
