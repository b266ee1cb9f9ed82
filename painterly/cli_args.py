"""The command line's shared parts: exit codes, a parser whose errors are one line, value parsers,
and one --flag per config field (`add_config_flags`), for the main command and `painterly train`."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from typing import Sequence

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _UsageError(Exception):
    """argparse found a problem; main() prints it as one line."""


# A value argparse must read as one, not as an option: a negative number or a list starting with one
# (`--style-weights -1,2,0` was "expected one argument", hiding the real message, "must not be negative").
NEGATIVE_VALUE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,.*)?$")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUE

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


# --- argument types: each raises ArgumentTypeError with a one-line reason --------------------------

def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def _float_list(text: str) -> tuple[float, ...]:
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers (e.g. 1,0.5)")
    try:
        return tuple(_number(t) for t in items)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"invalid list '{text}': {exc}") from None


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of whole numbers (e.g. 200,100,20)") from None


def _layer_list(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    items = [t.strip() for t in text.split(",")]
    if any(not t for t in items):
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of layer names (e.g. relu4_2)")
    return tuple(items)


def _positive_int(text: str, kind: str = "a whole number", hint: str = "") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {kind}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1{hint}, got {value}")
    return value


def _csv(values: Sequence) -> str:
    return ",".join(str(v) for v in values)


LIST_TYPES = (_layer_list, _float_list, _int_list)


def _value_type(hint, meta: dict):
    """The argparse `type` for a config field of type `hint`."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    words, none_word = meta.get("words", ()), meta.get("none_word")
    if origin is tuple:
        element = typing.get_args(hint)[0]
        return {str: _layer_list, float: _float_list, int: _int_list}[element]
    if hint is int:
        def parse_int(text: str):
            word = text.strip().lower()
            if word in words:
                return word
            if none_word is not None and word == none_word:
                return None
            try:
                return int(text)
            except ValueError:
                also = "".join(f" or '{w}'" for w in (*words, *([none_word] if none_word else [])))
                raise argparse.ArgumentTypeError(f"'{text}' is not a whole number{also}") from None
        return parse_int
    if hint is float:
        if none_word is None:
            return _number

        def parse_float(text: str):
            if text.strip().lower() == none_word:
                return None
            try:
                return _number(text)
            except argparse.ArgumentTypeError as exc:
                raise argparse.ArgumentTypeError(f"{exc} or '{none_word}'") from None
        return parse_float
    return str


def _show_default(value, meta: dict) -> str:
    if meta.get("default_text"):
        return meta["default_text"]
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return _csv(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def add_config_flags(p: argparse.ArgumentParser, flags: dict, defaults, everyone: Sequence[str], shown: str) -> None:
    """One --flag per config field: type, choices and help from the field, default from `defaults`
    (the shown config), and which of `everyone` take it where not all do."""
    S = argparse.SUPPRESS
    groups: dict[str, argparse._ArgumentGroup] = {}
    own = {f.name: f for f in dataclasses.fields(defaults)}
    for name, (f, hint, owners) in flags.items():
        f = own.get(name, f)  # the shown config's own help and default where it has the field
        meta = dict(f.metadata)
        group_name = meta.get("group", "options")
        if group_name not in groups:
            groups[group_name] = p.add_argument_group(group_name)
        if name in own:
            default = f" [{_show_default(getattr(defaults, name), meta)}]"
            only = "" if len(owners) == len(everyone) else f" ({', '.join(owners)})"
        else:
            default = f" [{_show_default(f.default, meta)}]"
            only = f" ({', '.join(owners)}; not {shown})"
        text = meta.get("help", name) + default + only
        kwargs = {"dest": name, "default": S, "help": text.replace("%", "%%")}
        if hint is bool:
            kwargs.update(action="store_const", const=True)
        else:
            value_type = _value_type(hint, meta)
            kwargs.update(type=value_type, metavar=meta.get("metavar") or None)
            if meta.get("choices") and value_type not in LIST_TYPES:  # a list's items are checked by the config
                kwargs.update(choices=meta["choices"], metavar=None)
        groups[group_name].add_argument("--" + name.replace("_", "-"), **kwargs)


def _flag_value(value, meta: dict) -> str:
    if value is None:
        return meta.get("none_word") or "none"
    if isinstance(value, tuple):
        return _csv(value) if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def command_line(content: str, styles: Sequence[str], output: str, method: str, config,
                 content_guidance: str | None = None, style_guidance: Sequence[str] = ()) -> str:
    """The `painterly` command that makes the same picture as `config` (a method's config): every option
    that differs from the method's default as its flag, in the form the parser reads back."""
    import shlex

    def file(name: str) -> str:  # a file called -o.png read as a flag: ./-o.png is the same file
        return f"./{name}" if name.startswith("-") else name

    content, styles, output = file(content), [file(s) for s in styles], file(output)
    content_guidance = file(content_guidance) if content_guidance else content_guidance
    style_guidance = [file(g) for g in style_guidance]
    words = ["painterly", content, *styles, "--method", method]
    defaults = type(config)()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value == getattr(defaults, f.name):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            words += [flag] if value else []
        else:
            words += [flag, _flag_value(value, dict(f.metadata))]
    if content_guidance:
        words += ["--content-guidance", content_guidance]
    if style_guidance:
        words += ["--style-guidance", *style_guidance]
    return shlex.join([*words, "-o", output])
