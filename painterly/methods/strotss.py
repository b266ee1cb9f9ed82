"""STROTSS: Kolkin, Salavon & Shakhnarovich, "Style Transfer by Relaxed Optimal Transport and
Self-Similarity" (CVPR 2019).

A recipe over the shared parts: one VGG19 pass per step, hypercolumns bilinearly sampled at a
fresh set of positions every step, the relaxed-EMD / moment / palette style terms and the
self-similarity content term (losses.functional), a Laplacian-pyramid parameterisation optimised
with RMSprop, coarse-to-fine with the content weight halved at every finer scale.

Layer mapping. The paper reads VGG16 (torchvision weights, max pooling) at relu1_1, relu1_2,
relu2_1, relu2_2, relu3_1, relu3_2, relu3_3, relu4_3 and relu5_3, plus the RGB pixels: a
3 + 64 + 64 + 128 + 128 + 256 + 256 + 256 + 512 + 512 = 2179-channel hypercolumn. VGG19 has layers of
the same names and widths (its blocks 3-5 have one convolution more), so painterly reads the very
same names from its VGG19; `layers` changes them.

Feature scale. painterly's VGG19 takes Caffe inputs (0..255, mean-subtracted), the original takes
torchvision's (mean/std-normalised [0, 1]): activations come out about 255 x 0.226 = 57.6 times
larger. The cosine terms do not care, but the moment term and the weight of the RGB channels inside
each hypercolumn do, so VGG features are divided by that factor (FEATURE_SCALE) first. That matches the
input scale only: the two are differently trained networks, so per-layer scales still differ, and the
moment term (covariances are quadratic in the scale) is the one term that feels it; the formulas
themselves follow the original's (docs/benchmarks.md, "The moment term against the original code").
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..checkpoint import Checkpointer, fingerprint, restore_state, rng_state
from ..config import MethodConfig
from ..errors import PainterlyError
from ..guidance import region_pairs, resize_mask
from ..features import LAYER_INDEX, FeatureExtractor, check_layers, resolve_precision
from ..image import fit_long_side, resize
from ..losses import LossTerms
from ..losses import functional as LF
from ..optimize import make_optimizer, optimize
from ..param import LaplacianPyramidImage, laplacian_pyramid
from ..progress import Callback, StepInfo
from ..schedule import (Scale, free_memory_bytes, plan_tiles, round_iterations, scale_deadline, scale_sizes,
                        strotss_scale_bytes, time_shares)
from ..tiling import Box, Tiling, assign_to_tiles, choose_tiling, optimize_tiled

FEATURE_SCALE = 1.0 / (255.0 * 0.226)
# The original's output grid: stride sqrt(H W / 128^2) px, so about 128 x 128 grid points at any size.
GRID_POINTS = 128**2
# Style positions the moment targets are estimated from, once per scale (the original's fixed style
# set is 5 x 1000 positions per scale; per-step 1024-point estimates would be noisier and cost more).
STYLE_MOMENT_SAMPLES = 4096
# Style hypercolumns a tiled scale reads once and then matches against (per guidance region): the
# original's fixed style set is 5 x 1000 positions per scale.
STYLE_POOL_SAMPLES = 5000


@dataclass(frozen=True)
class StrotssConfig(MethodConfig):
    """Every knob of a STROTSS run. Round-trips through JSON (to_json / from_json).

    Defaults follow the authors' code (github.com/nkolkin13/STROTSS): 512 px long side reached over
    four scales (64, 128, 256, 512), 250 RMSprop steps per scale at lr 2e-3 (1e-3 at the final scale),
    content weight halved per scale. One default differs: the content weight at the coarsest scale is
    32, not the original's 16 (its README's 1.0 times 16, sec. 2.5). With VGG19 features the moment
    term pulls about twice as hard as with the original's VGG16 (docs/benchmarks.md), and at 16 the
    owls of the authors' example dissolve into the bouquet; at 32 they stay as legible as in the
    authors' output, and the objective still ends 0.70x the reference output's.
    """

    size: int = 512                      # long side of the output, px
    iterations: int = 250                # RMSprop steps at every scale
    scales: Optional[int] = 4            # coarse-to-fine stages, each twice the previous; None = auto
    seed: Optional[int] = None
    content_weight: float = 32.0         # alpha at the coarsest scale; halved at each finer scale
    moment_weight: float = 1.0           # weight of the moment (+ palette) term
    learning_rate: float = 2e-3          # RMSprop, on pyramid coefficients in [0, 1] units
    final_learning_rate: Optional[float] = 1e-3  # at the final scale (None: same as learning_rate)
    samples: int = 1024                  # output/content positions per step (the original's 32^2)
    style_samples: int = 1024            # style positions per step, drawn from all style images
    pyramid_levels: int = 5
    layers: tuple[str, ...] = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2",
                               "relu3_3", "relu4_3", "relu5_3")
    pooling: str = "max"                 # VGG16 in the original has max pooling
    precision: str = "auto"              # auto | fp32 | bf16
    max_time: Optional[float] = None     # seconds; spread across scales like Gatys's
    device: str = "auto"
    # Tiling for outputs too large to optimise whole, as GatysConfig's: tile_size None tiles only the
    # scales that do not fit in max_memory, 0 never tiles (refuses instead), N tiles every scale longer
    # than N px with tiles of at most N px.
    tile_size: Optional[int] = None
    tile_overlap: Optional[int] = None   # px; default an eighth of the tile, 16..128
    tile_rounds: int = 2                 # passes over the image, the grid shifted each time
    max_memory: Optional[float] = None   # GiB the run may use; None = what is free now

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(check_layers(self.layers, "layer")))
        if not self.layers:
            raise PainterlyError("at least one layer is needed")
        if self.size < 16:
            raise PainterlyError(f"size must be at least 16 px, got {self.size}")
        if self.iterations < 0:
            raise PainterlyError("iterations must not be negative")
        if self.scales is not None and self.scales < 1:
            raise PainterlyError(f"scales must be at least 1, got {self.scales}")
        for name in ("content_weight", "moment_weight"):
            if getattr(self, name) < 0:
                raise PainterlyError(f"{name.replace('_', '-')} must not be negative, got {getattr(self, name)}")
        for name in ("learning_rate", "final_learning_rate"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise PainterlyError(f"{name.replace('_', '-')} must be positive, got {value}")
        for name in ("samples", "style_samples", "pyramid_levels"):
            if getattr(self, name) < 1:
                raise PainterlyError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        self.check_tiling(self.tile_size, self.tile_rounds, self.max_memory)
        self.check_common(self.pooling, self.precision, self.max_time)

    @property
    def sorted_layers(self) -> list[str]:
        return sorted(set(self.layers), key=LAYER_INDEX.__getitem__)


# --- sampling -------------------------------------------------------------------------------------

def grid_positions(size: tuple[int, int], count: int, generator: torch.Generator,
                   mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Output/content positions: a regular grid with a random offset, at most `count` of its points.

    The grid's stride is sqrt(H W / 128^2) px (at least 1), as in the original; a fresh random offset
    in [0, stride) is drawn per axis, and when the grid has more than `count` points a random subset
    is kept. With a mask (HxW bool) only grid points inside it count; a region too small to hold a
    grid point gets random pixels of its own. Returns (P, 2) float (y, x) pixel indices.
    """
    h, w = size
    stride = max(int(math.sqrt(h * w // GRID_POINTS)), 1)
    oy, ox = (int(v) for v in torch.randint(0, stride, (2,), generator=generator))
    ys = torch.arange(oy, h, stride)
    xs = torch.arange(ox, w, stride)
    pos = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
    if mask is not None:
        pos = pos[mask.cpu()[pos[:, 0], pos[:, 1]]]
        if pos.shape[0] == 0:
            return random_positions(size, min(count, int(mask.sum())), generator, mask)
    if pos.shape[0] > count:
        pos = pos[torch.randperm(pos.shape[0], generator=generator)[:count]]
    return pos.float()


def random_positions(size: tuple[int, int], count: int, generator: torch.Generator,
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """`count` positions drawn uniformly (with replacement) among the pixels (those of `mask` if
    given, HxW bool); (P, 2) float (y, x)."""
    h, w = size
    if mask is not None:
        allowed = mask.cpu().reshape(-1).nonzero()[:, 0]
        if allowed.numel() == 0:
            raise PainterlyError("a guidance region is empty at this scale")
        flat = allowed[torch.randint(0, allowed.numel(), (count,), generator=generator)]
    else:
        flat = torch.randint(0, h * w, (count,), generator=generator)
    return torch.stack([flat // w, flat % w], dim=1).float()


def sample_hypercolumns(image: torch.Tensor, features: dict[str, torch.Tensor], layers: Sequence[str],
                        positions: torch.Tensor) -> torch.Tensor:
    """(P, 3 + sum of channels) hypercolumns: the RGB pixel and every layer's features at `positions`.

    `positions` are (y, x) pixel indices of `image`; each layer's map is sampled bilinearly at the same
    physical point (pixel centres aligned across resolutions), so deep, coarse maps are interpolated.
    """
    h, w = image.shape[-2:]
    pos = positions.to(image.device, image.dtype)
    # Normalised grid_sample coordinates with align_corners=False: pixel centre i -> (2 i + 1) / n - 1.
    grid = torch.stack([(2 * pos[:, 1] + 1) / w - 1, (2 * pos[:, 0] + 1) / h - 1], dim=1).view(1, 1, -1, 2)
    columns = [F.grid_sample(image, grid, mode="bilinear", align_corners=False)]
    for layer in layers:
        fmap = features[layer]
        columns.append(F.grid_sample(fmap, grid.to(fmap.dtype), mode="bilinear", padding_mode="border",
                                     align_corners=False))
    out = torch.cat(columns, dim=1)[0, :, 0, :]
    out[3:].mul_(FEATURE_SCALE)  # one pass over the VGG rows instead of one per layer (cat keeps no input)
    # Row-major (P, C): the losses reduce and multiply along channels, which a transposed view makes
    # strided and several times slower (norms, gradient accumulation).
    return out.T.contiguous()


# --- objective ------------------------------------------------------------------------------------

def strotss_terms(x: torch.Tensor, content: torch.Tensor, style: torch.Tensor, content_weight: float,
                  moment_weight: float = 1.0,
                  style_moments: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
                  matmul_dtype: Optional[torch.dtype] = None) -> LossTerms:
    """The STROTSS objective on sampled hypercolumns (RGB in the first three columns).

    (alpha l_content + l_r + beta (l_m + l_p / max(alpha, 1))) / (alpha + 1 + beta), as in the
    authors' code (the paper's eq. 7 with its normalisation); each addend is reported by name.
    `style_moments` (mean, covariance) replaces the moments of `style` when given. `matmul_dtype`
    (bf16 under bf16 precision) is what the big (1024 x 2179) products run in: they, not VGG,
    dominate a step.
    """
    if style_moments is None:
        style_moments = LF.feature_moments(style)
    norm = content_weight + 1.0 + moment_weight
    xn = LF.unit_rows(x)  # shared by both cosine terms, so normalised (and back-propagated) once
    terms = {
        "content": content_weight * LF.cosine_self_similarity(xn, LF.unit_rows(content), matmul_dtype) / norm,
        "style": LF.cosine_remd(xn, LF.unit_rows(style), matmul_dtype) / norm,
        "moments": moment_weight * LF.moment_loss_to(x, *style_moments, matmul_dtype=matmul_dtype) / norm,
        "palette": moment_weight * LF.palette_loss(x[:, :3], style[:, :3]) / max(content_weight, 1.0) / norm,
    }
    return LossTerms(terms)


class StyleFeatures:
    """A whole scale's style side: every style image's feature maps, sampled at fresh random positions
    (inside each region's style masks when guided) whenever asked."""

    def __init__(self, extractor: FeatureExtractor, layers: Sequence[str], styles: Sequence[torch.Tensor],
                 generator: torch.Generator, masks: Sequence[Sequence[Optional[torch.Tensor]]]) -> None:
        self.layers = layers
        self.generator = generator
        self.masks = masks  # per region, one HxW bool mask (None: everywhere) per style image
        with torch.no_grad():
            self.styles = [(s, extractor(s, layers)) for s in styles]
            self.moments = [LF.feature_moments(self.sample(STYLE_MOMENT_SAMPLES, r)) for r in range(len(masks))]

    def sample(self, total: int, region: int) -> torch.Tensor:
        """`total` hypercolumns split as evenly as possible over the style images."""
        n = len(self.styles)
        counts = [total // n + (1 if i < total % n else 0) for i in range(n)]
        cols = []
        with torch.no_grad():
            for (image, feats), count, mask in zip(self.styles, counts, self.masks[region]):
                if count:
                    pos = random_positions(tuple(image.shape[-2:]), count, self.generator, mask)
                    cols.append(sample_hypercolumns(image, feats, self.layers, pos))
        return torch.cat(cols, dim=0)


class StylePool:
    """A tiled scale's style side: a fixed set of style hypercolumns per region, read tile by tile, so
    no style image's feature maps are ever held whole (at print sizes they are what does not fit).

    Positions are drawn uniformly over each style image (inside the region's masks when guided), split
    evenly between the images, so the set covers every image evenly; each is read from the tile of a
    one-round tiling (the scale's tile size) in which it lies farthest from a cut edge. Every step then
    draws its sample from the set, as the original matches against a fixed ~5000-point set per scale.
    """

    def __init__(self, extractor: FeatureExtractor, layers: Sequence[str], styles: Sequence[torch.Tensor],
                 generator: torch.Generator, masks: Sequence[Sequence[Optional[torch.Tensor]]], tiling: Tiling,
                 count: int) -> None:
        self.generator = generator
        n = len(styles)
        counts = [count // n + (1 if i < count % n else 0) for i in range(n)]
        columns: list[list[torch.Tensor]] = [[] for _ in masks]
        with torch.no_grad():
            for i, (image, per_image) in enumerate(zip(styles, counts)):
                size = tuple(image.shape[-2:])
                positions = [random_positions(size, per_image, generator, region[i]) for region in masks]
                style_tiling = choose_tiling(tiling.tile, tiling.overlap, 1)
                owners = [assign_to_tiles(pos, size, style_tiling) for pos in positions]
                for b, box in enumerate(style_tiling.boxes(size, 0)):
                    crop = box.crop(image)
                    features = None
                    for r, (pos, owner) in enumerate(zip(positions, owners)):
                        mine = pos[owner == b]
                        if mine.shape[0]:
                            features = features if features is not None else extractor(crop, layers)
                            offset = torch.tensor([box.top, box.left], dtype=mine.dtype)
                            columns[r].append(sample_hypercolumns(crop, features, layers, mine - offset))
            self.pools = [torch.cat(c, dim=0) for c in columns]
            self.moments = [LF.feature_moments(p) for p in self.pools]

    def sample(self, total: int, region: int) -> torch.Tensor:
        """`total` hypercolumns of the region's set, drawn without replacement (all of it if it holds no more)."""
        pool = self.pools[region]
        index = torch.randperm(pool.shape[0], generator=self.generator)[:total]
        return pool[index.to(pool.device)]


class StrotssObjective:
    """The objective at one scale, or one tile of a tiled scale: content features computed once,
    sampled every step.

    `styles` is the style images (their feature maps are computed here and sampled afresh at every
    call) or a tiled scale's StylePool. Calling the objective with an image draws fresh positions from
    `generator`, so each call sees a new sample. With `regions` (per region, a content mask at the
    content's size and either one mask per style image or, with a StylePool, the index of the pool's
    region), output positions inside each content region are matched only with style positions inside
    the paired style regions, and the terms are averaged over the regions, as in the original.
    """

    def __init__(self, extractor: FeatureExtractor, config: StrotssConfig, content: torch.Tensor,
                 styles: Union[Sequence[torch.Tensor], StylePool], content_weight: float, generator: torch.Generator,
                 regions: Optional[Sequence[tuple[Optional[torch.Tensor], Union[Sequence[torch.Tensor], int]]]] = None
                 ) -> None:
        self.extractor = extractor
        self.config = config
        self.layers = config.sorted_layers
        self.content_weight = content_weight
        self.generator = generator
        self.matmul_dtype = torch.bfloat16 if getattr(extractor, "precision", "fp32") == "bf16" else None
        with torch.no_grad():
            self.content = content
            self.content_features = extractor(content, self.layers)
        if isinstance(styles, StylePool):
            self.style = styles
            # (content mask, the style side's region) per region
            self.regions = list(regions) if regions is not None else [(None, 0)]
        else:
            pairs = list(regions) if regions is not None else [(None, [None] * len(styles))]
            self.style = StyleFeatures(extractor, self.layers, styles, generator, [m for _, m in pairs])
            self.regions = [(mask, r) for r, (mask, _) in enumerate(pairs)]

    def sample_style(self, total: Optional[int] = None, region: int = 0) -> torch.Tensor:
        """`total` (default `style_samples`) style hypercolumns for region `region`."""
        return self.style.sample(self.config.style_samples if total is None else total, self.regions[region][1])

    def __call__(self, image: torch.Tensor, positions: Optional[torch.Tensor] = None,
                 style: Optional[torch.Tensor] = None) -> LossTerms:
        features = self.extractor(image, self.layers)
        totals: dict[str, torch.Tensor] = {}
        for r, (content_mask, style_region) in enumerate(self.regions):
            pos = positions
            if pos is None:
                pos = grid_positions(tuple(image.shape[-2:]), self.config.samples, self.generator, content_mask)
            sty = style if style is not None else self.sample_style(region=r)
            x = sample_hypercolumns(image, features, self.layers, pos)
            with torch.no_grad():
                c = sample_hypercolumns(self.content, self.content_features, self.layers, pos)
            terms = strotss_terms(x, c, sty, self.content_weight, self.config.moment_weight,
                                  self.style.moments[style_region], self.matmul_dtype)
            for name, value in terms.terms.items():
                totals[name] = totals.get(name, 0) + value / len(self.regions)
        return LossTerms(totals)


# --- the run --------------------------------------------------------------------------------------

def _finest_band(image: torch.Tensor) -> torch.Tensor:
    return laplacian_pyramid(image, 1)[0]


def style_mean_color(styles: Sequence[torch.Tensor]) -> torch.Tensor:
    """1x3x1x1 mean colour over the style images (each image weighs the same)."""
    return torch.stack([s.mean(dim=(2, 3), keepdim=True) for s in styles]).mean(0)


def plan_sizes(content_hw: tuple[int, int], config: StrotssConfig) -> list[tuple[int, int]]:
    return scale_sizes(fit_long_side(*content_hw, config.size), config.scales)


def pool_size(config: StrotssConfig) -> int:
    """Hypercolumns in a tiled scale's style pool per region: enough for one step's sample."""
    return max(STYLE_POOL_SAMPLES, config.style_samples)


def memory_model(config: StrotssConfig, style_hws: Sequence[tuple[int, int]], precision: str) -> dict:
    """The `estimate` and its keywords that schedule.plan_tiles and scale_peak_bytes take for this run."""
    return {"estimate": strotss_scale_bytes, "style_hws": tuple(style_hws), "precision": precision,
            "pool_samples": pool_size(config)}


def make_plan(config: StrotssConfig, content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]],
              device_type: str, precision: str) -> list[Scale]:
    """The run's scales, each optimised whole or, if it does not fit in config.max_memory (default: the
    memory free now) or is longer than config.tile_size, tile by tile; a scale that fits neither way is
    refused, naming the largest size that does."""
    plan = [Scale(h, w, config.iterations) for h, w in plan_sizes(content_hw, config)]
    budget = int(config.max_memory * 2**30) if config.max_memory else free_memory_bytes(device_type)
    return plan_tiles(plan, config.sorted_layers, budget, config.tile_size, config.tile_overlap, config.tile_rounds,
                      **memory_model(config, style_hws, precision))


def run(content: torch.Tensor, styles: Sequence[torch.Tensor], config: StrotssConfig,
        callback: Optional[Callback] = None, extractor: Optional[FeatureExtractor] = None,
        content_guidance: Optional[torch.Tensor] = None,
        style_guidance: Optional[Sequence[torch.Tensor]] = None,
        checkpoint: Optional[Checkpointer] = None) -> torch.Tensor:
    """Stylise `content` (1x3xHxW in [0, 1]) with `styles`; returns the output in [0, 1].

    Scale 1 starts from the styles' mean colour plus the content's finest Laplacian band; each finer
    scale starts from the previous result upsampled plus the content's finest band at that size (the
    final scale from the upsampled result alone), as in the original.

    A scale that does not fit in memory (see make_plan) is optimised in overlapping tiles
    (painterly.tiling), each a Laplacian pyramid of its crop with a fresh RMSprop, matched against the
    scale's StylePool and its own content crop.

    Guidance (both or neither): a colour-coded map for the content and one per style image; regions
    painted in the same colour are paired (see painterly.guidance).

    checkpoint: save the run's state as it goes and, if it says resume, continue from its file.
    """
    if not styles:
        raise PainterlyError("at least one style image is needed")
    pairs = None
    if (content_guidance is None) != (not style_guidance):
        raise PainterlyError("guidance needs both a content guidance map and style guidance maps")
    if content_guidance is not None:
        if len(style_guidance) != len(styles):
            raise PainterlyError(f"{len(style_guidance)} style guidance map(s) for {len(styles)} style image(s); "
                                 "give one per style image")
        pairs = region_pairs(content_guidance.cpu(), [g.cpu() for g in style_guidance])
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device)
    precision = resolve_precision(config.precision, device)
    plan = make_plan(config, tuple(content.shape[-2:]), [tuple(s.shape[-2:]) for s in styles], device.type, precision)
    if extractor is None:
        extractor = FeatureExtractor.vgg19(pooling=config.pooling, last_layer=config.sorted_layers[-1],
                                           precision=precision, device=device)
    content = content.to(device)
    styles = [s.to(device) for s in styles]
    base_seed = config.seed if config.seed is not None else torch.seed()
    generator = torch.Generator()
    mean_color = style_mean_color(styles)

    saved = None
    if checkpoint is not None:
        options = {"method": "strotss", **dataclasses.asdict(config), "precision": precision}
        guides = [content_guidance, *(style_guidance or [])] if content_guidance is not None else []
        saved = checkpoint.start(fingerprint([content, *styles, *guides], options))
        if saved:
            base_seed = saved["base_seed"]
    if saved is not None and "plan" in saved:
        plan = saved["plan"]  # tiles chosen for the memory free when the run began
    start = time.monotonic() - (saved["elapsed"] if saved else 0.0)
    shares = time_shares(plan)
    first_scale = saved["scale"] if saved else 0
    step = saved["step"] if saved else 0
    image = None

    def report(k: int, iteration: int, iterations: int, terms: LossTerms, state: Callable[[], dict],
               render: Callable[[], torch.Tensor]) -> None:
        """After each step: the callback, then the checkpointer (which may stop the run)."""
        nonlocal step
        step += 1
        if callback is not None:
            callback(StepInfo(iteration=iteration, iterations=iterations, scale=k, scales=len(plan), size=plan[k].size,
                              losses=terms.floats(), elapsed=time.monotonic() - start, step=step, _render=render))
        if checkpoint is not None:
            checkpoint.after_step(
                step, lambda: {"scale": k, "step": step, "elapsed": time.monotonic() - start, "plan": plan,
                               "rng": rng_state(generator), "base_seed": base_seed, **state()},
                (k, len(plan), iteration, iterations), render)

    for k, scale in enumerate(plan):
        if k < first_scale:
            continue
        resumed = saved is not None and k == first_scale
        final = k == len(plan) - 1
        size = scale.size
        content_k = resize(content, size)
        if resumed:
            image = torch.zeros(1, 3, *size, device=device)  # replaced by the saved pyramid or canvas below
        elif image is None:
            image = mean_color + _finest_band(content_k)
        else:
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=True)
            if not final:
                image = image + _finest_band(content_k)
        styles_k = [resize(s, fit_long_side(*s.shape[-2:], max(size))) for s in styles]
        weight = config.content_weight / 2**k
        # Each scale's sampling starts from its own seed, so a resumed run rebuilds the same style targets.
        generator.manual_seed(base_seed + 7919 * k)
        regions = None
        if pairs is not None:
            regions = [(resize_mask(p.content, size).to(device),
                        [resize_mask(m, tuple(s.shape[-2:])).to(device) for m, s in zip(p.styles, styles_k)])
                       for p in pairs]
            regions = [r for r in regions if r[0].any() and all(m.any() for m in r[1])]
            if not regions:
                raise PainterlyError(f"no guidance region survives at {size[1]}x{size[0]} px; use fewer scales")
        lr = config.final_learning_rate if final and config.final_learning_rate is not None else config.learning_rate
        deadline = scale_deadline(config.max_time, start, shares, k)

        def optimize_image(image: torch.Tensor, objective: StrotssObjective, iterations: int, resume: bool,
                           progress: Callable[[int], int], iterations_shown: int, state: Callable[[], dict],
                           render: Callable[[torch.Tensor], torch.Tensor], k: int = k, lr: float = lr,
                           deadline: Optional[float] = deadline) -> torch.Tensor:
            """Optimise one image (the whole scale or a tile) as a Laplacian pyramid and return it,
            unclamped; progress maps an iteration to the one shown, state adds what locates it, render
            makes a preview."""
            param = LaplacianPyramidImage(image, config.pyramid_levels).to(device)
            optimizer = make_optimizer("rmsprop", param.parameters(), lr)
            done = restore_state(saved, param, optimizer, generator) if resume else 0

            def on_step(i: int, terms: LossTerms) -> None:
                report(k, progress(i), iterations_shown, terms,
                       lambda: {"iteration": i, "param": param.state_dict(), "optimizer": optimizer.state_dict(),
                                **state()},
                       lambda: render(param.image()))

            optimize(param, objective, iterations, optimizer, on_step, deadline, start=done)
            # Unclamped, as the original carries it to the next scale; clamped only when read out.
            return param().detach()

        if scale.tiling is None:
            objective = StrotssObjective(extractor, config, content_k, styles_k, weight, generator, regions)
            image = optimize_image(image, objective, scale.iterations, resumed, lambda i: i, scale.iterations,
                                   dict, lambda img: img)
            continue

        tiling = scale.tiling
        style_masks = [m for _, m in regions] if regions is not None else [[None] * len(styles_k)]
        pool = StylePool(extractor, config.sorted_layers, styles_k, generator, style_masks, tiling, pool_size(config))
        per_round = round_iterations(scale.iterations, tiling.rounds)
        counts = [len(tiling.boxes(size, r)) * per_round[r] for r in range(tiling.rounds)]
        canvas = saved["canvas"].to(device) if resumed else image
        begin = tuple(saved["tile"]) if resumed else (0, 0)

        def optimize_tile(crop: torch.Tensor, box: Box, r: int, t: int, regions=regions, pool: StylePool = pool,
                          content_k: torch.Tensor = content_k, weight: float = weight, canvas: torch.Tensor = canvas,
                          per_round: list[int] = per_round, counts: list[int] = counts,
                          begin: tuple[int, int] = begin, resumed: bool = resumed,
                          optimize_image=optimize_image) -> torch.Tensor:
            tile_regions = None
            if regions is not None:
                tile_regions = [(box.crop(mask), i) for i, (mask, _) in enumerate(regions) if box.crop(mask).any()]
                if not tile_regions:  # no guided region reaches into this tile: no term pulls on it
                    return crop
            objective = StrotssObjective(extractor, config, box.crop(content_k), pool, weight, generator, tile_regions)
            offset = sum(counts[:r]) + t * per_round[r]

            def render(tile: torch.Tensor) -> torch.Tensor:
                preview = canvas.clamp(0, 1)
                box.crop(preview).copy_(tile)
                return preview

            return optimize_image(crop, objective, per_round[r], resumed and (r, t) == begin, lambda i: offset + i,
                                  sum(counts), lambda: {"tile": (r, t), "canvas": canvas}, render)

        image = optimize_tiled(canvas, tiling, optimize_tile, begin)
    if checkpoint is not None:
        checkpoint.finish()
    return image.clamp(0, 1)
