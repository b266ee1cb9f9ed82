"""What every command line that runs a method shares: the flags of every registered method's config,
which --method a command line names (for --help's defaults), and the one-line refusal of a flag the
method does not take."""

from __future__ import annotations

import dataclasses
import typing
from typing import Sequence

from . import DEFAULT_METHOD, PainterlyError, available_methods, method_clash


def _method_in(argv: Sequence[str]) -> str:
    """The --method named on the command line (for --help's defaults), else the default method."""
    words = list(argv)
    for i, word in enumerate(words):
        if word == "--method" and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--method="):
            return word.split("=", 1)[1]
    return DEFAULT_METHOD


def config_flags() -> dict[str, tuple[dataclasses.Field, object, list[str]]]:
    """Every config field of every registered method: name -> (field, its type, the methods that take it)."""
    flags: dict[str, tuple[dataclasses.Field, object, list[str]]] = {}
    for name, recipe in available_methods().items():
        hints = typing.get_type_hints(recipe.config_class)
        for f in dataclasses.fields(recipe.config_class):
            if f.name not in flags:
                flags[f.name] = (f, hints[f.name], [])
            flags[f.name][2].append(name)
    return flags


def options_for_method(method: str, options: dict, chosen: bool) -> dict:
    """Options for `method`'s config; a flag that does not apply to it is a one-line error. `chosen`:
    the user named the method (otherwise the options picked it, and the error says which clash)."""
    takers = {name: owners for name, (_, _, owners) in config_flags().items()}  # option -> the methods taking it
    wrong = [name for name in options if method not in takers[name]]
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    if wrong and not chosen:
        raise method_clash(options, flag, "--method")
    if wrong:
        flags = ", ".join(map(flag, wrong))
        raise PainterlyError(f"{flags} does not apply to --method {method} (painterly --method {method} --help "
                             "lists what it takes)")
    return options
