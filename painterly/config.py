"""Method configs: frozen dataclasses whose fields declare their own checks, help text and CLI flag.

Every method's config derives from `CommonConfig` (the options every method shares: size, hardware,
memory budget, colour preservation, tiling); an optimising method's from `OptimisationConfig` (and its
seed, time limit and tiling rounds). A field made with `option()` carries
its help line, its allowed choices and its bounds; `MethodConfig.__post_init__` checks every field's
type and bounds from that, so a config built from Python, JSON or the command line is refused with a
`PainterlyError` that names the field, and the CLI and web app derive their flags from the same data.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence, TypeVar, Union

from .errors import PainterlyError

T = TypeVar("T", bound="MethodConfig")
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch's generators take
# Bounds on options that size work before any cancellable loop runs: a web request of size 10**30 had the
# planner allocate until the kernel killed the server; scales 1e6 or pyramid levels 1e6 spun for minutes.
MAX_SIZE = 65536   # px a side: 16 halvings from it still leave 1 px, and no print needs more
MAX_SCALES = 13    # coarse-to-fine stages: 65536 px at the finest halves 12 times to 16 px at the coarsest
MAX_ITERATIONS = 100_000  # at one scale: about 14 hours at 512 px on 2 cores (a web job held the worker for ages)
MAX_MEMORY_GIB = 1_048_576  # 1 PiB: beyond it GiB -> bytes overflowed
RANDOM_SEED = -1  # an optimisation's seed that asks for a drawn one, as neural-style's -seed -1


def option(default: Any, help: str, *, choices: Optional[Sequence[str]] = None, minimum: Optional[float] = None,
           above: Optional[float] = None, maximum: Optional[float] = None, words: Sequence[str] = (), none_word: Optional[str] = None,
           default_text: Optional[str] = None, group: str = "options", metavar: Optional[str] = None,
           files: bool = False, names: Union[Sequence[str], Callable[[], Sequence[str]]] = ()) -> Any:
    """A config field with its help line and checks.

    choices: allowed strings. minimum / above / maximum: value >= minimum / > above / <= maximum (each element,
    for tuples). Numbers must be finite: a NaN weight or strength made black pictures.
    words: strings the CLI passes through unparsed (`--size max`). none_word: the CLI word meaning None
    (`--scales auto`). default_text: how --help shows the default when the value alone says too little.
    group: the --help section. metavar: the placeholder in --help.
    files: the value may name a file; names: the values (or a function giving them, e.g. the bundled
    models) that are not files. An interface that must not let users name paths (the web app) allows
    only those, and the default.
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "minimum": minimum, "above": above,
            "maximum": maximum,
            "words": tuple(words), "none_word": none_word, "default_text": default_text, "group": group,
            "metavar": metavar, "files": files, "names": names}
    return dataclasses.field(default=default, metadata=meta)


def option_names(meta: dict) -> tuple[str, ...]:
    """The values of a file-taking option that are names, not files (see option())."""
    names = meta.get("names", ())
    return tuple(names() if callable(names) else names)


def unknown_options(config_class: type, options: Iterable[str]) -> list[str]:
    """The names in `options` that are not fields of `config_class`, in the order given."""
    known = {f.name for f in dataclasses.fields(config_class)}
    return [name for name in options if name not in known]


