"""Coarse-to-fine scales, how iterations and time are spread over them, and a memory pre-flight."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .errors import PainterlyError
from .features import LAYER_INDEX, LAYER_NAMES, channels_of, layer_stride
from .image import fit_long_side
from .tiling import Tiling, choose_tiling

# Auto mode halves the size while the coarser image's long side stays at least this big: below
# ~160 px relu5_1 maps are under 10 px wide and the coarse result stops being a useful start.
MIN_AUTO_LONG_SIDE = 160


@dataclass(frozen=True)
class Scale:
    """One stage of coarse-to-fine: image size, planned iterations and, if it is optimised tile by
    tile, how (then `iterations` is what each tile gets, spread over the tiling's rounds)."""

    height: int
    width: int
    iterations: int
    tiling: Optional[Tiling] = None

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


def scale_sizes(final: tuple[int, int], scales: int | None) -> list[tuple[int, int]]:
    """Sizes from coarsest to `final`, each twice the previous. `scales=None` picks the count."""
    h, w = final
    if scales is None:
        scales = 1
        while max(h, w) / 2 ** scales >= MIN_AUTO_LONG_SIDE and min(h, w) / 2 ** scales >= 16:
            scales += 1
    if scales < 1:
        raise PainterlyError(f"scales must be at least 1, got {scales}")
    sizes = []
    for k in reversed(range(scales)):
        f = 2**k
        sizes.append((max(1, round(h / f)), max(1, round(w / f))))
    if min(sizes[0]) < 16:
        if scales == 1:
            raise PainterlyError(f"the output would be {w}x{h} px; each side must be at least 16 px "
                                 "(raise --size or use a less elongated image)")
        raise PainterlyError(f"{scales} scales make the coarsest image {sizes[0][1]}x{sizes[0][0]}; use fewer scales")
    return sizes


def plan_scales(final: tuple[int, int], scales: int | None, iterations: int,
                coarse_iterations: int | None = None, scale_iterations: Sequence[int] | None = None) -> list[Scale]:
    """Coarse-to-fine plan. The final scale runs `iterations`; each coarser one `coarse_iterations`
    (default: the same count, which costs a quarter per halving, so most of the work is cheap).
    `scale_iterations` gives every scale its own count instead, coarsest first (its length sets the
    number of scales)."""
    if scale_iterations is not None:
        if scales is not None and scales != len(scale_iterations):
            raise PainterlyError(f"{len(scale_iterations)} scale iteration counts for {scales} scales")
        if any(i < 0 for i in scale_iterations):
            raise PainterlyError("scale iterations must be >= 0")
        sizes = scale_sizes(final, len(scale_iterations))
        return [Scale(h, w, i) for (h, w), i in zip(sizes, scale_iterations)]
    if iterations < 0:
        raise PainterlyError(f"iterations must be >= 0, got {iterations}")
    sizes = scale_sizes(final, scales)
    coarse = iterations if coarse_iterations is None else coarse_iterations
    return [Scale(h, w, iterations if k == len(sizes) - 1 else coarse) for k, (h, w) in enumerate(sizes)]


def round_iterations(iterations: int, rounds: int) -> list[int]:
    """A tile's iterations spread over the tiling's rounds, the remainder going to the first rounds."""
    return [iterations // rounds + (1 if r < iterations % rounds else 0) for r in range(rounds)]


def time_shares(plan: Sequence[Scale]) -> list[float]:
    """Fractions of a --max-time budget per scale: half for the final scale, the rest split evenly.

    Unused time rolls over to later scales (the caller recomputes from the time left).
    """
    n = len(plan)
    if n == 1:
        return [1.0]
    return [0.5 / (n - 1)] * (n - 1) + [0.5]


def scale_deadline(max_time: float | None, start: float, shares: Sequence[float], k: int) -> float | None:
    """time.monotonic() by which scale k should stop: its share of the time still left (None: no limit)."""
    if max_time is None:
        return None
    left = max_time - (time.monotonic() - start)
    return time.monotonic() + left * shares[k] / sum(shares[k:])


# --- memory pre-flight ----------------------------------------------------------------------------

# peak RSS = base + bytes per conv-output element x elements (activations saved for backward, the
# float32 copy of each requested layer, gradient buffers) + the optimiser's image-sized vectors.
# Least-squares fit (relative error) to peak RSS measured by benchmarks/memory_model.py, 256..2048 px,
# single scale, fresh process per size, torch 2.13 CPU: every size within 6% (docs/benchmarks.md).
ACTIVATION_BYTES = {"fp32": 6.9, "bf16": 5.2}
BASE_BYTES_BY_PRECISION = {"fp32": 520 * 2**20, "bf16": 480 * 2**20}  # interpreter, torch, VGG weights
BASE_BYTES = BASE_BYTES_BY_PRECISION["fp32"]
# L-BFGS allocates two image-sized vectors per iteration and, once its history is full, frees the
# oldest two. glibc serves blocks under its mmap threshold (which rises to at most 32 MiB) from the
# heap, where this churn fragments: measured 1.4-1.8x the history's size from 256 to 1024 px. Vectors
# of 32 MiB or more (from about 1680x1250 px) are mmapped and returned exactly (measured 1.04x).
HEAP_FRAGMENTATION = 1.7
MMAP_THRESHOLD_MAX = 32 * 2**20


def estimate_peak_bytes(size: tuple[int, int], layers: Sequence[str], precision: str = "fp32",
                        optimizer: str = "lbfgs", lbfgs_history: int = 100, iterations: int | None = None) -> int:
    """Rough peak memory of one Gatys iteration at `size` (height, width).

    `iterations` caps the L-BFGS history actually filled (None: the full `lbfgs_history`)."""
    h, w = size
    deepest = max(LAYER_INDEX[l] for l in layers)
    elements = 0.0
    for name in LAYER_NAMES[: deepest + 1]:
        if name.startswith("conv"):
            block = int(name[4])
            elements += channels_of(name) * h * w / 4 ** (block - 1)
    image_bytes = 4 * 3 * h * w
    opt_bytes = 6 * image_bytes  # gradient, flat copies, direction, Adam's moments
    if optimizer == "lbfgs":
        history = lbfgs_history if iterations is None else min(lbfgs_history, iterations)
        fragmentation = 1.0 if image_bytes >= MMAP_THRESHOLD_MAX else HEAP_FRAGMENTATION
        opt_bytes += 2 * history * image_bytes * fragmentation
    return int(BASE_BYTES_BY_PRECISION[precision] + elements * ACTIVATION_BYTES[precision] + opt_bytes)


def stored_feature_bytes(size: tuple[int, int], layers: Sequence[str]) -> float:
    """float32 bytes of the requested layers' feature maps for an input of `size`."""
    h, w = size
    total = 0.0
    for name in layers:
        f = layer_stride(name)
        total += 4 * channels_of(name) * (h // f) * (w // f)
    return total


# STROTSS keeps, beside VGG's activations for the backward pass, every sampled layer's float32
# features of the content and of each style image for the whole scale (x1.29: the sampling's
# gathers and the bf16 copies), plus ~120 MiB of sampled hypercolumns, cost matrices and their
# gradients. Least-squares fit (relative error) to peak RSS measured by benchmarks/memory_model.py
# --method strotss, 256..1536 px, fp32 and bf16, fresh process per size: every size within 8%.
STROTSS_FEATURE_FACTOR = 1.29
STROTSS_SAMPLING_BYTES = 120 * 2**20
# Seconds per STROTSS step beside VGG: cosine-cost and covariance products on the ~1024 x 2179
# sampled hypercolumns, independent of the image size (measured step time minus the FLOP model's VGG
# time: 0.2-0.5 s from 256 to 768 px, bf16 and fp32).
STROTSS_STEP_SECONDS = 0.3


def strotss_peak_bytes(size: tuple[int, int], layers: Sequence[str], style_sizes: Sequence[tuple[int, int]] | None = None,
                       precision: str = "fp32") -> int:
    """Rough peak memory of one STROTSS step at `size`, its styles resized to `style_sizes` (default:
    one style of the output's size)."""
    style_sizes = [size] if style_sizes is None else style_sizes
    network = estimate_peak_bytes(size, layers, precision=precision, optimizer="adam")
    stored = stored_feature_bytes(size, layers) + sum(stored_feature_bytes(s, layers) for s in style_sizes)
    return int(network + STROTSS_FEATURE_FACTOR * stored + STROTSS_SAMPLING_BYTES)


# --- time estimate --------------------------------------------------------------------------------

# Achieved VGG19 forward+backward throughput on the reference machine (2 Zen 4 cores, avx512_bf16;
# docs/benchmarks.md, 512x384: 153 GFLOP/s fp32, 308 GFLOP/s bf16), rounded. Other CPUs differ.
ASSUMED_GFLOPS = {"fp32": 150.0, "bf16": 300.0}


def vgg_flops(size: tuple[int, int], layers: Sequence[str]) -> float:
    """FLOPs of one iteration: VGG19 forward to the deepest layer plus backward to the input
    (no weight gradients), taken as 2 x the forward convolutions' 2*Cin*Cout*9 per output pixel."""
    h, w = size
    deepest = max(LAYER_INDEX[l] for l in layers)
    flops, cin = 0.0, 3
    for name in LAYER_NAMES[: deepest + 1]:
        if name.startswith("conv"):
            block = int(name[4])
            cout = channels_of(name)
            flops += 2 * cin * cout * 9 * (h * w) / 4 ** (block - 1)
            cin = cout
    return 2 * flops


def estimate_seconds_per_iteration(size: tuple[int, int], layers: Sequence[str], precision: str = "fp32",
                                   gflops: float | None = None) -> float:
    """vgg_flops / throughput (ASSUMED_GFLOPS for the precision unless `gflops` is given)."""
    rate = gflops if gflops is not None else ASSUMED_GFLOPS[precision]
    return vgg_flops(size, layers) / (rate * 1e9)


def available_memory_bytes() -> int:
    """Memory this process can still use: MemAvailable on Linux, else total physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def largest_fitting_long_side(aspect_hw: tuple[int, int], layers: Sequence[str], budget: int,
                              estimate=None, **kwargs) -> int:
    """Largest long side (px) whose estimated peak (`estimate`, default estimate_peak_bytes) fits in
    `budget` bytes."""
    estimate = estimate or estimate_peak_bytes
    h, w = aspect_hw
    lo, hi = 16, 65536
    while lo < hi:
        mid = (lo + hi + 1) // 2
        s = mid / max(h, w)
        if estimate((round(h * s), round(w * s)), layers, **kwargs) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def free_memory_bytes(device_type: str = "cpu") -> int:
    """Free GPU memory on 'cuda', else the RAM this process can still use."""
    if device_type == "cuda":
        import torch

        return torch.cuda.mem_get_info()[0]
    return available_memory_bytes()


# --- tiling -----------------------------------------------------------------------------------------

# A tiled scale holds, beside one tile's working set, full-size images: the canvas, the content at
# that size, the previous scale's result brought up to it and the style at that size (float32 RGB,
# 12 bytes a pixel each), the uint8 output, and what the heap keeps from the scale before. Fitted to
# the peak RSS of a 2048 px run whose last scale was tiled (measured 2484 MiB, benchmarks/tiled.py);
# four images alone (51 bytes) left it 15% short.
TILED_BYTES_PER_PIXEL = 120
# Automatic tiling uses no tiles smaller than this: below it most pixels sit in overlaps and the
# deepest style layers see a few cells per tile. (An explicit tile_size may go lower.)
MIN_AUTO_TILE = 256


def tiled_peak_bytes(size: tuple[int, int], tiling: Tiling, layers: Sequence[str], **kwargs) -> int:
    """Estimated peak of a tiled Gatys scale: its largest tile's run plus the full-size images it keeps."""
    return estimate_peak_bytes(tiling.largest_box(size), layers, **kwargs) + TILED_BYTES_PER_PIXEL * size[0] * size[1]


# A method's memory model: estimate(size, tiling, layers, **kwargs) -> the peak bytes of one scale of
# `size` optimised whole (tiling None) or tile by tile, kwargs always holding `iterations` (for a tiled
# scale, one tile's in one round). The planning functions below take one as `estimate`.
ScaleEstimate = Callable[..., int]


def gatys_scale_bytes(size: tuple[int, int], tiling: Optional[Tiling], layers: Sequence[str], **kwargs) -> int:
    """Gatys's memory model (a ScaleEstimate): estimate_peak_bytes whole, tiled_peak_bytes tiled."""
    if tiling is None:
        return estimate_peak_bytes(size, layers, **kwargs)
    return tiled_peak_bytes(size, tiling, layers, **kwargs)


def strotss_scale_bytes(size: tuple[int, int], tiling: Optional[Tiling], layers: Sequence[str],
                        style_hws: Sequence[tuple[int, int]] | None = None, precision: str = "fp32",
                        pool_samples: int = 0, iterations: int | None = None) -> int:
    """STROTSS's memory model (a ScaleEstimate). Its styles (`style_hws`, (h, w) each; default one of
    the output's shape) are resized to the scale's long side; `iterations` does not matter (RMSprop's
    state does not grow).

    Whole: strotss_peak_bytes. Tiled, no style features are held whole: one tile's network and content
    features, the fixed pool of `pool_samples` style hypercolumns the tiles draw from, and the
    full-size images the scale keeps (a tiled Gatys scale's, with the styles at their own sizes).
    """
    style_sizes = [fit_long_side(h, w, max(size)) for h, w in (style_hws or [size])]
    if tiling is None:
        return strotss_peak_bytes(size, layers, style_sizes, precision)
    pool = 4 * pool_samples * (3 + sum(channels_of(l) for l in layers))
    images = (TILED_BYTES_PER_PIXEL - 12) * size[0] * size[1] + 12 * sum(h * w for h, w in style_sizes)
    # one style tile's features count too: the pool is read from the styles a tile at a time (measured
    # at 2048 px, 3 GiB cap: without them the estimate was 10% short)
    box = tiling.largest_box(size)
    return strotss_peak_bytes(box, layers, [box], precision) + pool + images


def fit_tiling(size: tuple[int, int], iterations: int, layers: Sequence[str], budget: int,
               tile_size: int | None = None, overlap: int | None = None, rounds: int = 2,
               estimate: ScaleEstimate = gatys_scale_bytes, **kwargs) -> Tiling | None:
    """How to optimise one scale within `budget` bytes: None (whole) or a Tiling.

    tile_size None: tile only if the whole image does not fit, with the largest tiles that do;
    0: never tile; N: tile when the long side exceeds N, with tiles of at most N px.
    """
    if tile_size == 0 or (tile_size is None and estimate(size, None, layers, iterations=iterations, **kwargs) <= budget):
        return None
    if tile_size is not None:
        return None if max(size) <= tile_size else choose_tiling(tile_size, overlap, rounds)
    per_round = max(round_iterations(iterations, rounds))
    lo, hi = MIN_AUTO_TILE, max(size)
    if estimate(size, choose_tiling(lo, overlap, rounds), layers, iterations=per_round, **kwargs) > budget:
        best = largest_tiled_long_side(size, layers, budget, overlap, rounds, estimate, iterations=per_round, **kwargs)
        raise PainterlyError(f"a {size[1]}x{size[0]} image needs more than the {budget / 2**30:.1f} GiB available even "
                             f"in {lo} px tiles; the largest size that fits is about --size {best}")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        fits = estimate(size, choose_tiling(mid, overlap, rounds), layers, iterations=per_round, **kwargs) <= budget
        lo, hi = (mid, hi) if fits else (lo, mid - 1)
    return choose_tiling(lo, overlap, rounds)


def largest_tiled_long_side(aspect_hw: tuple[int, int], layers: Sequence[str], budget: int,
                            overlap: int | None = None, rounds: int = 2, estimate: ScaleEstimate = gatys_scale_bytes,
                            **kwargs) -> int:
    """Largest long side (px) that fits in `budget` bytes when optimised in MIN_AUTO_TILE px tiles."""
    h, w = aspect_hw
    lo, hi = 16, 1 << 20
    while lo < hi:
        mid = (lo + hi + 1) // 2
        s = mid / max(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        tiling = None if max(size) <= MIN_AUTO_TILE else choose_tiling(MIN_AUTO_TILE, overlap, rounds)
        lo, hi = (mid, hi) if estimate(size, tiling, layers, **kwargs) <= budget else (lo, mid - 1)
    return lo


def plan_tiles(plan: Sequence[Scale], layers: Sequence[str], budget: int, tile_size: int | None = None,
               overlap: int | None = None, rounds: int = 2, estimate: ScaleEstimate = gatys_scale_bytes,
               **kwargs) -> list[Scale]:
    """The plan with each scale that does not fit whole in `budget` (or is longer than `tile_size`)
    tiled; with tile_size=0 a scale that does not fit is refused, naming the largest size that does."""
    tiled = []
    for scale in reversed(plan):  # the largest first, so a refusal names the output's size
        tiling = fit_tiling(scale.size, scale.iterations, layers, budget, tile_size, overlap, rounds, estimate, **kwargs)
        need = estimate(scale.size, None, layers, iterations=scale.iterations, **kwargs)
        if tiling is None and need > budget:
            best = largest_fitting_long_side(scale.size, layers, int(budget * 0.9),
                                             lambda size, layers, **kw: estimate(size, None, layers, **kw),
                                             iterations=scale.iterations, **kwargs)
            raise PainterlyError(
                f"a {scale.width}x{scale.height} image needs about {need / 2**30:.1f} GiB "
                f"but only {budget / 2**30:.1f} GiB is available; allow tiling or use --size {best} or less")
        tiled.append(dataclasses.replace(scale, tiling=tiling))
    return tiled[::-1]


def scale_peak_bytes(scale: Scale, layers: Sequence[str], estimate: ScaleEstimate = gatys_scale_bytes, **kwargs) -> int:
    """Estimated peak of one scale, whole or tiled."""
    if scale.tiling is None:
        return estimate(scale.size, None, layers, iterations=scale.iterations, **kwargs)
    per_round = max(round_iterations(scale.iterations, scale.tiling.rounds))
    return estimate(scale.size, scale.tiling, layers, iterations=per_round, **kwargs)


def scale_seconds(scale: Scale, layers: Sequence[str], precision: str = "fp32", step_overhead_s: float = 0.0) -> float:
    """Estimated seconds for a scale: its iterations at the FLOP model's rate plus `step_overhead_s`
    each (work beside VGG); tiled, every tile's iterations plus one forward pass per tile for its
    content features."""
    if scale.tiling is None:
        return scale.iterations * (estimate_seconds_per_iteration(scale.size, layers, precision) + step_overhead_s)
    per_round = round_iterations(scale.iterations, scale.tiling.rounds)
    return sum((per_round[r] + 0.5) * estimate_seconds_per_iteration(box.size, layers, precision)
               + per_round[r] * step_overhead_s
               for r in range(scale.tiling.rounds) for box in scale.tiling.boxes(scale.size, r) if per_round[r])


@dataclass(frozen=True)
class RunPlan:
    """What a run will do before it does it: scales (whole or tiled), peak memory and time."""

    method: str
    optimizer: str
    device: str
    precision: str
    scales: list[Scale]
    layers: tuple[str, ...]
    peak_bytes: int
    free_bytes: int
    seconds: float
    problem: str = ""      # why the run would be refused ("" if it fits)
    step_overhead_s: float = 0.0  # per-step time beside VGG (STROTSS's sampled-feature products)

    @property
    def size(self) -> tuple[int, int]:
        return self.scales[-1].size

    def describe(self, note: str = "") -> str:
        """The --dry-run text: one line per scale, then memory and time."""
        h, w = self.size
        lines = [f"painterly plan: {self.method}, {self.optimizer}, {self.precision} on {self.device}; "
                 f"output {w}x{h}" + (f" ({note})" if note else "")]
        for k, scale in enumerate(self.scales):
            line = f"  scale {k + 1}/{len(self.scales)}: {scale.width}x{scale.height}, {scale.iterations} iterations"
            if scale.tiling is None:
                per_step = estimate_seconds_per_iteration(scale.size, self.layers, self.precision) + self.step_overhead_s
                line += f", ~{per_step:.2f} s/iteration"
            else:
                t = scale.tiling
                th, tw = t.largest_box(scale.size)
                seconds = scale_seconds(scale, self.layers, self.precision, self.step_overhead_s)
                line += (f" per tile in {t.rounds} round(s), {t.tile_count(scale.size)} tiles of up to {tw}x{th} "
                         f"with {t.overlap} px overlap, ~{seconds:.0f} s")
            lines.append(line)
        lines.append(f"  estimated peak memory: {self.peak_bytes / 2**20:.0f} MiB ({self.free_bytes / 2**20:.0f} MiB free)"
                     + (f" -- does NOT fit: {self.problem}" if self.problem else ""))
        lines.append(f"  estimated time: ~{self.seconds:.0f} s (FLOP model: VGG19 forward+backward = 2 x conv FLOPs "
                     f"at an assumed {ASSUMED_GFLOPS[self.precision]:.0f} GFLOP/s {self.precision}, measured on "
                     "2 Zen 4 cores; other CPUs differ)")
        return "\n".join(lines)
