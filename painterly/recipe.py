"""What a method is: a `Recipe` of hooks that the one driver (painterly.driver) calls.

A recipe declares its config class, the VGG layers it reads, its scales, its memory and time model,
which inputs it accepts, and how to prepare targets for a scale or a tile. A stage is either an
optimisation (the recipe gives the parameterisation, the optimiser and the objective) or, for
feed-forward methods, one forward pass per scale or tile (`optimises = False`, the recipe gives
`forward`). Everything else (device, threads, precision, the plan, the feature extractor,
fingerprint/checkpoint/resume, deadlines, progress, whole-or-tiled) is the driver's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence

import torch
from torch import nn

from .config import OptimisationConfig
from .errors import PainterlyError
from .features import FeatureExtractor
from .guidance import RegionPair
from .losses import LossTerms
from .schedule import ASSUMED_GFLOPS, MemoryModel, Scale, scale_seconds
from .tiling import Box

# Inputs a recipe may accept beside the content and style images.
INIT_IMAGE, STYLE_MASKS, GUIDANCE = "init_image", "style_masks", "guidance"


@dataclass(frozen=True)
class Place:
    """Where a loss is evaluated: scale index, the scale's (height, width), and the tile (None: whole)."""

    scale: int
    size: tuple[int, int]
    box: Optional[Box] = None

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        """`image` (any size, e.g. a full-resolution map) resized to this scale and cut to the tile."""
        import torch.nn.functional as F

        if tuple(image.shape[-2:]) != self.size:
            image = F.interpolate(image, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return image if self.box is None else self.box.crop(image)


# An extra named loss term a caller adds to every step (video's temporal term): (image, place) -> scalar.
ExtraTerm = Callable[[torch.Tensor, Place], torch.Tensor]


@dataclass
class RunContext:
    """What a recipe's hooks see of the run: config, hardware, extractor, inputs on the device, and
    the generator every random draw must use (re-seeded at each scale, saved in checkpoints)."""

    config: Any
    device: torch.device
    precision: str
    extractor: Optional[FeatureExtractor]  # None for a method that reads no VGG layer
    generator: torch.Generator
    content: torch.Tensor
    styles: list[torch.Tensor]
    plan: list[Scale]
    init_image: Optional[torch.Tensor] = None
    style_masks: Optional[list[torch.Tensor]] = None
    guidance: Optional[list[RegionPair]] = None
    frame: Optional[int] = None
    cache: dict = field(default_factory=dict)  # a recipe's own per-run memo (this content image's)
    # a memo for what depends only on the config (a loaded model, a decoder): kept by the Session
    # across the frames of a video, so a model is read once per video, not once per frame
    shared: dict = field(default_factory=dict)
    # a forward pass calls progress(done, total) after each of its parts (a network's layers, a level's
    # encoding and decoding): over a whole image the driver reports each part as a step, so a pass of a
    # minute at print size shows a moving bar and is cancelled between parts, not after the last
    progress: Callable[[int, int], None] = lambda done, total: None

    def style_blend(self) -> tuple[float, ...]:
        """The config's style blend weights for this run's styles and guidance (see blend_weights)."""
        return blend_weights(self.config, len(self.styles), self.guidance)

    def content_at(self, k: int, size: tuple[int, int]) -> torch.Tensor:
        """The content resized to scale k (made once per scale; read it, never write into it)."""
        if self.cache.get("content_scale") != k:
            from .image import resize

            self.cache.update(content_scale=k, content_k=resize(self.content, size))
        return self.cache["content_k"]


def blend_weights(config: Any, styles: int, guidance: Optional[Sequence[Any]] = None) -> tuple[float, ...]:
    """The config's style blend weights (default all equal), checked against the number of style images,
    and each guidance region checked to have one style mask per style image."""
    if guidance is not None and any(len(p.styles) != styles for p in guidance):
        raise PainterlyError(f"each guidance region needs one style mask per style image ({styles})")
    blend = getattr(config, "style_blend_weights", None) or (1.0,) * styles
    if len(blend) != styles:
        raise PainterlyError(f"style-blend-weights has {len(blend)} value{'s' if len(blend) != 1 else ''} for "
                             f"{styles} style image{'s' if styles != 1 else ''}")
    if max(blend) <= 0:
        raise PainterlyError("style-blend-weights must not all be zero")
    top = max(blend)  # relative weights: over the largest first, so 1e308,1e308 is 1,1 (their sum overflowed)
    return tuple(w / top for w in blend)


class Recipe:
    """A method's hooks. Subclasses set the class attributes and override what their method needs."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    summary: ClassVar[str]                       # one line for --help and the method list
    accepts: ClassVar[frozenset[str]] = frozenset()  # of INIT_IMAGE, STYLE_MASKS, GUIDANCE
    optimises: ClassVar[bool] = True             # False: each scale or tile is one forward pass
    runs_int8: ClassVar[bool] = False            # True: that pass has an int8 form (precision int8)
    step_overhead_s: ClassVar[float] = 0.0       # seconds per step beside VGG (time model)
    needs_styles: ClassVar[bool] = True          # False: the method brings its own (a trained network)

    # --- planning -----------------------------------------------------------------------------
    def layers(self, config: Any) -> list[str]:
        """The VGG layers every loss reads, in network order (one pass per step serves them all)."""
        raise NotImplementedError

    def pooling(self, config: Any) -> str:
        return getattr(config, "pooling", "avg")

    def scales(self, config: Any, final: tuple[int, int]) -> list[Scale]:
        """Coarse-to-fine sizes and iterations, ending at `final` (height, width)."""
        raise NotImplementedError

    def check(self, config: Any) -> None:
        """Refuse, in one line and before any work, a config this method cannot run for what only a file it
        names tells (a model's style count); plans and runs both call it."""

    def check_masks(self, config: Any, masks: int) -> None:
        """Refuse, before any work, `masks` style masks this method cannot paint with this config (a
        network's masks: one per style it holds). Runs and preflight call it."""

    def tiled_area(self, config: Any, size: tuple[int, int]) -> tuple[int, int]:
        """The (height, width) a tiled scale of `size` lays its tiles over: the picture itself, unless the
        method works on more (AdaIN and WCT: the picture reflected by their decoders' margin)."""
        return size

    def memory(self, config: Any, style_hws: Sequence[tuple[int, int]], precision: str) -> MemoryModel:
        raise NotImplementedError

    def optimizer_name(self, config: Any) -> str:
        return getattr(config, "optimizer", "none")

    def time_model(self, precision: str) -> str:
        """What seconds() counts, for --dry-run."""
        return (f"FLOP model: VGG19 forward+backward = 2 x conv FLOPs at an assumed {ASSUMED_GFLOPS[precision]:.0f} "
                f"GFLOP/s {precision}, measured on 2 Zen 4 cores; other CPUs differ")

    @staticmethod
    def one_pass_time_model(what: str, gflops: float, precision: str) -> str:
        """time_model() of a method timed by the multiply-adds of its forward pass at a rate measured end to end."""
        return (f"{what}, 2 x their multiply-adds, at {gflops:.0f} GFLOP/s {precision} as measured end to end on "
                f"2 cores; other CPUs differ")

    def seconds(self, config: Any, scale: Scale, precision: str) -> float:
        """Estimated seconds for one scale of the plan: VGG19's FLOPs at the precision's assumed rate,
        plus step_overhead_s a step (a method that runs another network counts that instead)."""
        return scale_seconds(scale, self.layers(config), precision, self.step_overhead_s)

    # The video temporal loss is temporal_weight x this x mean(c (255 (x - w))^2): the factor that puts
    # it on the scale of the method's own terms (Gatys's are ~1e4 at default weights, STROTSS's ~1).
    temporal_scale: ClassVar[float] = 1.0

    def later_frames(self, config: Any, iterations: Optional[int], size: tuple[int, int]) -> Optional[Any]:
        """The config for video frames (of `size`) after the first, which start from the previous
        frame's result warped onto them (given as the init image) and so need no coarse-to-fine:
        `iterations` per frame (None: the config's), the balance of the first frame's final scale.
        None: the method cannot start from an image; each frame then runs as the first, and the video
        blends the outputs along the flow instead."""
        return None

    def init_path(self, config: Any) -> Optional[str]:
        """A file the run starts from, if the config names one (loaded by the API)."""
        return None

    def init_run(self, config: Any) -> Optional[dict[str, Any]]:
        """The options of another method's run (e.g. a style network's) whose picture of the content this
        run starts from, if the config names one: the API makes it at the run's size, device and
        precision. The checkpoint leaves that picture out of its fingerprint (the options name it; a
        resume does not start from it)."""
        return None

    # --- per scale / tile ---------------------------------------------------------------------
    def style_targets(self, run: RunContext, k: int, scale: Scale) -> Any:
        """What the style side gives scale k: computed once per scale and reused by every frame of a
        video (it must not depend on the content)."""
        return None

    def targets(self, run: RunContext, k: int, scale: Scale, style: Any, box: Optional[Box]) -> Any:
        """The content side at scale k, for the whole image (box None) or one tile; None skips the tile."""
        raise NotImplementedError

    def start(self, run: RunContext, k: int, scale: Scale, previous: Optional[torch.Tensor]) -> torch.Tensor:
        """The image scale k starts from, given the previous scale's result (None at the first)."""
        raise NotImplementedError

    # --- an optimisation stage ----------------------------------------------------------------
    def parameterise(self, run: RunContext, k: int, image: torch.Tensor) -> nn.Module:
        raise NotImplementedError

    def optimizer(self, run: RunContext, k: int, param: nn.Module, h0: Optional[float]) -> torch.optim.Optimizer:
        """h0: the inverse-Hessian scale an earlier tile's L-BFGS learnt (None for a whole scale)."""
        raise NotImplementedError

    def loss(self, run: RunContext, targets: Any, image: torch.Tensor,
             features: Mapping[str, torch.Tensor]) -> LossTerms:
        """Named loss terms of `image`, whose VGG features at `layers()` are `features`."""
        raise NotImplementedError

    def output(self, param: nn.Module) -> torch.Tensor:
        """The optimised image carried to the next scale (may be unclamped)."""
        return param.image()

    # --- a forward stage ----------------------------------------------------------------------
    def forward(self, run: RunContext, targets: Any, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


REGISTRY: dict[str, Recipe] = {}


# The hooks every method defines, and those of an optimising method or of a forward pass besides.
REQUIRED_HOOKS = ("layers", "scales", "memory", "targets", "start")
OPTIMISING_HOOKS = ("parameterise", "optimizer", "loss")
FORWARD_HOOKS = ("forward",)


def register(recipe: Recipe, replace: bool = False) -> Recipe:
    """Make a method available to stylize(), plan(), the CLI and every other interface. A method that
    optimises needs a config with the seed, time limit and tile rounds the driver reads there. A name or a
    config class another method has is refused (a built-in replaced unseen) unless `replace`."""
    name = getattr(recipe, "name", None)
    config_class = getattr(recipe, "config_class", None)
    if not isinstance(name, str) or not name or not isinstance(config_class, type):
        raise PainterlyError(f"{type(recipe).__name__} needs a class attribute name (a string) and config_class")
    if recipe.optimises and not issubclass(config_class, OptimisationConfig):
        raise PainterlyError(f"method '{name}' optimises, so its config must derive from OptimisationConfig "
                             f"(a forward pass sets optimises = False)")
    hooks = REQUIRED_HOOKS + (OPTIMISING_HOOKS if recipe.optimises else FORWARD_HOOKS)
    missing = [hook for hook in hooks if getattr(type(recipe), hook) is getattr(Recipe, hook)]
    if missing:  # else a bare NotImplementedError when a run reaches one
        raise PainterlyError(f"method '{name}' must define {', '.join(missing)} (see painterly.Recipe)")
    taken = REGISTRY.get(name)
    # the same recipe again (its module reloaded, a notebook cell run twice) replaces itself
    again = taken is not None and (type(taken).__module__, type(taken).__qualname__) == \
        (type(recipe).__module__, type(recipe).__qualname__)
    if taken is not None and not again and not replace:
        raise PainterlyError(f"a method named '{name}' is registered already ({type(taken).__name__}); give "
                             "another name, or register(..., replace=True)")
    twin = next((other for other, r in REGISTRY.items() if other != name and r.config_class is config_class), None)
    if twin is not None:  # which method a config means would be a guess
        raise PainterlyError(f"method '{twin}' has the config class {config_class.__name__} already; give "
                             f"'{name}' its own (a subclass)")
    REGISTRY[name] = recipe
    return recipe


PLUGIN_GROUP = "painterly.methods"  # installed packages' entry points that register methods
PLUGINS_VARIABLE = "PAINTERLY_PLUGINS"  # or modules named here, comma-separated (importable: on PYTHONPATH)


def load_plugins(strict: bool = True) -> list[str]:
    """Import what registers methods beyond the built-in ones: the modules named by the entry points of the
    group painterly.methods (an entry point names a module, which registers its recipes as it is imported),
    and the modules $PAINTERLY_PLUGINS names. The command line (and so the web app, and every rank and batch
    worker it starts) calls it first, so a method registered there works in them as in stylize(); a script
    that imports its module itself needs no plugin. Returns what was loaded. A plugin that fails is a
    PainterlyError naming it, or with strict=False a warning on stderr (the command line goes on: a broken
    plugin must not take `painterly --help` or the built-in methods with it)."""
    import sys
    from importlib import import_module, metadata

    found = [(entry.name, entry.load) for entry in metadata.entry_points(group=PLUGIN_GROUP)]
    found += [(module, lambda module=module: import_module(module))
              for module in (m.strip() for m in os.environ.get(PLUGINS_VARIABLE, "").split(",")) if module]
    loaded = []
    for name, load in found:
        try:
            load()
        except Exception as exc:  # noqa: BLE001 - a plugin's own failure, said in one line
            why = str(exc) if isinstance(exc, PainterlyError) else f"{type(exc).__name__}: {exc}"
            message = f"plugin '{name}' could not be loaded ({why})"
            if strict:
                raise PainterlyError(message) from None
            print(f"painterly: warning: {message}", file=sys.stderr)
            continue
        loaded.append(name)
    return loaded


def unregister(name: str) -> Recipe:
    """Take a method out of the registry (an experiment's, at its end); returns its recipe."""
    if name not in REGISTRY:
        raise PainterlyError(f"no method named '{name}' is registered")
    return REGISTRY.pop(name)
