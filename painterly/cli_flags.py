"""What every command line that runs a method shares: the flags of every registered method's config,
and which --method a command line names (for --help's defaults)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Sequence

from . import DEFAULT_METHOD, available_methods


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
