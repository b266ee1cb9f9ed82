"""Messages in the HTTP API's terms. painterly's errors are written for the command line: they name
flags (`--size 512`, `preserve-color`) and advise giving a file, which a request cannot. Every message
the API returns from painterly goes through `in_api_terms`, the one place that says them as the API
does: option names as its JSON keys (`size 512`, `preserve_color`), and no advice about files."""

from __future__ import annotations

import re
from functools import lru_cache

import painterly

# advice that holds on the command line only, and what the API says instead
_PHRASES = ((" (painterly models)", " (GET /api/methods lists them)"),
            (" or a .safetensors file", ""),
            (" and no such file", ""),
            (" or None,", " or null,"))  # Python's name for what JSON spells null ("a number or None, got str")
# option help written for the command line, and what a request reads instead (lists are JSON lists, null
# is null, files are the bundled names /api/methods gives)
_HELP_PHRASES = (("; 'max': the largest that fits in free memory", ""),
                 ("comma-separated ", ""),
                 ("('none' for none)", "([] for none)"),
                 ("('none': ", "(null: "),
                 (", an image file,", ","),
                 ("model:NAME|FILE", "model:NAME"),
                 ("(painterly models; ", "("),
                 (" (painterly train-decoder --method adain)", ""),
                 ("one decoder file per level (painterly train-decoder --method wct --level L)",
                  "one decoder per level"),
                 ("the decoder file", "the decoder"))
_COMMA_LIST = re.compile(r"(?<![\w,])([\w.]+(?:,[\w.]+)+)(?![\w,])")  # 200,100,20,4 as JSON: [200, 100, 20, 4]
_QUOTED = re.compile(r"((?<!\w)'[^']*'(?!\w))")  # a value as given ('my--file.png'), left as it is
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
_HYPHENATED = re.compile(r"(?<![\w-])([a-z][a-z0-9]*(?:-[a-z0-9]+)+)(?![\w-])")


@lru_cache(maxsize=1)
def option_names() -> frozenset[str]:
    """Every registered method's option names (the JSON keys of `options`)."""
    return frozenset(record["name"] for method in painterly.available_methods()
                     for record in painterly.method_options(method))


def _key(match: re.Match) -> str:
    return match.group(1).replace("-", "_")


def _option_key(match: re.Match) -> str:
    key = _key(match)
    return key if key in option_names() else match.group(1)  # "non-negative" stays as it is


def _json_list(match: re.Match) -> str:
    items = match.group(1).split(",")
    return "[" + ", ".join(i if re.fullmatch(r"-?[\d.]+", i) else f'"{i}"' for i in items) + "]"


def api_help(text: str) -> str:
    """An option's help (written for the command line) as a request reads it."""
    for old, new in _HELP_PHRASES:
        text = text.replace(old, new)
    return in_api_terms(_COMMA_LIST.sub(_json_list, text))


def in_api_terms(message: str) -> str:
    """`message` on one line, with `--flag-name` as `flag_name`, an option spelt `style-blend-weights`
    as `style_blend_weights`, and no advice to give a file or run another command."""
    parts = _QUOTED.split(message)
    for i in range(0, len(parts), 2):  # the even parts are outside quotes
        text = parts[i]
        for old, new in _PHRASES:
            text = text.replace(old, new)
        parts[i] = _HYPHENATED.sub(_option_key, _FLAG.sub(_key, text))
    return " ".join("".join(parts).split())
