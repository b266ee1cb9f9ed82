"""STROTSS: Kolkin, Salavon & Shakhnarovich, "Style Transfer by Relaxed Optimal Transport and
Self-Similarity" (CVPR 2019).

A recipe for the driver: hypercolumns sampled at fresh positions every step (painterly.hypercolumns),
the relaxed-EMD / moment / palette style terms and the self-similarity content term
(losses.functional), a Laplacian-pyramid parameterisation optimised with RMSprop, coarse-to-fine with
the content weight halved at every finer scale.

Layer mapping. The paper reads VGG16 (torchvision weights, max pooling) at relu1_1, relu1_2,
relu2_1, relu2_2, relu3_1, relu3_2, relu3_3, relu4_3 and relu5_3, plus the RGB pixels: a
2179-channel hypercolumn. VGG19 has layers of the same names and widths (its blocks 3-5 have one
convolution more), so painterly reads the very same names from its VGG19; `layers` changes them.
The two networks are differently trained, so per-layer scales differ; the moment term (covariances
are quadratic in the scale) is the one term that feels it (docs/benchmarks.md, "The moment term
against the original code").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..config import MAX_ITERATIONS, MAX_SCALES, OptimisationConfig, option
from ..errors import PainterlyError
from ..features import LAYER_INDEX, FeatureExtractor, channels_of, check_layers
from ..guidance import resize_mask
from ..hypercolumns import StyleFeatures, StylePool, grid_positions, sample_hypercolumns
from ..image import fit_long_side, resize
from ..losses import LossTerms
from ..losses import functional as LF
from ..optimize import make_optimizer
from ..param import LaplacianPyramidImage, laplacian_pyramid
from ..recipe import GUIDANCE, INIT_IMAGE, Recipe, RunContext, register
from ..schedule import (TILED_BYTES_PER_PIXEL, Scale, estimate_peak_bytes, fitting_scales, scale_sizes,
                        stored_feature_bytes)
from ..tiling import Box, Tiling

# The loss holds samples x style_samples cost and samples x samples self-similarity matrices, outside the
# memory model's fixed sampling term: 4096 each is 64 MiB a matrix (the authors' 1024, 4 MiB); 65536 was 16 GiB.
MAX_SAMPLES = 4096

# Style hypercolumns a tiled scale reads once and then matches against (per guidance region): the
# original's fixed style set is 5 x 1000 positions per scale.
STYLE_POOL_SAMPLES = 5000
SCHEDULE, OPTIMISATION, LOSSES = "size and schedule", "optimisation", "losses"


@dataclass(frozen=True)
class StrotssConfig(OptimisationConfig):
    """Every knob of a STROTSS run. Round-trips through JSON (to_json / from_json).

    Defaults follow the authors' code (github.com/nkolkin13/STROTSS): 512 px long side reached over
    four scales (64, 128, 256, 512), 250 RMSprop steps per scale at lr 2e-3 (1e-3 at the final scale),
    content weight halved per scale. One default differs: the content weight at the coarsest scale is
    32, not the original's 16. With VGG19 features the moment term pulls about twice as hard as with
    the original's VGG16 (docs/benchmarks.md), and at 16 the owls of the authors' example dissolve
    into the bouquet; at 32 they stay as legible as in the authors' output.
    """

    iterations: int = option(250, "RMSprop steps at every scale", minimum=0, maximum=MAX_ITERATIONS, group=SCHEDULE,
                             metavar="N")
    scales: Optional[int] = option(None, "coarse-to-fine stages, each twice the previous (auto: the authors' 4, "
                                   "fewer where the coarsest would be under 16 px a side)", minimum=1,
                                   maximum=MAX_SCALES, none_word="auto", default_text="auto", group=SCHEDULE,
                                   metavar="N")
    content_weight: float = option(32.0, "content weight at the coarsest scale, halved at each finer one",
                                   minimum=0, group=LOSSES, metavar="W")
    moment_weight: float = option(1.0, "weight of the moment (and palette) style term", minimum=0, group=LOSSES,
                                  metavar="W")
    learning_rate: float = option(2e-3, "RMSprop step on the pyramid coefficients ([0, 1] image units)", above=0,
                                  maximum=1,
                                  group=OPTIMISATION, metavar="LR")
    final_learning_rate: Optional[float] = option(1e-3, "RMSprop step at the final scale ('none': --learning-rate "
                                                  "there too)", above=0, maximum=1, none_word="none",
                                                  group=OPTIMISATION, metavar="LR")
    samples: int = option(1024, "output and content positions sampled per step (the original's 32x32)", minimum=1,
                          maximum=MAX_SAMPLES, group=OPTIMISATION, metavar="N")
    style_samples: int = option(1024, "style positions sampled per step, drawn from all style images", minimum=1,
                                maximum=MAX_SAMPLES, group=OPTIMISATION, metavar="N")
    pyramid_levels: int = option(5, "Laplacian pyramid levels of the optimised image", minimum=1, maximum=MAX_SCALES,
                                 group=OPTIMISATION, metavar="N")
    layers: tuple[str, ...] = option(("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
                                      "relu4_3", "relu5_3"), "comma-separated VGG19 layers of each hypercolumn",
                                     group=LOSSES, metavar="LAYERS")
    pooling: str = option("max", "VGG19 pooling (VGG16 in the original has max pooling)", choices=("avg", "max"),
                          group=LOSSES)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "layers", tuple(check_layers(self.layers, "layer")))
        if not self.layers:
            raise PainterlyError("at least one layer is needed")

    @property
    def sorted_layers(self) -> list[str]:
        return sorted(set(self.layers), key=LAYER_INDEX.__getitem__)


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

class StrotssObjective:
    """The objective at one scale, or one tile of a tiled scale: content features computed once,
    sampled every step.

    `styles` is the style images (their feature maps are computed here and sampled afresh at every
    call) or a prepared style side (a scale's StyleFeatures, or a tiled scale's StylePool). Calling the objective with an image draws fresh positions from
    `generator`, so each call sees a new sample. With `regions` (per region, a content mask at the
    content's size and either one mask per style image or, with a prepared side, the index of its
    region), output positions inside each content region are matched only with style positions inside
    the paired style regions, and the terms are averaged over the regions, as in the original.
    """

    def __init__(self, extractor: FeatureExtractor, config: StrotssConfig, content: torch.Tensor,
                 styles: Union[Sequence[torch.Tensor], StyleFeatures, StylePool], content_weight: float,
                 generator: torch.Generator,
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
        if isinstance(styles, (StyleFeatures, StylePool)):
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
                 style: Optional[torch.Tensor] = None,
                 features: Optional[Mapping[str, torch.Tensor]] = None) -> LossTerms:
        if features is None:
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


# --- memory and time ------------------------------------------------------------------------------

# STROTSS keeps, beside VGG's activations for the backward pass, every sampled layer's float32
# features of the content and of each style image for the whole scale (x1.29: the sampling's
# gathers and the bf16 copies), plus ~160 MiB of sampled hypercolumns, cost matrices and their
# gradients. Least-squares fit (relative error) to peak RSS measured by benchmarks/memory_model.py
# --method strotss, 256..1536 px, fp32 and bf16, fresh process per size: every size within 8%. Session 33
# raised the fixed part from 120 MiB: on the Zen 4 every run read 40-50 MiB over it (a 512 px run tiled
# within --max-memory 0.8 peaked at 829 MiB against 790 planned), erring low, where a cap is crossed.
FEATURE_FACTOR = 1.29
SAMPLING_BYTES = 160 * 2**20
# Seconds per step beside VGG: cosine-cost and covariance products on the ~1024 x 2179 sampled
# hypercolumns, independent of the image size (measured step time minus the FLOP model's VGG time:
# 0.2-0.5 s from 256 to 768 px, bf16 and fp32).
STEP_SECONDS = 0.3


def peak_bytes(size: tuple[int, int], layers: Sequence[str], style_sizes: Sequence[tuple[int, int]],
               precision: str = "fp32") -> int:
    """Rough peak memory of one STROTSS step at `size`, its styles at `style_sizes`."""
    network = estimate_peak_bytes(size, layers, precision=precision, optimizer="adam")
    stored = stored_feature_bytes(size, layers) + sum(stored_feature_bytes(s, layers) for s in style_sizes)
    return int(network + FEATURE_FACTOR * stored + SAMPLING_BYTES)


@dataclass(frozen=True)
class StrotssMemory:
    """STROTSS's memory model (schedule.MemoryModel). Its styles (`style_hws`) are resized to the
    scale's long side; iterations do not matter (RMSprop's state does not grow).

    Whole: peak_bytes. Tiled, no style features are held whole: one tile's network and content
    features, the fixed pool of `pool_samples` style hypercolumns the tiles draw from, and the
    full-size images the scale keeps (a tiled Gatys scale's, with the styles at their own sizes).
    """

    layers: tuple[str, ...]
    style_hws: tuple[tuple[int, int], ...]
    precision: str
    pool_samples: int

    def scale_bytes(self, size: tuple[int, int], tiling: Optional[Tiling], iterations: int) -> int:
        style_sizes = [style_size_at((h, w), max(size)) for h, w in self.style_hws]
        if tiling is None:
            return peak_bytes(size, self.layers, style_sizes, self.precision)
        pool = 4 * self.pool_samples * (3 + sum(channels_of(l) for l in self.layers))
        images = (TILED_BYTES_PER_PIXEL - 12) * size[0] * size[1] + 12 * sum(h * w for h, w in style_sizes)
        # one style tile's features count too: the pool is read from the styles a tile at a time
        box = tiling.largest_box(size)
        return peak_bytes(box, self.layers, [box], self.precision) + pool + images


AUTHORS_SCALES = 4  # 64, 128, 256, 512 px in the authors' code


# VGG needs 16 px a side to reach relu5_1 (four 2x poolings): a style read at a coarse scale's long side
# could be less on its short side (a 96 px run's 24 px scale, a panorama at any scale) and crashed VGG.
MIN_STYLE_SIDE = 16


def style_size_at(style_hw: tuple[int, int], long_side: int) -> tuple[int, int]:
    """A style image's (height, width) at a scale: its long side the scale's, or longer where its short side
    would otherwise fall under MIN_STYLE_SIDE."""
    h, w = style_hw
    needed = -(-MIN_STYLE_SIDE * max(h, w) // min(h, w))  # the long side whose short side is the minimum
    return fit_long_side(h, w, max(long_side, needed))


def scale_count(config: StrotssConfig, final: tuple[int, int]) -> int:
    """The config's scales, or by default the authors' 4 where the picture is large enough for them."""
    return config.scales if config.scales is not None else fitting_scales(final, AUTHORS_SCALES)


def pool_size(config: StrotssConfig) -> int:
    """Hypercolumns in a tiled scale's style pool per region: enough for one step's sample."""
    return max(STYLE_POOL_SAMPLES, config.style_samples)


# --- the recipe -----------------------------------------------------------------------------------

@dataclass
class StrotssStyle:
    """A scale's style side and, when guided, per region its content mask at the scale's size."""

    side: Union[StyleFeatures, StylePool]
    content_masks: Optional[list[torch.Tensor]] = None


def _finest_band(image: torch.Tensor) -> torch.Tensor:
    return laplacian_pyramid(image, 1)[0]


class Strotss(Recipe):
    name = "strotss"
    config_class = StrotssConfig
    summary = "Kolkin et al. 2019: relaxed optimal transport and self-similarity, Laplacian pyramid, RMSprop"
    accepts = frozenset({GUIDANCE, INIT_IMAGE})
    step_overhead_s = STEP_SECONDS

    def layers(self, config: StrotssConfig) -> list[str]:
        return config.sorted_layers

    def scales(self, config: StrotssConfig, final: tuple[int, int]) -> list[Scale]:
        return [Scale(h, w, config.iterations) for h, w in scale_sizes(final, scale_count(config, final))]

    def memory(self, config: StrotssConfig, style_hws: Sequence[tuple[int, int]], precision: str) -> StrotssMemory:
        return StrotssMemory(tuple(config.sorted_layers), tuple(tuple(s) for s in style_hws), precision,
                             pool_size(config))

    def optimizer_name(self, config: StrotssConfig) -> str:
        return "rmsprop"

    def style_targets(self, run: RunContext, k: int, scale: Scale) -> StrotssStyle:
        """Every style image at the scale's long side, sampled whole or, for a tiled scale, as a fixed
        pool read tile by tile; with guidance, each region's masks at these sizes."""
        size, layers = scale.size, run.config.sorted_layers
        styles_k = [resize(s, style_size_at(tuple(s.shape[-2:]), max(size))) for s in run.styles]
        style_masks: list[list[Optional[torch.Tensor]]] = [[None] * len(styles_k)]
        content_masks = None
        if run.guidance is not None:
            regions = [(resize_mask(p.content, size).to(run.device),
                        [resize_mask(m, tuple(s.shape[-2:])).to(run.device) for m, s in zip(p.styles, styles_k)])
                       for p in run.guidance]
            regions = [r for r in regions if r[0].any() and all(m.any() for m in r[1])]
            if not regions:
                raise PainterlyError(f"no guidance region survives at {size[1]}x{size[0]} px; use fewer scales")
            content_masks, style_masks = [c for c, _ in regions], [m for _, m in regions]
        if scale.tiling is None:
            side = StyleFeatures(run.extractor, layers, styles_k, run.generator, style_masks)
        else:
            side = StylePool(run.extractor, layers, styles_k, run.generator, style_masks, scale.tiling,
                             pool_size(run.config))
        return StrotssStyle(side, content_masks)

    def targets(self, run: RunContext, k: int, scale: Scale, style: StrotssStyle,
                box: Optional[Box]) -> Optional[StrotssObjective]:
        content_k = run.content_at(k, scale.size)
        content = content_k if box is None else box.crop(content_k)
        regions = None
        if style.content_masks is not None:
            masks = style.content_masks if box is None else [box.crop(m) for m in style.content_masks]
            regions = [(m, i) for i, m in enumerate(masks) if m.any()]
            if not regions:  # no guided region reaches into this tile: no term pulls on it
                return None
        return StrotssObjective(run.extractor, run.config, content, style.side, run.config.content_weight / 2**k,
                                run.generator, regions)

    temporal_scale = 1e-3

    def later_frames(self, config: StrotssConfig, iterations: Optional[int], size: tuple[int, int]) -> StrotssConfig:
        # the content weight falls by 2 per scale (content_weight / 2**k): keep the final scale's
        finest = scale_count(config, size) - 1
        return dataclasses.replace(config, scales=1, content_weight=config.content_weight / 2 ** finest,
                                   iterations=config.iterations if iterations is None else iterations)

    def start(self, run: RunContext, k: int, scale: Scale, previous: Optional[torch.Tensor]) -> torch.Tensor:
        """Scale 1: the styles' mean colour plus the content's finest Laplacian band; each finer scale:
        the previous result upsampled plus the content's finest band at that size (the final scale:
        the upsampled result alone), as in the original."""
        content_k = run.content_at(k, scale.size)
        if previous is None and run.init_image is not None:  # a video's warped previous frame
            return resize(run.init_image, scale.size)
        if previous is None:
            mean_color = torch.stack([s.mean(dim=(2, 3), keepdim=True) for s in run.styles]).mean(0)
            return mean_color + _finest_band(content_k)
        image = F.interpolate(previous, size=scale.size, mode="bilinear", align_corners=True)
        return image if k == len(run.plan) - 1 else image + _finest_band(content_k)

    def parameterise(self, run: RunContext, k: int, image: torch.Tensor) -> LaplacianPyramidImage:
        return LaplacianPyramidImage(image, run.config.pyramid_levels)

    def optimizer(self, run: RunContext, k: int, param: LaplacianPyramidImage,
                  h0: Optional[float]) -> torch.optim.Optimizer:
        c = run.config
        final = k == len(run.plan) - 1
        lr = c.final_learning_rate if final and c.final_learning_rate is not None else c.learning_rate
        return make_optimizer("rmsprop", param.parameters(), lr)

    def loss(self, run: RunContext, targets: StrotssObjective, image: torch.Tensor,
             features: Mapping[str, torch.Tensor]) -> LossTerms:
        return targets(image, features=features)

    def output(self, param: LaplacianPyramidImage) -> torch.Tensor:
        # Unclamped, as the original carries it to the next scale; clamped only when read out.
        return param().detach()


STROTSS = register(Strotss())
