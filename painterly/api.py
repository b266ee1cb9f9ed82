"""The public API. The CLI and every later interface call only this."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
from typing import Any, Callable, Iterable, Optional, Sequence, Union

import torch
from PIL import Image

from .checkpoint import Checkpointer, Interrupted, make_checkpointer
from .config import option_names, unknown_options
from .driver import Session, check_inputs, check_session, make_plan, memory_budget, run_precision
from .errors import PainterlyError, require_file
from .guidance import check_guides, paired_regions
from .hardware import INT8_ONE_PASS_ONLY, free_memory_bytes, resolve_device
from .image import (ImageLike, as_map, as_tensor, fit_long_side, image_list, open_image, resize, split_alpha,
                    tensor_to_pil)
from . import methods as _builtin_methods  # noqa: F401  (the built-in methods register themselves)
from .progress import Callback
from .recipe import REGISTRY, Recipe
from .schedule import RunPlan, fixed_part_error, largest_fitting_long_side, scale_peak_bytes

DEFAULT_METHOD = "gatys"


def available_methods() -> dict[str, Recipe]:
    """The registered methods by name (each a painterly.Recipe: name, summary, config_class, accepts)."""
    return dict(REGISTRY)


def get_method(name: str) -> Recipe:
    """The registered method (its Recipe) called `name`; a one-line error naming the methods otherwise."""
    if name not in REGISTRY:
        near = [known for known in REGISTRY if str(name).lower() == known.lower()]
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise PainterlyError(f"unknown method '{name}'{hint}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def method_of(config) -> str:
    """The name of the method whose config class `config` is (None: the default method)."""
    if config is None:
        return DEFAULT_METHOD
    # the nearest class up the config's own: a method whose config subclasses GatysConfig is that method,
    # not Gatys (the first isinstance match ran Gatys in its place)
    for cls in type(config).__mro__:
        for name, recipe in REGISTRY.items():
            if recipe.config_class is cls:
                return name
    raise PainterlyError(f"{type(config).__name__} is no registered method's config")


def _option_names() -> dict[str, set[str]]:
    """Each registered method's option names."""
    return {name: {f.name for f in dataclasses.fields(recipe.config_class)} for name, recipe in REGISTRY.items()}


def method_clash(options: Iterable[str], spell: Callable[[str], str] = str, how: str = "a method") -> PainterlyError:
    """The error for options that no one method takes all of, naming the methods that take each option
    not every method takes (`spell` writes an option's name, as a flag on a command line)."""
    by_method = _option_names()
    takers = {name: [m for m, names in by_method.items() if name in names] for name in options}
    return PainterlyError("the options do not pick one method: " + ", ".join(
        f"{spell(name)} ({', '.join(methods)})" for name, methods in takers.items() if len(methods) < len(by_method))
        + f"; give {how} and options it takes")


def unknown_option_message(names: Sequence[str]) -> str:
    """'unknown option style_mask (did you mean style_masks?)': the nearest of every method's options
    and stylize()'s own keywords for each name."""
    known = set().union(*_option_names().values(), _stylize_keywords())
    words = []
    for name in names:
        if "-" in name and name.replace("-", "_") in known:  # quoted: the web's terms leave it as given
            words.append(f"'{name}' (did you mean {name.replace('-', '_')}?)")
            continue
        near = difflib.get_close_matches(name, sorted(known - {name}), n=1, cutoff=0.75)
        words.append(f"{name} (did you mean {near[0]}?)" if near else name)
    return f"unknown option{'s' if len(names) > 1 else ''} {', '.join(words)}"


