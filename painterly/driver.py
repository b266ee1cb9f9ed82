"""The one driver every method runs on.

A method is a `Recipe` (painterly.recipe): hooks that say what to compute. The driver owns how a run
goes: device, threads and precision; the plan (coarse-to-fine scales, each whole or tiled to fit
memory); the feature extractor, run once per step for every loss; fingerprint, checkpoints and exact
resume; the --max-time budget split over scales, tiles and rounds; progress callbacks and previews;
colour preservation. A `Session` prepares the style side once and then stylises any number of
frames (video), each optionally with extra named loss terms.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

from .checkpoint import Checkpointer, fingerprint, restore_state, rng_state, run_record
from .errors import PainterlyError
from .features import FeatureExtractor
from .guidance import RegionPair, pair_masks
from .heap import heap_reuse
from .hardware import check_threads, free_memory_bytes, resolve_device, resolve_precision, set_threads
from .image import fit_long_side, match_color, resize, transfer_luminance
from .losses import LossTerms
from .optimize import BestIterate, optimize
from .progress import Callback, StepInfo, StopRun
from .recipe import GUIDANCE, INIT_IMAGE, REGISTRY, STYLE_MASKS, ExtraTerm, Place, Recipe, RunContext, blend_weights
from .schedule import (Scale, plan_from_json, plan_tiles, plan_to_json, round_iterations, scale_deadline,
                       scale_peak_bytes, time_shares)
from .tiling import Box, blend_window, optimize_tiled

# Each scale's random draws start from their own seed, so a run resumed at scale k rebuilds the
# same targets without replaying the scales before it.
SCALE_SEED_STRIDE = 7919


def recipe_for(config) -> Recipe:
    """The registered method whose config class `config` is."""
    for recipe in REGISTRY.values():
        if type(config) is recipe.config_class:
            return recipe
    raise PainterlyError(f"no registered method takes a {type(config).__name__}")


def run_precision(recipe: Recipe, config, device: torch.device) -> str:
    """config.precision resolved for this method on this device: int8 only for a method whose forward
    pass has an int8 form."""
    return resolve_precision(config.precision, device, int8_ok=recipe.runs_int8)


def memory_budget(config, device_type: str) -> int:
    """Bytes a run may use: what is free now, or less where config.max_memory (GiB) says so. A limit
    above the free memory is a most, not a promise: planned to it, a print would run out of memory
    hours in (8192 px with --max-memory 100 planned a 57 GiB peak with 21 GiB free)."""
    free = free_memory_bytes(device_type)
    return min(int(config.max_memory * 2**30), free) if config.max_memory else free


def make_plan(recipe: Recipe, config, content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]],
              device_type: str, precision: str, budget: Optional[int] = None) -> list[Scale]:
    """The run's scales, each run whole or, if it does not fit in memory (`budget` bytes; by default
    memory_budget's) or is longer than config.tile_size, tile by tile; a scale that fits neither way is
    refused, naming a size that does."""
    scales = recipe.scales(config, fit_long_side(*content_hw, config.size))
    # A forward pass needs one pass over the tiles: a second round would apply it twice.
    rounds = config.tile_rounds if recipe.optimises else 1
    budget = memory_budget(config, device_type) if budget is None else budget
    return plan_tiles(scales, recipe.memory(config, style_hws, precision), budget, config.tile_size,
                      config.tile_overlap, rounds)


# A forward pass keeps freed maps in the heap only where twice its estimated peak fits the budget: the
# heap's free holes raised the peak over handing them back by up to 1.41x (the network, 1024-6144 px,
# fp32 and bf16; up to 1.38x its estimate) and 1.33x (AdaIN and WCT at 1024-3072 px; 1.27x their estimates).
HEAP_REUSE_SLACK = 2.0


def reuses_heap(recipe: Recipe, config, plan: Sequence[Scale], style_hws: Sequence[tuple[int, int]],
                device_type: str, precision: str) -> bool:
    """Whether this run's forward pass keeps freed maps in the heap (heap_reuse): at 1024 px the maps
    take 0.83-0.90x the time that way, at 4096 px 0.6x (no page faulted in afresh at every layer). An
    optimisation keeps its maps for the backward pass and measured no faster; a GPU has its own cache;
    a tiled plan is one made for want of memory."""
    if recipe.optimises or device_type != "cpu" or any(scale.tiling is not None for scale in plan):
        return False
    model = recipe.memory(config, style_hws, precision)
    peak = max(scale_peak_bytes(scale, model) for scale in plan)
    return peak * HEAP_REUSE_SLACK <= memory_budget(config, device_type)


def check_inputs(recipe: Recipe, style_masks=None, guidance=None, init_image=None, config=None) -> None:
    """Refuse, in one line naming the method, an input the method does not take, and the options that
    style masks would leave unused."""
    given = {STYLE_MASKS: style_masks is not None, GUIDANCE: guidance is not None, INIT_IMAGE: init_image is not None}
    words = {STYLE_MASKS: "style masks", GUIDANCE: "guidance maps", INIT_IMAGE: "an init image"}
    for what, present in given.items():
        if present and what not in recipe.accepts:
            raise PainterlyError(f"method '{recipe.name}' takes no {words[what]}")
    if style_masks is not None and guidance is not None:
        raise PainterlyError("style masks and guidance maps both assign styles to regions; give one or the other")
    if style_masks is not None and (getattr(config, "style_set", False)
                                    or getattr(config, "style_blend_weights", None) is not None):
        raise PainterlyError("style masks give each style its own region; they take no style-set or "
                             "style-blend-weights")


def check_session(recipe: Recipe, config, styles: int, style_masks=None, guidance=None) -> None:
    """What a run refuses as it starts, before any work: style images where the method takes none or none
    where it needs them, inputs and options it does not take, what its files say (Recipe.check), threads
    over the CPUs, a blend of another length than the styles."""
    if not styles and recipe.needs_styles:
        raise PainterlyError("at least one style image is needed")
    if styles and not recipe.needs_styles:
        raise PainterlyError(f"{recipe.name} paints the styles it was trained on; it takes no style images")
    if config.preserve_color == "histogram" and not recipe.needs_styles:
        raise PainterlyError(f"preserve-color histogram recolours the style images, which {recipe.name} does not "
                             f"take; use luminance")
    check_inputs(recipe, style_masks, guidance, config=config)
    recipe.check(config)
    if style_masks is not None:
        recipe.check_masks(config, len(style_masks))
    check_threads(config.threads)
    if styles:
        blend_weights(config, styles, guidance)


class Session:
    """One method, config and set of style images, ready to stylise frame after frame.

    The style side of every scale (`Recipe.style_targets`) is computed once and reused by each call
    to `run`, so a video pays for it once. Threads are set here, once.
    """

    def __init__(self, recipe: Recipe, config, styles: Sequence[torch.Tensor], *,
                 style_masks: Optional[Sequence[torch.Tensor]] = None,
                 guidance: Optional[Sequence[RegionPair]] = None,
                 extractor: Optional[FeatureExtractor] = None) -> None:
        check_session(recipe, config, len(styles), style_masks, guidance)
        self.recipe, self.config = recipe, config
        self.device = resolve_device(config.device)
        self.threads = set_threads(config.threads)  # first: precision auto times bf16 at these threads
        self.precision = run_precision(recipe, config, self.device)
        layers = recipe.layers(config)
        if extractor is None and layers:  # a method that reads no VGG layer gets no network
            extractor = FeatureExtractor.vgg19(pooling=recipe.pooling(config), last_layer=layers[-1],
                                               precision=self.precision, device=self.device)
        self.extractor: Optional[FeatureExtractor] = extractor
        self.styles = [s.to(self.device) for s in styles]
        self.style_masks = None if style_masks is None else [m.to(self.device) for m in style_masks]
        self.guidance = None if guidance is None else list(guidance)
        self._style_cache: dict = {}
        self._shared: dict = {}  # RunContext.shared, the same for every frame
        self.last_seed: Optional[int] = None  # the seed the last run drew from (given or drawn), to report
        self.stopped_early: Optional[str] = None  # why the last run did fewer iterations than planned, if it did
        self.last_tiles = 0  # the tiles the last run's final scale was run in (0: whole)

    def _styles_for(self, content: torch.Tensor) -> list[torch.Tensor]:
        """The style images as this frame sees them: colour-matched to it for preserve_color=histogram
        (then nothing prepared from them is reused across frames)."""
        if self.config.preserve_color != "histogram":
            return self.styles
        self._style_cache.clear()
        return [match_color(s, content) for s in self.styles]

    def run(self, content: torch.Tensor, *, init_image: Optional[torch.Tensor] = None,
            callback: Optional[Callback] = None, checkpoint: Optional[Checkpointer] = None,
            extra_terms: Optional[Mapping[str, ExtraTerm]] = None, frame: Optional[int] = None) -> torch.Tensor:
        """Stylise one content image (1x3xHxW in [0, 1]); returns the output in [0, 1].

        extra_terms: named loss terms added to every step's objective (and reported by name).
        frame: the frame index reported in every StepInfo. checkpoint: save the run's state as it goes
        and, if it says resume, continue from its file.
        """
        if init_image is not None:
            check_inputs(self.recipe, init_image=init_image)
        frame_run = _FrameRun(self, content, init_image, callback, checkpoint, dict(extra_terms or {}), frame)
        self.last_seed = frame_run.base_seed if self.recipe.optimises else None
        final = frame_run.ctx.plan[-1]
        self.last_tiles = 0 if final.tiling is None else final.tiling.tile_count(
            self.recipe.tiled_area(self.config, final.size))
        try:
            return frame_run.run()
        finally:
            self.stopped_early = frame_run.stopped_early


class _FrameRun:
    """One frame's run through the plan: the state the per-step closures share."""

    def __init__(self, session: Session, content: torch.Tensor, init_image: Optional[torch.Tensor],
                 callback: Optional[Callback], checkpoint: Optional[Checkpointer],
                 extra_terms: dict[str, ExtraTerm], frame: Optional[int]) -> None:
        self.session, self.recipe, self.config = session, session.recipe, session.config
        self.callback, self.checkpoint, self.extra_terms = callback, checkpoint, extra_terms
        # why the run did fewer iterations than planned: "max_time", or "callback" (it raised StopRun)
        self.stopped_early: Optional[str] = None
        device = session.device
        content = content.to(device)
        styles = session._styles_for(content)
        plan = make_plan(self.recipe, self.config, tuple(content.shape[-2:]), [tuple(s.shape[-2:]) for s in styles],
                         device.type, session.precision)
        seed = self.config.seed if self.recipe.optimises else 0  # a forward pass draws nothing at random
        self.base_seed = seed if seed is not None else torch.seed()
        self.saved = None
        if checkpoint is not None:
            options = {"method": self.recipe.name, **dataclasses.asdict(self.config), "precision": session.precision}
            made = self.recipe.init_run(self.config) is not None  # named by the options; may differ by device
            inputs = [content, *session.styles, None if made else init_image, *(session.style_masks or []),
                      *pair_masks(session.guidance)]
            self.saved = checkpoint.start(fingerprint(inputs, options), session.precision,
                                          run_record(inputs, options))
        if self.saved is not None:
            self.base_seed = self.saved["base_seed"]
            plan = plan_from_json(self.saved["plan"])  # tiles chosen for the memory free when the run began
        self.reuses_heap = reuses_heap(self.recipe, self.config, plan, [tuple(s.shape[-2:]) for s in styles],
                                       device.type, session.precision)
        self.ctx = RunContext(self.config, device, session.precision, session.extractor, torch.Generator(), content,
                              styles, plan, None if init_image is None else init_image.to(device),
                              session.style_masks, session.guidance, frame, shared=session._shared)
        self.start_time = time.monotonic() - (self.saved["elapsed"] if self.saved else 0.0)
        self.step = self.saved["step"] if self.saved else 0
        self.curvature: Optional[tuple[float, int]] = None  # (L-BFGS H_diag, pixels) of the last optimiser
        luminance = self.config.preserve_color == "luminance"
        recoloured: Callable[[torch.Tensor], torch.Tensor] = (
            (lambda img: transfer_luminance(img, content)) if luminance else (lambda img: img))
        masks = session.style_masks
        if masks is not None and len(masks) == 1:
            # one style in one mask: the photo outside it, blended by the mask's grey, for every method.
            # An optimising method's masked Gram is normalised by the mask's sum, so a mask grey all over
            # would otherwise paint at full strength where a network's picture is half the photo
            # (several masks share the picture out among their styles)
            self.finish = lambda img: photo_outside(recoloured(img), content, masks[0])
        else:
            self.finish = recoloured

    # --- reporting ----------------------------------------------------------------------------
    def report(self, k: int, iteration: int, iterations: int, terms: LossTerms, state: Optional[Callable[[], dict]],
               render: Callable[[], torch.Tensor], stopped: Optional[Callable[[], torch.Tensor]] = None) -> None:
        """After each step: the callback (whose previews render the image as it is), then the checkpointer
        (which may stop the run, writing `stopped`'s image: the one the run would end on, where it differs)."""
        self.step += 1
        plan = self.ctx.plan
        if self.callback is not None:
            try:
                self.callback(StepInfo(iteration=iteration, iterations=iterations, scale=k, scales=len(plan),
                                       size=plan[k].size, losses=terms.floats(),
                                       elapsed=time.monotonic() - self.start_time, step=self.step,
                                       frame=self.ctx.frame, _render=render))
            except StopRun:  # the rest of this optimisation, its tiles and its scales are skipped
                if self.recipe.optimises:  # a one-pass method finishes its pass: half a picture is no picture
                    self.stopped_early = "callback"
        if self.checkpoint is not None and state is not None:
            step = self.step
            self.checkpoint.after_step(
                step, lambda: {"scale": k, "step": step, "elapsed": time.monotonic() - self.start_time,
                               "plan": plan_to_json(plan), "rng": rng_state(self.ctx.generator),
                               "base_seed": self.base_seed, **state()},
                (k, len(plan), iteration, iterations), stopped or render)

    # --- one image: a whole scale or a tile ---------------------------------------------------
    def optimise(self, k: int, image: torch.Tensor, targets, place: Place, iterations: int, resume: bool,
                 shown: Callable[[int], int], shown_total: int, locate: Callable[[], dict],
                 compose: Callable[[torch.Tensor], torch.Tensor], deadline: Optional[float], warm: bool) -> torch.Tensor:
        """Optimise `image` against `targets`; shown maps an iteration to the one reported, locate adds
        what places it in the checkpoint, compose makes the whole preview from it."""
        recipe, ctx = self.recipe, self.ctx
        param = recipe.parameterise(ctx, k, image).to(ctx.device)
        pixels = image.shape[-2] * image.shape[-1]
        # A tile's L-BFGS starts from the inverse-Hessian scale the previous optimiser learnt, rescaled
        # by pixel count (losses are means, so it grows with the pixels).
        h0 = self.curvature[0] * pixels / self.curvature[1] if warm and self.curvature is not None else None
        optimizer = recipe.optimizer(ctx, k, param, h0)
        # L-BFGS's last update is never evaluated and may overshoot: end on the best image seen
        best = BestIterate() if isinstance(optimizer, torch.optim.LBFGS) else None
        done = restore_state(self.saved, param, optimizer, ctx.generator) if resume else 0
        if resume and best is not None and self.saved.get("best") is not None:
            best.load_state_dict(self.saved["best"])
        if resume and self.saved.get("curvature") is not None:  # what carries on where this one learns none
            self.curvature = (float(self.saved["curvature"][0]), int(self.saved["curvature"][1]))
        layers = recipe.layers(self.config)

        def loss_fn(img: torch.Tensor) -> LossTerms:
            terms = recipe.loss(ctx, targets, img, ctx.extractor(img, layers) if layers else {})
            if not isinstance(terms, LossTerms):  # a new recipe's slip: said, not "'dict' has no attribute 'total'"
                raise TypeError(f"method '{recipe.name}': loss() must return painterly.LossTerms, not "
                                f"{type(terms).__name__}")
            for name, term in self.extra_terms.items():
                terms.terms[name] = term(img, place)
            return terms

        reached = [done]

        def on_step(i: int, terms: LossTerms) -> None:
            reached[0] = i
            self.report(k, shown(i), shown_total, terms,
                        lambda: {"iteration": i, "param": param.state_dict(), "optimizer": optimizer.state_dict(),
                                 "best": None if best is None else best.state_dict(),
                                 "curvature": self.curvature, **locate()},
                        lambda: self.finish(compose(param.image())),
                        None if best is None else lambda: self.finish(compose(best.image(param, loss_fn))))

        optimize(param, loss_fn, iterations, optimizer, on_step, deadline, start=done, best=best,
                 stop=self.stopping)
        if reached[0] < iterations and self.stopped_early is None:
            self.stopped_early = "max_time"
        if best is not None:
            best.settle(param, loss_fn)
        h_diag = getattr(optimizer, "h_diag", None)
        if h_diag is not None:
            self.curvature = (h_diag, pixels)
        return recipe.output(param)

    def stopping(self) -> bool:
        """Whether a callback asked the run to end (StopRun)."""
        return self.stopped_early == "callback"

    @contextmanager
    def reporting(self, progress: Callable[[int, int], None]) -> Iterator[None]:
        """The recipe's ctx.progress is `progress` within the block, the silent default after."""
        self.ctx.progress = progress
        try:
            yield
        finally:
            self.ctx.progress = RunContext.progress

    def forward(self, k: int, image: torch.Tensor, targets, shown: int, shown_total: int,
                compose: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """One forward pass instead of an optimisation (feed-forward methods). A tile is one step of its
        scale; a whole image reports each part of the pass the recipe announces (ctx.progress) as a
        step, its preview the image as it was until the last part, which is the result."""
        parts = [1]

        def progress(done: int, total: int) -> None:
            parts[0] = total
            if done < total:
                self.report(k, done, total, LossTerms({}), None, lambda: self.finish(compose(image.clamp(0, 1))))

        with self.reporting(progress if shown_total == 1 else RunContext.progress):
            out = self.recipe.forward(self.ctx, targets, image)
        last = (shown, shown_total) if shown_total > 1 else (parts[0], parts[0])
        self.report(k, *last, LossTerms({}), None, lambda: self.finish(compose(out.clamp(0, 1))))
        return out

    # --- the plan -----------------------------------------------------------------------------
    def run(self) -> torch.Tensor:
        with heap_reuse() if self.reuses_heap else nullcontext():
            return self.run_plan()

    def run_plan(self) -> torch.Tensor:
        recipe, ctx, saved = self.recipe, self.ctx, self.saved
        plan = ctx.plan
        shares = time_shares(plan)
        first_scale = saved["scale"] if saved else 0
        image = None
        for k, scale in enumerate(plan):
            if k < first_scale:
                continue
            if self.stopping():
                break
            resumed = saved is not None and k == first_scale
            seed = self.base_seed + SCALE_SEED_STRIDE * k
            ctx.generator.manual_seed(seed - 2**64 if seed >= 2**64 else seed)  # torch takes seeds below 2**64
            if resumed:  # replaced by the saved parameterisation or canvas below
                image = torch.zeros(1, 3, *scale.size, device=ctx.device)
            else:
                image = recipe.start(ctx, k, scale, image)
            key = (k, scale)
            if key not in self.session._style_cache:
                self.session._style_cache[key] = recipe.style_targets(ctx, k, scale)
            style = self.session._style_cache[key]
            deadline = (scale_deadline(self.config.max_time, self.start_time, shares, k) if recipe.optimises
                        else None)
            if scale.tiling is None:
                image = self.whole_scale(k, scale, image, style, resumed, deadline)
            else:
                image = self.tiled_scale(k, scale, image, style, resumed, deadline)
            if k < len(plan) - 1:  # a coarser scale's targets are not kept through the finer ones' peaks (the
                # memory model counts a scale's own: STROTSS's three coarser ones held 110 MiB more at 512 px);
                # the final scale's are, for the next frame of a video
                del self.session._style_cache[key], style
        if tuple(image.shape[-2:]) != plan[-1].size:  # stopped at a coarser scale: the size asked for
            image = resize(image, plan[-1].size)
        if self.checkpoint is not None:
            self.checkpoint.finish()
        return self.finish(image.clamp(0, 1))

    def whole_scale(self, k: int, scale: Scale, image: torch.Tensor, style, resumed: bool,
                    deadline: Optional[float]) -> torch.Tensor:
        targets = self.recipe.targets(self.ctx, k, scale, style, None)
        if not self.recipe.optimises:
            return self.forward(k, image, targets, 1, 1, lambda img: img)
        return self.optimise(k, image, targets, Place(k, scale.size), scale.iterations, resumed, lambda i: i,
                             scale.iterations, dict, lambda img: img, deadline, warm=False)

    def tiled_scale(self, k: int, scale: Scale, image: torch.Tensor, style, resumed: bool,
                    deadline: Optional[float]) -> torch.Tensor:
        """Tile by tile, round by round (painterly.tiling), each tile given its share of the scale's time."""
        tiling, saved = scale.tiling, self.saved
        per_round = round_iterations(scale.iterations, tiling.rounds)
        counts = [len(tiling.boxes(scale.size, r)) * per_round[r] for r in range(tiling.rounds)]
        total = sum(counts)
        # A copy: tiles are written into the canvas in place, and the start image may be the very
        # tensor a recipe keeps as its content target (resize() returns its input at the same size).
        canvas = saved["canvas"].to(self.ctx.device) if resumed else image.clone()
        begin = tuple(saved["tile"]) if resumed else (0, 0)

        def compose(box: Box) -> Callable[[torch.Tensor], torch.Tensor]:
            def paste(tile: torch.Tensor) -> torch.Tensor:
                preview = canvas.clamp(0, 1)
                box.crop(preview).copy_(tile)
                return preview
            return paste

        def run_tile(crop: torch.Tensor, box: Box, r: int, t: int) -> torch.Tensor:
            if self.stopping():
                return crop
            targets = self.recipe.targets(self.ctx, k, scale, style, box)
            if targets is None:  # nothing pulls on this tile
                return crop
            offset = sum(counts[:r]) + t * per_round[r]
            tile_deadline = None
            if deadline is not None:  # this tile's share of what is left of the scale's time
                now = time.monotonic()
                tile_deadline = now + max(0.0, deadline - now) * per_round[r] / max(1, total - offset)
            return self.optimise(k, crop, targets, Place(k, scale.size, box), per_round[r],
                                 resumed and (r, t) == begin, lambda i: offset + i, total,
                                 lambda: {"tile": [r, t], "canvas": canvas}, compose(box), tile_deadline, warm=True)

        if not self.recipe.optimises:
            return self.forward_tiled(k, scale, image, style)
        return optimize_tiled(canvas, tiling, run_tile, begin)

    @torch.no_grad()
    def forward_tiled(self, k: int, scale: Scale, image: torch.Tensor, style) -> torch.Tensor:
        """One forward pass per tile of one round, each from the start image, blended as a weighted
        average (the round's windows sum to one), so a pixelwise method gives the whole-image result.
        What the recipe prepares for all tiles while making the first tile's targets (a network's
        statistics, AdaIN's and WCT's levels over every tile) reports its parts (ctx.progress) as the
        scale's first steps, then each tile is one."""
        size, tiling = scale.size, scale.tiling
        boxes = tiling.boxes(size, 0)
        out = torch.zeros_like(image)
        prepared = [0]  # the steps the preparation took

        def progress(done: int, total: int) -> None:
            prepared[0] = total
            self.report(k, done, total + len(boxes), LossTerms({}), None, lambda: self.finish(image.clamp(0, 1)))

        def compose(box: Box) -> Callable[[torch.Tensor], torch.Tensor]:
            def paste(tile: torch.Tensor) -> torch.Tensor:
                preview = image.clamp(0, 1)
                box.crop(preview).copy_(tile.clamp(0, 1))
                return preview
            return paste

        for t, box in enumerate(boxes):
            with self.reporting(progress):
                targets = self.recipe.targets(self.ctx, k, scale, style, box)
            crop, before = box.crop(image), prepared[0]
            result = crop if targets is None else self.forward(k, crop, targets, before + t + 1, before + len(boxes),
                                                               compose(box))
            box.crop(out).add_(result * blend_window(box, size, tiling.overlap).to(out))
        return out


def photo_outside(image: torch.Tensor, content: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`image` where `mask` (1x1xhxw, white = the style's region, soft edges blend) is white, the
    content photo where it is black."""
    size = tuple(image.shape[-2:])
    weight = F.interpolate(mask.to(image), size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    photo = resize(content.to(image), size)
    return photo + weight * (image - photo)


def run(content: torch.Tensor, styles: Sequence[torch.Tensor], config, *, callback: Optional[Callback] = None,
        extractor: Optional[FeatureExtractor] = None, checkpoint: Optional[Checkpointer] = None,
        init_image: Optional[torch.Tensor] = None, style_masks: Optional[Sequence[torch.Tensor]] = None,
        guidance: Optional[Sequence[RegionPair]] = None,
        extra_terms: Optional[Mapping[str, ExtraTerm]] = None) -> torch.Tensor:
    """Stylise `content` (1x3xHxW in [0, 1]) with `styles` by the method whose config `config` is."""
    if checkpoint is not None:  # a resumed run goes on in the precision and threads it began in
        config = dataclasses.replace(config, precision=checkpoint.pinned_precision(config.precision),
                                     threads=checkpoint.pinned_threads(config.threads))
    session = Session(recipe_for(config), config, styles, style_masks=style_masks, guidance=guidance,
                      extractor=extractor)
    return session.run(content, init_image=init_image, callback=callback, checkpoint=checkpoint,
                       extra_terms=extra_terms)
