"""Coarse-to-fine scales, how iterations and time are spread over them, and a memory pre-flight."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

from .errors import PainterlyError
from .features import LAYER_INDEX, LAYER_NAMES, channels_of, layer_stride
from .image import fit_long_side
from .tiling import MIN_OVERLAP, Tiling, choose_tiling

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
    # bytes of the budget set aside for what the tiled run keeps instead of computing it twice
    # (MemoryModel.reserve_bytes: AdaIN's and WCT's tile encodings); 0: nothing is kept
    reserve: int = 0

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


def gib(nbytes: float) -> str:
    """Bytes as GiB for a message, to three significant digits: a --max-memory of 0.55 or 1.25 reads as given
    (one decimal showed 0.5 and 1.2, less than the user had said)."""
    return f"{nbytes / 2**30:.3g}"


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


def fitting_scales(final: tuple[int, int], most: int) -> int:
    """Up to `most` scales, fewer where the coarsest would fall under 16 px a side (a small picture)."""
    scales = max(1, most)
    while scales > 1 and min(final) / 2 ** (scales - 1) < 16:
        scales -= 1
    return scales


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


def style_pass_bytes(size: tuple[int, int], style_layers: Sequence[str], style_scale: float,
                     precision: str = "fp32") -> int:
    """Peak of reading a style image whole for a scale of `size`: a forward pass (no gradients) at the
    style's size (the scale's pixels times style_scale squared) holding every style layer's float32
    features, and two full-resolution 64-channel maps in flight. Beside a run's own peak it counts
    only where the style is large: at 128 px with style_scale 16 the plan said 546 MiB and the run
    took 2.6 GiB."""
    h, w = round(size[0] * style_scale), round(size[1] * style_scale)
    activation = 4 if precision == "fp32" else 2
    return int(BASE_BYTES_BY_PRECISION.get(precision, BASE_BYTES_BY_PRECISION["fp32"])
               + stored_feature_bytes((h, w), style_layers) + 2 * 64 * h * w * activation)


def stored_feature_bytes(size: tuple[int, int], layers: Sequence[str]) -> float:
    """float32 bytes of the requested layers' feature maps for an input of `size`."""
    h, w = size
    total = 0.0
    for name in layers:
        f = layer_stride(name)
        total += 4 * channels_of(name) * (h // f) * (w // f)
    return total


# --- time estimate --------------------------------------------------------------------------------

# Achieved VGG19 forward+backward throughput on the reference machine (2 Zen 4 cores, avx512_bf16;
# docs/benchmarks.md, 512x384: 153 GFLOP/s fp32, 308 GFLOP/s bf16), rounded. Other CPUs differ.
ASSUMED_GFLOPS = {"fp32": 150.0, "bf16": 300.0, "int8": 600.0}  # int8: forward-only encoders


def vgg_macs(size: tuple[int, int], layer: str) -> float:
    """Multiply-adds of VGG19's forward convolutions up to `layer` over an image of `size`
    (Cin*Cout*9 per output pixel, each block at its resolution)."""
    h, w = size
    macs, cin = 0.0, 3
    for name in LAYER_NAMES[: LAYER_INDEX[layer] + 1]:
        if name.startswith("conv"):
            cout = channels_of(name)
            macs += cin * cout * 9 * (h * w) / 4 ** (int(name[4]) - 1)
            cin = cout
    return macs


def vgg_flops(size: tuple[int, int], layers: Sequence[str]) -> float:
    """FLOPs of one iteration: VGG19 forward to the deepest layer plus backward to the input
    (no weight gradients), taken as 2 x the forward convolutions' 2 FLOPs a multiply-add."""
    if not layers:
        return 0.0
    return 4 * vgg_macs(size, max(layers, key=lambda l: LAYER_INDEX[l]))


def estimate_seconds_per_iteration(size: tuple[int, int], layers: Sequence[str], precision: str = "fp32",
                                   gflops: float | None = None) -> float:
    """vgg_flops / throughput (ASSUMED_GFLOPS for the precision unless `gflops` is given)."""
    rate = gflops if gflops is not None else ASSUMED_GFLOPS[precision]
    return vgg_flops(size, layers) / (rate * 1e9)


def least_long_side(aspect_hw: tuple[int, int], peak_bytes: Callable[[tuple[int, int]], int]) -> int:
    """The smallest long side (from 16 px, in steps of 1.5x) that a method takes at all: AdaIN's style, read
    at the output's pixel count, is under VGG's 16 px at a 16 px output, and that refusal became a plan's
    answer to a picture far too large ("a style image 18x11 px for a 16x12 output" for 65536 px)."""
    def takes(long_side: int) -> bool:
        try:
            peak_bytes(fit_long_side(*aspect_hw, long_side))
            return True
        except PainterlyError:
            return False

    refused, long_side = 15, 16
    while long_side < 65536 and not takes(long_side):
        refused, long_side = long_side, math.ceil(long_side * 1.5)
    if long_side >= 65536:  # none taken: the bound, untested, as before (a search here would find nothing)
        return long_side
    while long_side - refused > 1:  # the least between the last refused and the first taken, not 1.5x past it
        mid = (refused + long_side) // 2
        refused, long_side = (refused, mid) if takes(mid) else (mid, long_side)
    return long_side


def largest_fitting_long_side(aspect_hw: tuple[int, int], budget: int,
                              whole_bytes: Callable[[tuple[int, int]], int]) -> int:
    """Largest long side (px) of an image shaped like `aspect_hw` whose `whole_bytes(size)` (the peak of
    running it whole) fits in `budget` bytes."""
    h, w = aspect_hw
    lo, hi = least_long_side(aspect_hw, whole_bytes), 65536
    while lo < hi:
        mid = (lo + hi + 1) // 2
        s = mid / max(h, w)
        if whole_bytes((round(h * s), round(w * s))) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan_to_json(plan: Sequence[Scale]) -> list[dict]:
    """A plan as JSON-ready dicts (a checkpoint keeps the tiles chosen for the memory free at the start)."""
    return [dataclasses.asdict(scale) for scale in plan]


def plan_from_json(data: Sequence[dict]) -> list[Scale]:
    return [Scale(d["height"], d["width"], d["iterations"], None if d["tiling"] is None else Tiling(**d["tiling"]),
                  d.get("reserve", 0)) for d in data]


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
# ... except for a picture little over MIN_AUTO_TILE just over the budget: whole it is one such tile, so tiles
# down to this are used before refusing it (256x192 in 0.55 GiB was refused where 300x225 ran tiled)
SMALLEST_AUTO_TILE = 96
# An explicit --tile-size that would lay more tiles than this over one scale is refused before planning them:
# 8192 px in 64 px tiles (16384) plans in about 3 s here, 16384 px (65536) in 16 s.
MAX_TILES = 20000


class MemoryModel(Protocol):
    """A method's memory model: the peak bytes of one scale of `size` run whole (tiling None) or tile
    by tile, `iterations` being what it runs (for a tiled scale, one tile's in one round). Each method
    module defines its own, fitted to measured peak RSS (benchmarks/memory_model.py)."""

    def scale_bytes(self, size: tuple[int, int], tiling: Optional[Tiling], iterations: int) -> int: ...

    # A model may also define reserve_bytes(size, tiling) -> int: what a tiled run would keep, where the budget
    # has room for it, instead of computing it twice (plan_tiles sets it aside as Scale.reserve).


@dataclass(frozen=True)
class _Reserved:
    """A model with its reserve added to every tiled estimate: the tile sizes that leave room for it."""

    model: MemoryModel

    def scale_bytes(self, size: tuple[int, int], tiling: Optional[Tiling], iterations: int) -> int:
        kept = 0 if tiling is None else self.model.reserve_bytes(size, tiling)
        return self.model.scale_bytes(size, tiling, iterations) + kept


def plan_tiling(tile: int, overlap: int | None, rounds: int) -> Tiling:
    """A scale's tiling: packed (the fewest tiles) where it has one round, so its grid never shifts."""
    return choose_tiling(tile, overlap, rounds, packed=rounds == 1)


def fit_tiling(size: tuple[int, int], iterations: int, model: MemoryModel, budget: int,
               tile_size: int | None = None, overlap: int | None = None, rounds: int = 2) -> Tiling | None:
    """How to run one scale within `budget` bytes: None (whole) or a Tiling.

    tile_size None: tile only if the whole image does not fit, with the largest tiles that do;
    0: never tile; N: tile when the long side exceeds N, with tiles of at most N px, refused (naming the
    largest tile size that fits) where those do not fit, since running them would only be killed for memory.
    """
    if tile_size == 0 or (tile_size is None and model.scale_bytes(size, None, iterations) <= budget):
        return None
    per_round = max(round_iterations(iterations, rounds))
    if tile_size is not None:
        tiling = None if max(size) <= tile_size else plan_tiling(tile_size, overlap, rounds)
        need = model.scale_bytes(size, tiling, iterations if tiling is None else per_round)
        if need <= budget:
            return tiling
        fitting = fit_tiling(size, iterations, model, budget, None, overlap, rounds)  # refused where no tile fits
        largest = max(size) if fitting is None else fitting.tile
        how = f"in tiles of {tile_size} px" if tiling is not None else f"whole (--tile-size {tile_size} is over its size)"
        raise PainterlyError(f"a {size[1]}x{size[0]} image needs about {gib(need)} GiB {how} but "
                             f"only {gib(budget)} GiB is available; use --tile-size {largest} or less")
    lo, hi = MIN_AUTO_TILE, max(size)
    if model.scale_bytes(size, plan_tiling(lo, overlap, rounds), per_round) > budget:
        # smaller tiles, down to SMALLEST_AUTO_TILE, before a refusal that gives up the size asked for (384 px in
        # 0.5 GiB was refused for 166 px where 96 px tiles ran it)
        smallest = lo
        for tile in range(MIN_AUTO_TILE - 16, SMALLEST_AUTO_TILE - 1, -16):  # the largest that fits
            if overlap is not None and tile < 4 * overlap:  # a Tiling's least tile for a given overlap
                break
            smallest = tile
            if model.scale_bytes(size, plan_tiling(tile, overlap, rounds), per_round) <= budget:
                return plan_tiling(tile, overlap, rounds)
        # the sizes the same ladder fits, a picture within one tile run whole with all its iterations
        best = largest_tiled_long_side(size, model, budget, overlap, rounds, per_round, iterations, smallest)
        if best == 0:  # the run's fixed part alone (the network, a model, the heap) is over the budget
            least = least_long_side(size, lambda hw: model.scale_bytes(hw, None, iterations))
            raise fixed_part_error(model.scale_bytes(fit_long_side(*size, least), None, iterations), budget, share=1.0)
        best = min(best, max(size) - 1)  # tile grids make fitting uneven in size: never the size refused
        floor = model.scale_bytes(size, plan_tiling(smallest, overlap, rounds), per_round)
        how = (f" even in {smallest} px tiles (what a tiled run keeps at full size grows with the picture)"
               if max(size) > smallest else "")  # a picture within one tile: tiles are no way out
        raise PainterlyError(f"a {size[1]}x{size[0]} image needs about {gib(floor)} GiB{how}, over the "
                             f"{gib(budget)} GiB available; the largest size that fits is about --size {best}")
    while lo < hi:
        mid = (lo + hi + 1) // 2
        fits = model.scale_bytes(size, plan_tiling(mid, overlap, rounds), per_round) <= budget
        lo, hi = (mid, hi) if fits else (lo, mid - 1)
    return plan_tiling(lo, overlap, rounds)


def fixed_part_error(smallest: int, budget: int, share: float = 0.9) -> PainterlyError:
    """The refusal where the run's fixed part (a model, the heap) leaves no room in `share` of `budget` bytes
    for even a 16 px picture, naming the --max-memory that would hold it (rounded up to 0.1 GiB). `--size
    max` plans within 90%; a size given fits in the whole budget."""
    enough = -(-smallest * 10 // int(share * 2**30)) / 10
    within = f", and plans within {share:.0%} of the memory" if share < 1 else ""
    return PainterlyError(f"no size fits in the {gib(budget)} GiB available: this run needs about "
                          f"{gib(smallest)} GiB at any size{within} (give --max-memory {enough:g} or more)")


def largest_tiled_long_side(aspect_hw: tuple[int, int], model: MemoryModel, budget: int,
                            overlap: int | None = None, rounds: int = 2, iterations: int = 1,
                            whole_iterations: Optional[int] = None, tile: int = MIN_AUTO_TILE) -> int:
    """Largest long side (px) that fits in `budget` bytes whole (its `whole_iterations`, by default
    `iterations`) or in `tile` px tiles (`iterations` a round); 0 when not even 16 px does."""
    whole_iterations = iterations if whole_iterations is None else whole_iterations

    def fits(long_side: int) -> bool:
        size = fit_long_side(*aspect_hw, long_side)
        if model.scale_bytes(size, None, whole_iterations) <= budget:
            return True
        return max(size) > tile and model.scale_bytes(size, plan_tiling(tile, overlap, rounds), iterations) <= budget

    least = least_long_side(aspect_hw, lambda hw: model.scale_bytes(hw, None, whole_iterations))
    if not fits(least):
        return 0
    lo, hi = least, 1 << 20
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def plan_tiles(plan: Sequence[Scale], model: MemoryModel, budget: int, tile_size: int | None = None,
               overlap: int | None = None, rounds: int = 2) -> list[Scale]:
    """The plan with each scale that does not fit whole in `budget` (or is longer than `tile_size`)
    tiled; with tile_size=0 a scale that does not fit is refused, naming the largest size that does."""
    tiled = []
    least_tile = 4 * (overlap if overlap is not None else MIN_OVERLAP)  # a Tiling's least: 4x its overlap
    if tile_size and tile_size < least_tile:
        shared = f"--tile-overlap {overlap}" if overlap is not None else f"the least overlap, {MIN_OVERLAP} px"
        raise PainterlyError(f"--tile-size must be at least {least_tile}, 4x {shared}; got {tile_size}")
    for scale in reversed(plan):  # the largest first, so a refusal names the output's size
        if tile_size and (scale.height / tile_size) * (scale.width / tile_size) > MAX_TILES:
            # planning itself grows with the tiles (a 65536 px print in 64 px tiles: minutes before a word)
            least = max(least_tile, math.ceil((scale.height * scale.width / MAX_TILES) ** 0.5))
            raise PainterlyError(f"--tile-size {tile_size} makes over {MAX_TILES} tiles of a {scale.width}x"
                                 f"{scale.height} image; use --tile-size {least} or more")
        tiling, reserve = _reserved_tiling(scale, model, budget, tile_size, overlap, rounds)
        need = model.scale_bytes(scale.size, None, scale.iterations)
        if tiling is None and need > budget:
            whole = functools.partial(model.scale_bytes, tiling=None, iterations=scale.iterations)
            # the size to suggest fits in 90% (room to spare); the refusal of any size is of the whole budget,
            # as the check above is
            best = largest_fitting_long_side(scale.size, int(budget * 0.9), whole)
            if whole(fit_long_side(*scale.size, best)) > budget * 0.9:
                best = largest_fitting_long_side(scale.size, budget, whole)
            smallest = whole(fit_long_side(*scale.size, best))
            if smallest > budget:  # not even the smallest size: the run's fixed part is over the budget
                raise fixed_part_error(smallest, budget, share=1.0)
            raise PainterlyError(
                f"a {scale.width}x{scale.height} image needs about {gib(need)} GiB "
                f"but only {gib(budget)} GiB is available; allow tiling or use --size {best} or less")
        tiled.append(dataclasses.replace(scale, tiling=tiling, reserve=reserve))
    return tiled[::-1]


def _reserved_tiling(scale: Scale, model: MemoryModel, budget: int, tile_size: int | None, overlap: int | None,
                     rounds: int) -> tuple[Optional[Tiling], int]:
    """A scale's tiling and reserve: tiles that leave room for the model's reserve where some do (keeping what
    it names saves more time than smaller tiles cost: AdaIN's second encoding is 0.8 of its pass), else
    the largest tiles without it; an explicit tile size keeps its tiles and reserves where the budget allows."""
    fit = functools.partial(fit_tiling, scale.size, scale.iterations, budget=budget, tile_size=tile_size,
                            overlap=overlap, rounds=rounds)
    if not hasattr(model, "reserve_bytes"):
        return fit(model=model), 0
    try:
        tiling = fit(model=_Reserved(model))
    except PainterlyError:  # no tile leaves the room: encode twice (or be refused as without a reserve)
        return fit(model=model), 0
    if tiling is None:
        return None, 0
    reserved = dataclasses.replace(scale, tiling=tiling)
    reserve = model.reserve_bytes(scale.size, tiling)
    return tiling, reserve if scale_peak_bytes(reserved, model) + reserve <= budget else 0


def scale_peak_bytes(scale: Scale, model: MemoryModel) -> int:
    """Estimated peak of one scale, whole or tiled (with what it keeps in its reserve)."""
    if scale.tiling is None:
        return model.scale_bytes(scale.size, None, scale.iterations)
    return scale.reserve + model.scale_bytes(scale.size, scale.tiling,
                                             max(round_iterations(scale.iterations, scale.tiling.rounds)))


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
    scale_seconds: tuple[float, ...] = ()  # each scale's estimate (the recipe's time model)
    time_model: str = ""  # how the estimate was made
    one_pass: bool = False  # each scale (or tile) is one forward pass, not iterations
    tiled_areas: tuple[tuple[int, int], ...] = ()  # what each scale's tiles cover (Recipe.tiled_area); () its size
    allowed_bytes: Optional[int] = None  # --max-memory where it is below the free memory: what the plan fits in

    @property
    def size(self) -> tuple[int, int]:
        """The output's (height, width), as a tensor's shape; `width` and `height` name each."""
        return self.scales[-1].size

    @property
    def width(self) -> int:
        return self.size[1]

    @property
    def height(self) -> int:
        return self.size[0]

    def describe(self, note: str = "") -> str:
        """The --dry-run text: one line per scale, then memory and time."""
        h, w = self.size
        lines = [f"painterly plan: {self.method}, {self.optimizer}, {self.precision} on {self.device}; "
                 f"output {w}x{h}" + (f" ({note})" if note else "")]
        for k, scale in enumerate(self.scales):
            seconds = self.scale_seconds[k]
            line = f"  scale {k + 1}/{len(self.scales)}: {scale.width}x{scale.height}, " + (
                "one pass" if self.one_pass else f"{scale.iterations} iteration{'' if scale.iterations == 1 else 's'}")
            if scale.tiling is None:
                line += f", ~{seconds:.2f} s" if self.one_pass else f", ~{seconds / max(1, scale.iterations):.2f} s/iteration"
            else:
                t, area = scale.tiling, self.tiled_areas[k] if self.tiled_areas else scale.size
                th, tw = t.largest_box(area)
                margin = (area[0] - scale.height) // 2  # tiles laid over the picture and a reflected margin
                over = f" over the picture and its {margin} px margin" if margin > 0 else ""
                line += ((" per tile" if not self.one_pass else "") + f" in {t.rounds} round(s), "
                         f"{t.tile_count(area)} tiles of up to {tw}x{th}{over} with {t.overlap} px overlap, "
                         f"~{seconds:.0f} s")
            lines.append(line)
        room = (f"{self.allowed_bytes / 2**20:.0f} MiB allowed by --max-memory" if self.allowed_bytes is not None
                else f"{self.free_bytes / 2**20:.0f} MiB free")
        lines.append(f"  estimated peak memory: {self.peak_bytes / 2**20:.0f} MiB ({room})"
                     + (f" -- does NOT fit: {self.problem}" if self.problem else ""))
        # a pass's 0.47 s was "~0 s"
        seconds = ("<0.1" if self.seconds < 0.05 else f"~{self.seconds:.1f}" if self.seconds < 9.95
                   else f"~{self.seconds:.0f}")
        lines.append(f"  estimated time: {seconds} s ({self.time_model})")
        return "\n".join(lines)