def _stylize_keywords() -> set[str]:
    return {p.name for p in inspect.signature(stylize).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def method_for(options: Iterable[str]) -> str:
    """The method options name: the default, unless it lacks one of them and exactly one method takes
    them all (`model=` means the trained-network method, `decoder=` AdaIN)."""
    given = set(options)
    takers = [name for name, names in _option_names().items() if given <= names]
    return DEFAULT_METHOD if DEFAULT_METHOD in takers or len(takers) != 1 else takers[0]


def make_config(method: Optional[str] = None, config=None, **options):
    """A method's config from defaults (or `config`) with `options` overriding fields by name; with
    neither a method nor a config, the method is the one the options select (method_for)."""
    inferred = method is None and config is None
    nobodys = sorted(set(options) - set().union(*_option_names().values()))
    if nobodys:  # no method's: a misspelling, told as one (not as a clash with the method it made us infer)
        raise PainterlyError(unknown_option_message(nobodys))
    if method is None:
        method = method_of(config) if config is not None else method_for(options)
    cls = get_method(method).config_class
    unknown = sorted(unknown_options(cls, options))
    if unknown and inferred and set(options) <= set().union(*_option_names().values()):
        raise method_clash(options)  # every option is some method's, but no one method takes them all
    if unknown:
        raise PainterlyError(f"unknown option(s) for {method}: {', '.join(unknown)}")
    base = config if config is not None else cls()
    if not isinstance(base, cls):
        raise PainterlyError(f"method '{method}' takes a {cls.__name__} config, not {type(base).__name__}")
    made = dataclasses.replace(base, **options)
    if getattr(made, "precision", None) == "int8" and not get_method(method).runs_int8:
        raise PainterlyError(INT8_ONE_PASS_ONLY)  # here, so batches and the web app refuse it before any work
    return made


@dataclasses.dataclass
class _Request:
    """A stylize() call's inputs read and checked: what it refuses before loading a network or running."""

    recipe: Recipe
    config: Any
    content: torch.Tensor
    alpha: Optional[Image.Image]
    styles: list[torch.Tensor]
    pairs: Optional[list]
    masks: Optional[list[torch.Tensor]]
    init_picture: Optional[torch.Tensor]  # init= given as a picture in memory, not a name or a file

    @classmethod
    def of(cls, content, styles, method, config, content_guidance, style_guidance, style_masks,
           options: dict) -> "_Request":
        alpha = None
        if isinstance(content, torch.Tensor):
            content_t = as_tensor(content, "content image")
        else:
            rgb, alpha = split_alpha(open_image(content, "content image"))
            content_t = as_tensor(rgb, "content image")
        init_picture = None
        if options.get("init") is not None and not isinstance(options["init"], (str, os.PathLike)):
            # a picture in memory, as content and styles may be: the run starts from it (the config,
            # which holds names and files, keeps its default)
            init_picture = as_tensor(options["init"], "init image")
            options = {k: v for k, v in options.items() if k != "init"}
        cfg = sized_config(method, config, options, tuple(content_t.shape[-2:]))
        recipe = get_method(method_of(cfg) if method is None else method)
        if init_picture is not None and not any(f.name == "init" for f in dataclasses.fields(cfg)):
            raise PainterlyError(f"unknown option(s) for {recipe.name}: init")
        styles = image_list(styles)
        style_ts = [as_tensor(s, "style image") for s in styles]
        if not style_ts and recipe.needs_styles:
            raise PainterlyError("at least one style image is needed")
        given_guidance = content_guidance is not None or style_guidance is not None
        # what the method takes at all, before counting maps or masks against its styles
        check_inputs(recipe, style_masks, guidance=() if given_guidance else None, config=cfg)
        pairs = None
        if content_guidance is not None or style_guidance is not None:
            content_guide = None if content_guidance is None else as_map(content_guidance, "content guidance")
            style_guides = [as_map(g, "style guidance") for g in ([] if style_guidance is None else
                                                                        image_list(style_guidance))]
            check_guides(content_guide, style_guides, content_t, style_ts)
            # paired once here, so a guide sharing no colour fails before any work
            pairs = paired_regions(content_guide, style_guides)
        masks = None
        if style_masks is not None:
            masks = load_style_masks(style_masks, len(style_ts) if recipe.needs_styles else None, content_t)
        return cls(recipe, cfg, content_t, alpha, style_ts, pairs, masks, init_picture)


def preflight(content: ImageLike, styles: Union[ImageLike, Sequence[ImageLike]] = (), *, method: Optional[str] = None,
              config=None, content_guidance: Optional[ImageLike] = None,
              style_guidance: Union[None, ImageLike, Sequence[ImageLike]] = None,
              style_masks: Optional[Sequence[ImageLike]] = None, **options) -> RunPlan:
    """Everything stylize() with these arguments would refuse before its work, refused now (one
    PainterlyError), without running it: the images, maps and masks and their counts and shapes, the
    options, the files they name, threads, memory. Returns the run's plan. What a queue (the web app)
    calls before accepting a job."""
    request = _Request.of(content, styles, method, config, content_guidance, style_guidance, style_masks, options)
    check_session(request.recipe, request.config, len(request.styles), request.masks, request.pairs)
    made = plan(tuple(request.content.shape[-2:]), method=request.recipe.name, config=request.config,
                style_sizes=[tuple(s.shape[-2:]) for s in request.styles])
    if made.problem:
        raise PainterlyError(made.problem)
    return made


def stylize(
    content: ImageLike,
    styles: Union[ImageLike, Sequence[ImageLike]] = (),
    *,
    method: Optional[str] = None,
    config=None,
    callback: Optional[Callback] = None,
    content_guidance: Optional[ImageLike] = None,
    style_guidance: Union[None, ImageLike, Sequence[ImageLike]] = None,
    style_masks: Optional[Sequence[ImageLike]] = None,
    checkpoint: Union[None, str, os.PathLike, Checkpointer] = None,
    resume: Union[bool, str, os.PathLike] = False,
    checkpoint_every: Optional[int] = None,
    checkpoint_seconds: Optional[float] = 60.0,
    keep_checkpoint: bool = False,
    **options,
) -> Image.Image:
    """Repaint `content` in the style of `styles` and return the result as a PIL image (for a method that
    optimises, its `info["seed"]` is the seed the run used: given, or drawn where none was).

    content, styles: file paths, PIL images, numpy arrays (HxW[xC], uint8 or floats in [0, 1]) or 1x3xHxW /
    3xHxW tensors in [0, 1].
    options: any field of the method's config (e.g. size=512 or size="max": the largest long side whose whole run
    fits in 90% of free memory, as `largest_size` picks it; iterations=300, style_weight=10,
    preserve_color='luminance', seed=0); see `painterly.GatysConfig`, `painterly.StrotssConfig`. Gatys's
    init= takes a picture (a PIL image, array or tensor) as well as its names and files.
    method: a name from `painterly.available_methods()` (default: the method whose config class `config` is,
    else 'gatys').
    style_masks (methods that accept them): one mask per style image, white where that style paints
    the content (masked Gram matrices per region; the neural-style multi-region request).
    content_guidance, style_guidance: colour-coded region maps, one for the content and one per style
    image, each with its image's aspect ratio; regions painted in the same colour are paired
    (painterly.guidance; black, the unpainted rest, is a colour too). Gatys pulls each content region
    to the Gram of its paired style regions (content in a colour some style map lacks keeps the whole
    style, with a note on stderr); not together with style_masks.
    callback: called after every iteration with a `StepInfo` (iteration, named losses, and a
    `preview()` of the current image on request); raising `painterly.StopRun` in it ends an optimisation
    there and returns the picture so far. A one-pass method (a network, AdaIN, WCT) calls it after each
    part of its pass (each tile at print sizes), with no losses, and finishes its pass on StopRun. A run
    that did fewer iterations than planned says why in `info["stopped_early"]`: "max_time" or "callback".

    If the content image has an alpha channel, the result keeps it (resized to the output).

    checkpoint: a file to save the run's state to every `checkpoint_every` iterations and/or
    `checkpoint_seconds` seconds (or a ready `painterly.checkpoint.Checkpointer`); removed after
    success unless `keep_checkpoint`. resume: True continues from `checkpoint`, a path continues from
    that file (and keeps saving to it); the inputs and result-changing options must be the same.
    A stop requested through the Checkpointer raises `painterly.checkpoint.Interrupted`, whose
    `.image` is then the current image as a PIL image.
    Errors are one-line `painterly.PainterlyError`s, which name options as the CLI spells them
    (style-weight for style_weight, --max-memory for max_memory).
    """
    if callback is not None and not callable(callback):  # refused now, not after the run
        raise PainterlyError(f"callback must be a function, got {type(callback).__name__}")
    ckpt = make_checkpointer(checkpoint, resume, checkpoint_every, checkpoint_seconds, keep_checkpoint)
    if ckpt is not None and ckpt.resume and asks_size_max(options):
        # the size the run chose, not the one the memory free now allows (which would fail its fingerprint)
        options = {**options, "size": ckpt.saved_long_side() or "max"}
    request = _Request.of(content, styles, method, config, content_guidance, style_guidance, style_masks, options)
    recipe, cfg, content_t, style_ts = request.recipe, request.config, request.content, request.styles
    if ckpt is not None:  # a resumed run goes on in the precision and threads it began in
        cfg = dataclasses.replace(cfg, precision=ckpt.pinned_precision(cfg.precision),
                                  threads=ckpt.pinned_threads(cfg.threads))
    init_image = request.init_picture if request.init_picture is not None else initial_image(recipe, cfg, content_t)

    def to_pil(result: torch.Tensor) -> Image.Image:
        out = tensor_to_pil(result.cpu())
        if request.alpha is not None:
            out.putalpha(request.alpha.resize(out.size, Image.LANCZOS))
        return out

    session = Session(recipe, cfg, style_ts, style_masks=request.masks, guidance=request.pairs)
    try:
        result = session.run(content_t, init_image=init_image, callback=callback, checkpoint=ckpt)
    except Interrupted as exc:
        if isinstance(exc.image, torch.Tensor):
            exc.image = to_pil(exc.image)
        raise
    picture = to_pil(result)
    if session.last_seed is not None:  # drawn where none was given: `seed=` it to paint the same picture again
        picture.info["seed"] = session.last_seed
    if session.stopped_early is not None:  # fewer iterations than planned: "max_time" or "callback"
        picture.info["stopped_early"] = session.stopped_early
    if session.last_tiles:  # a print run tile by tile: how many tiles the full size took
        picture.info["tiles"] = session.last_tiles
    # what else sets the pixels: the same seed in another precision or thread count paints another picture
    picture.info.update(precision=session.precision, threads=session.threads, device=str(session.device))
    return picture


def initial_image(recipe: Recipe, config, content: torch.Tensor) -> Optional[torch.Tensor]:
    """The image a run of `content` starts from when the config names one: an image file, or another
    method's picture of the content (--init model:NAME: a style network's), made at the run's size and
    device, in fp32 unless the run is bf16, so the same options give the same picture in every process."""
    path, other = recipe.init_path(config), recipe.init_run(config)
    if path is not None:
        return as_tensor(path, "init image")
    if other is None:
        return None
    precision = "bf16" if config.precision == "bf16" else "fp32"
    picture = stylize(content, **other, size=config.size, device=config.device, threads=config.threads,
                      max_memory=config.max_memory, precision=precision)
    return as_tensor(picture, "init image")


def _content_size(content: Union[ImageLike, tuple[int, int]]) -> tuple[int, int]:
    """(height, width) of a content given as an image or directly as a size."""
    if isinstance(content, tuple) and len(content) == 2 and all(isinstance(v, int) for v in content):
        if min(content) < 1:
            raise PainterlyError(f"a content size is (height, width) in pixels, each at least 1; got {content}")
        return content
    return tuple(as_tensor(content, "content image").shape[-2:])


def asks_size_max(options: dict) -> bool:
    """Whether `options` ask for size "max" (any case, spaces around): the largest that fits, chosen per content."""
    return isinstance(options.get("size"), str) and options["size"].strip().lower() == "max"


def sized_config(method: Optional[str], config, options: dict, content_hw: tuple[int, int]):
    """make_config(method, config, **options), with size "max" made the largest long side that fits a content
    of (height, width) `content_hw` (largest_size), as the command line's --size max."""
    size_max = asks_size_max(options)
    cfg = make_config(method, config, **{k: v for k, v in options.items() if not (size_max and k == "size")})
    if not size_max:
        return cfg
    name = method_of(cfg) if method is None else method
    return make_config(name, cfg, size=largest_size(content_hw, method=name, config=cfg))


def plan(content: Union[ImageLike, tuple[int, int]], *, method: Optional[str] = None, config=None,
         style_sizes: Optional[Sequence[tuple[int, int]]] = None, **options) -> RunPlan:
    """What stylize() would do with this content and options, without doing it: scales (whole or
    tiled to fit memory), estimated peak memory and time. `content` may be an image or its (h, w);
    the styles are `style_sizes` ((h, w) each), by default one of the output's shape. A run that would be
    refused for its memory comes back with `problem` set instead of raising (with the plan it would need);
    one that has no plan at all (a style too small to read at some scale) raises PainterlyError."""
    hw = _content_size(content)
    cfg = sized_config(method, config, options, hw)
    recipe = get_method(method_of(cfg) if method is None else method)
    recipe.check(cfg)
    init_file, init_run = recipe.init_path(cfg), recipe.init_run(cfg)  # read by stylize(), not by the run
    if init_file is not None:
        require_file(init_file, "init image")
    if init_run is not None:  # another method's picture: that method's files
        other = dict(init_run)
        name = other.pop("method")
        get_method(name).check(make_config(name, None, **other))
    device = resolve_device(cfg.device)
    precision = run_precision(recipe, cfg, device)
    styles = [hw] if style_sizes is None else [tuple(s) for s in style_sizes]
    layers = recipe.layers(cfg)
    problem = ""
    try:
        scales = make_plan(recipe, cfg, hw, styles, device.type, precision)
    except PainterlyError as exc:  # still show the plan, with memory as the only limit lifted
        problem = str(exc)
        lifted = dataclasses.replace(cfg, tile_size=cfg.tile_size or None)
        scales = make_plan(recipe, lifted, hw, styles, "cpu", precision, budget=2**60)
    model = recipe.memory(cfg, styles, precision)
    peak = max(scale_peak_bytes(s, model) for s in scales)
    per_scale = tuple(recipe.seconds(cfg, s, precision) for s in scales)
    seconds = sum(per_scale)
    if recipe.optimises and cfg.max_time:
        seconds = min(seconds, cfg.max_time)
    free = free_memory_bytes(device.type)
    allowed = int(cfg.max_memory * 2**30) if cfg.max_memory else free
    return RunPlan(recipe.name, recipe.optimizer_name(cfg), str(device), precision, scales, tuple(layers), peak,
                   free, seconds, problem, scale_seconds=per_scale,
                   time_model=recipe.time_model(precision), one_pass=not recipe.optimises,
                   tiled_areas=tuple(recipe.tiled_area(cfg, s.size) for s in scales),
                   allowed_bytes=allowed if allowed < free else None)


def largest_size(content: Union[ImageLike, tuple[int, int]], *, method: Optional[str] = None, config=None,
                 **options) -> int:
    """The largest long side (px) whose whole-image run fits in 90% of the memory free now (or of
    config.max_memory): what `--size max` picks. Larger outputs are still possible, tile by tile."""
    cfg = make_config(method, config, **options)
    recipe = get_method(method_of(cfg) if method is None else method)
    device = resolve_device(cfg.device)
    precision = run_precision(recipe, cfg, device)
    hw = _content_size(content)
    model = recipe.memory(cfg, [hw], precision)
    iterations = max(s.iterations for s in recipe.scales(cfg, fit_long_side(*hw, cfg.size)))
    budget = memory_budget(cfg, device.type)

    def whole(size: tuple[int, int]) -> int:
        return model.scale_bytes(size, None, iterations)

    best = largest_fitting_long_side(hw, int(0.9 * budget), whole)
    chosen = fit_long_side(*hw, best)
    smallest = whole(chosen)
    if smallest > 0.9 * budget:  # not even 16 px: a model or the heap alone is over the budget
        raise fixed_part_error(smallest, budget)
    if min(chosen) < 16:  # a long thin picture: the long side that fits leaves the short one too thin
        raise PainterlyError(f"the largest size that fits, {best} px, makes a {hw[1]}x{hw[0]} picture "
                             f"{chosen[1]}x{chosen[0]} px; each side must be at least 16 px (crop it, or free memory)")
    return best


def load_style_masks(sources: Sequence[ImageLike], count: Optional[int], content: torch.Tensor) -> list[torch.Tensor]:
    """One mask per style image (white = that style's region), as 1x1xHxW in [0, 1] at the content's size;
    count None: as many as given (a multi-style network checks them against its own styles, and an
    all-black mask leaves its style out of the picture: a network's styles are fixed, an image run's are
    those given, so there an empty mask is refused as a mistake)."""
    sources = image_list(sources)
    if count is not None and len(sources) != count:
        raise PainterlyError(f"{len(sources)} style mask(s) for {count} style image(s); give one mask per style")
    h, w = content.shape[-2:]
    masks = []
    for i, source in enumerate(sources, start=1):
        mask = as_map(source, f"style mask {i}").mean(dim=1, keepdim=True)
        mh, mw = mask.shape[-2:]
        if abs(mw / mh - w / h) > 0.02 * (w / h):
            raise PainterlyError(f"style mask {i} is {mw}x{mh} but the content is {w}x{h}; "
                                 "a mask must have the content's aspect ratio")
        mask = resize(mask.expand(-1, 3, -1, -1), (h, w))[:, :1]
        if float(mask.max()) < 0.01 and count is not None:
            raise PainterlyError(f"style mask {i} is empty (all black); white marks where its style goes")
        masks.append(mask)
    if all(float(m.max()) < 0.01 for m in masks):
        raise PainterlyError("every style mask is empty (all black); white marks where its style goes")
    return masks


def _json_type(hint) -> tuple[str, bool]:
    """A config field's type as a JSON schema-ish name ('integer', 'number[]', ...) and whether None is allowed."""
    import typing

    nullable = False
    if typing.get_origin(hint) is Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable, hint = True, args[0]
    if typing.get_origin(hint) is tuple:
        return _json_type(typing.get_args(hint)[0])[0] + "[]", nullable
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(hint, str(hint)), nullable


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def method_options(method: str) -> list[dict]:
    """A method's options as JSON-ready records (name, type, nullable, default, help, choices, minimum,
    above, group), in declaration order: what a form or an HTTP client needs to offer and check them."""
    import typing

    cls = get_method(method).config_class
    hints = typing.get_type_hints(cls)
    defaults = cls()
    records = []
    for f in dataclasses.fields(cls):
        meta = f.metadata or {}
        kind, nullable = _json_type(hints[f.name])
        records.append({"name": f.name, "type": kind, "nullable": nullable,
                        "default": _json_value(getattr(defaults, f.name)), "help": meta.get("help", ""),
                        "choices": _json_value(meta.get("choices")), "minimum": meta.get("minimum"),
                        "maximum": meta.get("maximum"), "above": meta.get("above"),
                        "group": meta.get("group", "options"),
                        "default_text": meta.get("default_text"), "files": bool(meta.get("files")),
                        "names": list(option_names(meta))})
    return records


def example_images() -> dict[str, str]:
    """The example images bundled with painterly, by name (file name without extension) -> path."""
    from pathlib import Path

    folder = Path(__file__).parent / "examples"
    return {p.stem: str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".png")}