def flag_name(field_name: str) -> str:
    """size -> size, style_weight -> style-weight: how a field is named in messages and on the CLI."""
    return field_name.replace("_", "-")


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " or None"
    if origin is tuple:
        element = typing.get_args(hint)[0]
        return {int: "a list of whole numbers", float: "a list of numbers", str: "a list of strings"}.get(
            element, f"a list of {element}")
    return {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _coerced(value: Any, hint: Any) -> tuple[bool, Any]:
    """(True, value as the type `hint`) or (False, None)."""
    origin = typing.get_origin(hint)
    if origin is Union:
        if value is None:
            return True, None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerced(value, args[0])
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, None
        items = [_coerced(v, typing.get_args(hint)[0]) for v in value]
        return (all(ok for ok, _ in items), tuple(v for _, v in items))
    if hint is float:  # numpy's numbers too (a notebook's np.float32(0.5))
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else None
    if hint is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return ok, int(value) if ok else None
    return isinstance(value, hint), value


def _number(limit: float) -> str:
    """A limit as messages show it: whole numbers in full (a seed's 18446744073709551615), others short."""
    return str(limit) if isinstance(limit, int) else f"{limit:g}"


def coerce(name: str, value: Any, hint: Any) -> Any:
    """`value` as the field's type (JSON lists become tuples, whole numbers may stand for floats), or a
    PainterlyError naming the field."""
    ok, result = _coerced(value, hint)
    if not ok and any(isinstance(v, float) and not math.isfinite(v)
                      for v in (value if isinstance(value, (list, tuple)) else [value])):
        raise PainterlyError(f"{flag_name(name)} must be a finite number, got {value}")
    if not ok:
        shown = repr(value) if isinstance(value, (str, int, float, bool, list, tuple, type(None))) else "object"
        shown = shown if len(shown) <= 80 and "\n" not in shown else shown[:60].split("\n")[0] + "..."
        raise PainterlyError(f"{flag_name(name)} must be {_type_name(hint)}, got {type(value).__name__} {shown}")
    return result


def _file_names(name: str, value: Any) -> Any:
    """A file-taking option's value with paths (os.PathLike) as strings; anything else that is not a
    string (a loaded network, say) refused as what it is not."""
    def one(v: Any) -> Any:
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        if v is not None and not isinstance(v, str):
            raise PainterlyError(f"{flag_name(name)} must be a name or a file path, got {type(v).__name__}: "
                                 "give the file load_model read (it is loaded once a process and kept)")
        return v

    return [one(v) for v in value] if isinstance(value, (list, tuple)) else one(value)


class MethodConfig:
    """Mixin for a method's frozen config dataclass: field checks, JSON round-trip."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("files"):
                value = _file_names(f.name, value)
            value = coerce(f.name, value, hints[f.name])
            object.__setattr__(self, f.name, value)
            meta = f.metadata
            if value is None or not meta:
                continue
            values = value if isinstance(value, tuple) else (value,)
            wrong = [v for v in values if meta["choices"] and v not in meta["choices"]]
            if wrong:
                each = " (each)" if isinstance(value, tuple) else ""
                raise PainterlyError(f"{flag_name(f.name)}{each} must be {', '.join(meta['choices'][:-1])} or "
                                     f"{meta['choices'][-1]}, got '{wrong[0]}'")
            if meta["minimum"] is not None and any(v < meta["minimum"] for v in values):
                limit = meta["minimum"]
                rule = "must not be negative" if limit == 0 else f"must be at least {_number(limit)}"
                raise PainterlyError(f"{flag_name(f.name)} {rule}, got {value}")
            if meta.get("maximum") is not None and any(v > meta["maximum"] for v in values):
                raise PainterlyError(f"{flag_name(f.name)} must be at most {_number(meta['maximum'])}, got {value}")
            if meta["above"] is not None and any(v <= meta["above"] for v in values):
                limit = meta["above"]
                rule = "must be positive" if limit == 0 else f"must be above {limit:g}"
                raise PainterlyError(f"{flag_name(f.name)} {rule}, got {value}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        """The config a to_json() text describes; a PainterlyError for bad JSON, unknown fields or bad values."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PainterlyError(f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise PainterlyError("a config is a JSON object of option names and values")
        unknown = sorted(unknown_options(cls, data))
        if unknown:
            raise PainterlyError(f"unknown option(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class CommonConfig(MethodConfig):
    """The options every method takes: they mean the same everywhere and the driver carries them out."""

    size: int = option(512, "long side of the output in pixels; 'max': the largest that fits in free memory",
                       minimum=16, maximum=MAX_SIZE, words=("max",), group="size and schedule", metavar="PX|max")
    preserve_color: str = option("none", "keep the content's colours: off, luminance-only transfer, or the style "
                                 "images' colours matched to the content's first",
                                 choices=("none", "luminance", "histogram"), group="losses")
    precision: str = option("auto", "network precision; auto uses int8 for one-pass methods (a trained network, "
                            "adain, wct) where this CPU runs int8 faster, else bf16 where it runs faster than fp32",
                            choices=("auto", "fp32", "bf16", "int8"), group="hardware")
    device: str = option("auto", "torch device: auto, cpu, cuda, cuda:1, ...", group="hardware", metavar="DEVICE")
    threads: Optional[int] = option(None, "CPU threads", minimum=1, default_text="the CPUs this process may use",
                                    group="hardware", metavar="N")
    # Tiling for outputs too large to run whole (painterly.tiling). tile_size None: tile only the scales
    # that do not fit in max_memory, with the largest tiles that do; 0: never tile (refuse instead); N:
    # tile every scale longer than N px with tiles of at most N px.
    max_memory: Optional[float] = option(None, "memory the run may use, in GiB (at most the memory free now); scales "
                                         "that do not fit are run tile by tile", above=0, maximum=MAX_MEMORY_GIB,
                                         default_text="the memory free now",
                                         group="memory and tiling (print resolution)", metavar="GIB")
    tile_size: Optional[int] = option(None, "run every scale longer than PX in tiles of at most PX (refused, naming "
                                      "one that fits, where those do not fit); 0 never tiles (a scale that does not "
                                      "fit is refused)", minimum=0,
                                      default_text="auto: tile only what does not fit",
                                      group="memory and tiling (print resolution)", metavar="PX")
    tile_overlap: Optional[int] = option(None, "pixels neighbouring tiles share and blend over", minimum=1,
                                         default_text="an eighth of the tile, 16..128",
                                         group="memory and tiling (print resolution)", metavar="PX")


@dataclass(frozen=True)
class OptimisationConfig(CommonConfig):
    """The options of the methods that optimise an image (Gatys, STROTSS). A feed-forward method draws
    nothing at random, has no iterations to stop early and runs each tile once, so it has none of them."""

    seed: Optional[int] = option(None, "random seed (the same seed and options give the same image; -1 draws one, "
                                 "as neural-style's does)", minimum=SEED_RANGE[0], maximum=SEED_RANGE[1],
                                 default_text="random", group="optimisation", metavar="N")
    max_time: Optional[float] = option(None, "stop after about this many seconds, spread across the scales",
                                       above=0, default_text="no limit", group="size and schedule",
                                       metavar="SECONDS")
    tile_rounds: int = option(2, "passes over a tiled scale, the tile grid shifted each pass so no seam stays put",
                              minimum=1, maximum=16, group="memory and tiling (print resolution)", metavar="N")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seed == RANDOM_SEED:  # what neural-style users type for a random seed: draw one (and report it)
            object.__setattr__(self, "seed", None)

