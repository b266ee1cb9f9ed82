"""The `painterly` command: a thin shell over `painterly.stylize` and the progress callbacks.

    painterly photo.jpg starry_night.jpg -o out.png --size 512 --iterations 300

Every user error prints one line, `painterly: error: ...`, and exits with status 2; no traceback,
no partial output file. Defaults live in `GatysConfig` alone: only options the user gave are passed on.

Ctrl-C or SIGTERM: the run stops after the current iteration, saves a checkpoint (OUT.ckpt) and the
image so far (to OUT itself, atomically), prints one line with the command that resumes it and exits
with status 130; a second Ctrl-C aborts at once. A checkpoint is also saved every 60 s (--checkpoint-*)
so even a SIGKILL loses at most that much; it is removed when the run finishes.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .cli_flags import _method_in, config_flags, options_for_method
from .cli_args import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _number, _Parser, _positive_int,
                       _UsageError, add_config_flags)
from . import (DEFAULT_METHOD, Checkpointer, Interrupted, LossHistory, PainterlyError, ProgressBar,
               SaveEvery, __version__, check_writable, combine, default_checkpoint_path, free_memory_bytes, get_method,
               install_stop_handlers, load_plugins, refuse_overwriting_inputs, largest_size, make_config, method_for, available_methods, open_image, plan,
               preflight, save_image, side_by_side, split_alpha, stylize)

SUBCOMMANDS = {  # `painterly train ...` etc., and what each does (the main --help lists them)
    "video": "repaint a video, frame by frame, with optical-flow temporal consistency",
    "batch": "repaint every content with every style or model, resumably, here or on a Ray cluster",
    "train": "train a style network (one style, a style set, or several in one network)",
    "train-decoder": "train AdaIN's decoder or a WCT level's",
    "models": "list the bundled and given style networks and decoders",
    "serve": "the local web app and its HTTP API",
}
OUT_OF_MEMORY = ("out of memory; try a smaller --size or --max-memory (which tiles what does not fit), --precision bf16, "
                 "or, optimising, --optimizer adam")


CHECKPOINT_SECONDS = 60.0  # --checkpoint-seconds' default


def build_parser(method: str = DEFAULT_METHOD) -> argparse.ArgumentParser:
    """The parser; --help shows the defaults of `method`'s config."""
    registered = available_methods()
    shown = registered.get(method, registered[DEFAULT_METHOD])
    defaults = shown.config_class()
    p = _Parser(
        prog="painterly",
        usage="painterly CONTENT STYLE [STYLE ...] -o OUT.png [options]",
        description="Repaint CONTENT in the style of one or more STYLE images (neural style transfer).",
        epilog=f"Values in [brackets] are the defaults of --method {shown.name} (painterly.{shown.config_class.__name__});\n"
               "'painterly --method NAME --help' shows another method's.\n\nOther commands "
               "('painterly COMMAND --help' for each):\n"
               + "\n".join(f"  {name:14} {what}" for name, what in SUBCOMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("content", nargs="?", metavar="CONTENT", help="the photo to repaint")
    p.add_argument("styles", nargs="*", metavar="STYLE", help="one or more style images (blended, or pooled with --style-set)")
    p.add_argument("-o", "--output", metavar="OUT", help="output image (.png, .jpg, .webp, .tif, .bmp); written atomically")
    p.add_argument("--method", dest="method", choices=list(registered), default=None,
                   help="; ".join(f"{name}: {r.summary}" for name, r in registered.items())
                        + f" [{DEFAULT_METHOD}, or the one method that takes every option given, e.g. --model]")

    def takers(what: str) -> str:
        names = [n for n, r in registered.items() if what in r.accepts]
        return "" if len(names) == len(registered) else f" ({', '.join(names)})"

    p.add_argument("--content-guidance", metavar="MAP",
                   help="colour-coded region map of the content; each region takes its style from the style "
                        "region painted in the same colour" + takers("guidance"))
    p.add_argument("--style-mask", dest="style_masks", metavar="MASK", nargs="+",
                   help="one mask per STYLE (per style of a --model), white where that style paints the content; "
                        "one style's mask keeps the photo outside it, grey blending the two (not with guidance)"
                        + takers("style_masks"))
    p.add_argument("--style-guidance", metavar="MAP", nargs="+",
                   help="colour-coded region map(s), one per STYLE, in the same colours as --content-guidance")

    add_config_flags(p, config_flags(), defaults, list(registered), shown.name)

    g = p.add_argument_group("output and logging")
    g.add_argument("--save-every", type=_positive_int, metavar="N",
                   help="also write the image every N iterations as OUT_0100.png and so on")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary on stderr")
    g.add_argument("--log", action="store_true",
                   help="write loss terms per iteration to OUT.json and a loss curve to OUT.loss.png (a forward "
                        "pass: its time only, no curve)")
    g.add_argument("--comparison", action="store_true",
                   help="write OUT.compare.png: content, style(s) and result side by side")
    g = p.add_argument_group("checkpoints (resume after a crash, Ctrl-C or kill)")
    g.add_argument("--checkpoint", metavar="PATH",
                   help="where to save the run's state, atomically [OUT with the extension .ckpt]")
    g.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                   help="save a checkpoint every N iterations [off]")
    g.add_argument("--checkpoint-seconds", type=_number, default=CHECKPOINT_SECONDS, metavar="S",
                   help="save a checkpoint when S seconds have passed since the last (at least 10x the time "
                        f"a save takes); 0 = off [{CHECKPOINT_SECONDS:g}]")
    g.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint (same images and options); the result equals an uninterrupted run")
    g.add_argument("--keep-checkpoint", action="store_true",
                   help="keep the checkpoint after the run finishes [removed]")

    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="FILE",
                   help="start from a JSON config (as printed by --config-json); flags given override it")
    g.add_argument("--dry-run", action="store_true",
                   help="print the plan (scales, sizes, iterations, estimated peak memory and time) and exit "
                        "(status 2 where it does not fit or the run would refuse what else is given: STYLE images, "
                        "masks, maps, the output); needs only CONTENT")
    g.add_argument("--config-json", action="store_true",
                   help="print the resolved config as JSON and exit (no images needed)")
    g.add_argument("--version", action="version", version=f"painterly {__version__}",
                   help="print the version and exit")
    return p


def _guidance(args: argparse.Namespace) -> dict:
    """The guidance maps given, as stylize() keywords (none given: no keywords at all)."""
    given = {"content_guidance": args.content_guidance, "style_guidance": args.style_guidance,
             "style_masks": args.style_masks}
    return {k: v for k, v in given.items() if v is not None}


def _read_config(path: str) -> tuple[str, Optional[dict]]:
    """A --config file's text, read once, and its JSON object (None where it is none: _load_config says why)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PainterlyError(f"config '{path}' cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except ValueError:
        return text, None
    return text, data if isinstance(data, dict) else None


def _load_config(path: str, method: str, text: str):
    """The method's config from a --config file's `text` (its "method" taken out where it names one)."""
    try:
        return get_method(method).config_class.from_json(text)
    except PainterlyError as exc:
        raise PainterlyError(f"config '{path}': {exc}") from None
    except TypeError as exc:
        raise PainterlyError(f"config '{path}' is not a painterly config ({exc})") from None


def side_paths(output: Path) -> dict[str, Path]:
    """Files written beside OUT.png: the log, the loss curve and the comparison sheet."""
    return {"json": output.with_suffix(".json"), "loss": output.with_suffix(".loss.png"),
            "compare": output.with_suffix(".compare.png")}


def _memory_allowed(config) -> str:
    """What limits a run's memory, in words: --max-memory where it is below the memory free now."""
    limited = config.max_memory and config.max_memory * 2**30 < free_memory_bytes()
    return f"--max-memory {config.max_memory:g} GiB" if limited else "free memory"


def _refuse_saving_over_inputs(output: Path, inputs: Sequence) -> None:
    """--save-every writes OUT_NNNN.png beside OUT.png: refused where an input is named so (starting
    again from an earlier run's intermediate, --init out_0002.png, would overwrite it)."""
    pattern = re.compile(rf"{re.escape(output.stem)}_\d{{4,}}{re.escape(output.suffix)}")
    for given in inputs:
        if isinstance(given, (str, os.PathLike)) and pattern.fullmatch(Path(given).name) \
                and Path(given).resolve().parent == output.resolve().parent:
            raise PainterlyError(f"--save-every writes {output.stem}_NNNN{output.suffix} beside '{output}', and "
                                 f"'{given}' is an input of this run; write the output to another name")


def _resume_command(argv: Optional[Sequence[str]], size: Optional[int] = None) -> str:
    """The command line that continues this run (`--size max` pinned to `size`: free memory changes)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if size is not None:
        words = [str(size) if w.lower() == "max" and i and words[i - 1] == "--size" else w
                 for i, w in enumerate(words)]
        words = [f"--size={size}" if w.lower() == "--size=max" else w for w in words]
    if "--resume" not in words:
        words.append("--resume")
    return shlex.join(["painterly", *words])


def _input_paths(args: argparse.Namespace) -> list[str]:
    """Every path the command line gives to read (images, masks, maps, a model, a config), which no output
    may replace."""
    values = [value for name, value in vars(args).items() if name not in ("output", "checkpoint")]
    flat = [v for value in values for v in (value if isinstance(value, (list, tuple)) else [value])]
    return [v for v in flat if isinstance(v, str)]


def _run(args: argparse.Namespace, argv: Optional[Sequence[str]] = None) -> int:
    options = {name: getattr(args, name) for name in config_flags() if hasattr(args, name)}
    text, data = _read_config(args.config) if args.config else ("", None)
    saved = dict(data or {})
    named = saved.pop("method", None)  # as the web API's options and a manifest's rows name it
    if named is not None:  # a --config file naming its method (as the web API's options do)
        if not isinstance(named, str) or named.lower() not in available_methods():
            raise PainterlyError(f"config '{args.config}': unknown method {named!r}")
        if args.method is not None and args.method != named.lower():
            raise _UsageError(f"--method {args.method}, but config '{args.config}' is a {named.lower()} config")
        args.method = named.lower()
    chosen = args.method is not None
    if not chosen:  # the method that takes every option given, a --config file's included
        args.method = method_for({*options, *saved})
    recipe = get_method(args.method)
    size_max = options.get("size") == "max"
    if size_max:
        del options["size"]
    base = _load_config(args.config, args.method, text if data is None else json.dumps(saved)) if args.config else None
    try:
        given = options_for_method(args.method, options, chosen)
    except PainterlyError as exc:  # the method the user did not type on the command line: say where it came from
        raise PainterlyError(f"{exc}; config '{args.config}' names the method") if named is not None else exc from None
    config = make_config(args.method, base, **given)
    if size_max or args.dry_run:
        if args.content is None:
            raise _UsageError("a CONTENT image is needed for " + ("--size max" if size_max else "--dry-run"))
        content_hw = split_alpha(open_image(args.content, "content image"))[0].size[::-1]
        if size_max:
            config = make_config(args.method, config, size=largest_size(content_hw, method=args.method, config=config))
            if not args.dry_run and not args.quiet:
                print(f"painterly: --size max: {config.size} px fits in {_memory_allowed(config)}", file=sys.stderr)
        if args.dry_run:
            note = f"--size max: the largest that fits whole in 90% of {_memory_allowed(config)}" if size_max else ""

            # the styles given at their sizes (STROTSS holds each one's features): the plan preflight checks
            style_sizes = [split_alpha(open_image(style, "style image"))[0].size[::-1] for style in args.styles]
            planned = plan(content_hw, method=args.method, config=config, style_sizes=style_sizes or None)
            if not planned.problem:  # what else the run would refuse, refused before the plan as a bad style is
                if args.styles or not recipe.needs_styles:
                    preflight(args.content, list(args.styles), config=config, **_guidance(args))
                if args.output is not None:
                    check_writable(args.output, inputs=_input_paths(args), try_file=False)
            print(planned.describe(note))
            return EXIT_USAGE if planned.problem else EXIT_OK  # as the run, which refuses a plan over memory
    if args.config_json:
        print(config.to_json())
        return EXIT_OK

    if args.content is None or (not args.styles and recipe.needs_styles):
        raise _UsageError("a CONTENT image and at least one STYLE image are needed")
    if args.output is None:
        raise _UsageError("the output file is missing; give it with -o OUT.png")

    inputs = _input_paths(args)
    output = check_writable(args.output, inputs=inputs)  # before minutes of work, not after
    extra = side_paths(output)
    if args.log:
        check_writable(extra["loss"], inputs=inputs)
        refuse_overwriting_inputs(extra["json"], inputs)
    if args.comparison:
        check_writable(extra["compare"], inputs=inputs)
    if args.save_every:
        _refuse_saving_over_inputs(output, inputs)

    ckpt_path, ckpt = None, None
    if recipe.optimises:
        if args.checkpoint_seconds < 0:
            raise PainterlyError(f"--checkpoint-seconds must not be negative, got {args.checkpoint_seconds:g}")
        ckpt_path = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path(output)
        if ckpt_path.resolve() in {p.resolve() for p in (output, *extra.values())}:
            raise PainterlyError(f"--checkpoint '{ckpt_path}' would overwrite an output file")
        if ckpt_path.is_dir():
            raise PainterlyError(f"--checkpoint '{ckpt_path}' is a directory; name a file")
        refuse_overwriting_inputs(ckpt_path, inputs)
        # found now, not at the first save or the end (a read-only place lost a finished run's image)
        check_writable(ckpt_path, (), what="checkpoint")
        ckpt = Checkpointer(ckpt_path, every=args.checkpoint_every, seconds=args.checkpoint_seconds,
                            resume=args.resume, keep=args.keep_checkpoint)
    else:  # one pass: nothing to save as it goes or resume, so a stop just stops
        given = [flag for flag, value in (("--save-every", args.save_every), ("--checkpoint", args.checkpoint),
                                          ("--checkpoint-every", args.checkpoint_every), ("--resume", args.resume),
                                          ("--keep-checkpoint", args.keep_checkpoint),
                                          ("--checkpoint-seconds", args.checkpoint_seconds != CHECKPOINT_SECONDS))
                 if value]
        if given:
            raise _UsageError(f"{', '.join(given)}: {args.method} is one forward pass, with no iterations to save or "
                              f"resume; {'these belong' if len(given) > 1 else 'it belongs'} to the methods that "
                              "optimise")

    bar = None if args.quiet else ProgressBar(sys.stderr)
    history = LossHistory() if args.log else None
    if history is not None and ckpt is not None:
        ckpt.extra["log"] = history.records  # the loss log survives a resume
    saver = SaveEvery(output, args.save_every) if args.save_every else None
    resume_cmd = _resume_command(argv, config.size if size_max else None)

    def stopping(signum: int) -> None:
        from tqdm import tqdm

        # tqdm.write keeps the progress bar intact below the message
        tqdm.write("painterly: stopping after this iteration to save a checkpoint (again to abort without saving)",
                   file=sys.stderr)

    # a forward pass has no checkpoint: Ctrl-C stops it at once, and nothing is written
    restore_handlers = install_stop_handlers(ckpt, stopping) if ckpt is not None else (lambda: None)
    start = time.monotonic()
    try:
        result = stylize(args.content, list(args.styles), config=config, **_guidance(args), callback=combine(bar, history, saver),
                         checkpoint=ckpt)
    except Interrupted as exc:
        if bar is not None:
            bar.close()
        wrote = ""
        if exc.image is not None:
            save_image(exc.image, output)
            wrote = f"wrote the image so far to {output}; "
        if history is not None:  # the loss so far too (the resumed run writes the whole log)
            history.write_json(extra["json"])
        print(f"painterly: interrupted at {exc.where}; {wrote}resume with: {resume_cmd}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if ckpt is not None and (ckpt.saved or (args.resume and ckpt_path.exists())):
            print(f"painterly: interrupted; resume from the last checkpoint with: {resume_cmd}", file=sys.stderr)
            return EXIT_INTERRUPTED
        raise
    finally:
        restore_handlers()
        if bar is not None:
            bar.close()

    # Built before saving, so that an output written over an input still shows the original.
    sheet = _comparison(args.content, args.styles, result) if args.comparison else None
    written = [save_image(result, output)]
    if history is not None:
        history.write_json(extra["json"])
        written.append(extra["json"])
        if history.has_losses:  # a forward pass has none to plot
            history.write_plot(extra["loss"])
            written.append(extra["loss"])
    if sheet is not None:
        written.append(save_image(sheet, extra["compare"]))
    if not args.quiet:
        took = time.monotonic() - start
        drawn = f", seed {result.info['seed']}" if getattr(config, "seed", 0) is None and "seed" in result.info else ""
        cut = ", cut short by --max-time" if result.info.get("stopped_early") == "max_time" else ""
        cut += f", the full size in {result.info['tiles']} tiles" if result.info.get("tiles") else ""
        print(f"painterly: wrote {', '.join(str(p) for p in written)} ({result.width}x{result.height}, {took:.1f} s"
              f"{drawn}{cut})", file=sys.stderr)
    return EXIT_OK


def run_subcommand(words: Sequence[str]) -> int:
    """`painterly train|train-decoder|models|serve|video|batch ...`; errors propagate to main()'s handler."""
    command, rest = words[0], list(words[1:])
    if command in ("train", "train-decoder", "models"):
        from .cli_train import TRAIN_COMMANDS as commands
    elif command == "serve":
        from .cli_serve import serve_command
        commands = {"serve": serve_command}
    elif command == "video":
        from .cli_video import video_command
        commands = {"video": video_command}
    else:
        from .cli_batch import batch_command
        commands = {"batch": batch_command}
    try:
        return commands[command](rest)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except _UsageError as exc:
        raise _UsageError(f"{command}: {exc}") from None


def _comparison(content: str, styles: Sequence[str], result):
    """content | style(s) | result, one height, captioned."""
    images = [split_alpha(open_image(content, "content image"))[0]]
    images += [split_alpha(open_image(s, "style image"))[0] for s in styles]
    labels = ["content"] + (["style"] if len(styles) == 1 else [f"style {i + 1}" for i in range(len(styles))])
    images.append(split_alpha(result)[0])
    labels.append("result")
    return side_by_side(images, labels, height=min(384, max(128, result.height)))


def _one_line(message: object) -> str:
    return " ".join(str(message).split()) or "unknown error"


def _fail(message: object, code: int) -> int:
    print(f"painterly: error: {_one_line(message)}", file=sys.stderr)
    return code


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                              or "not enough memory" in text)


def _refuse_misspelt_command(words: Sequence[str]) -> None:
    """`painterly vidoe clip.mp4 ...` read vidoe as a CONTENT image and failed on something else; a first
    word that is no file and is near a command is refused naming it."""
    if not words or words[0].startswith("-") or Path(words[0]).suffix or Path(words[0]).exists():
        return  # an option, a file name (models.jpg is a missing picture, not a command), or a file
    near = difflib.get_close_matches(words[0], list(SUBCOMMANDS), n=1, cutoff=0.7)
    if near:
        raise _UsageError(f"unknown command '{words[0]}' (did you mean {near[0]}?)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 user error, 130 interrupted)."""
    words = sys.argv[1:] if argv is None else [str(a) for a in argv]
    try:
        load_plugins(strict=False)  # methods registered outside the package: their --method and flags too
        if words and words[0] in SUBCOMMANDS:
            return run_subcommand(words)
        _refuse_misspelt_command(words)
        parser = build_parser(_method_in(words))
        try:
            args = parser.parse_intermixed_args(argv)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        return _run(args, argv)
    except _UsageError as exc:
        command = f"painterly {words[0]}" if words and words[0] in SUBCOMMANDS else "painterly"
        return _fail(f"{exc} (see {command} --help)", EXIT_USAGE)
    except PainterlyError as exc:
        return _fail(exc, EXIT_USAGE)
    except BrokenPipeError:  # e.g. `painterly --config-json | head`: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        return _fail(OUT_OF_MEMORY, EXIT_FAILURE)
    except OSError as exc:  # the disk filled up, a file vanished mid-run, ...
        if getattr(exc, "filename", None):
            return _fail(f"cannot access '{exc.filename}': {exc.strerror or exc}", EXIT_FAILURE)
        return _fail(f"input/output error: {exc}", EXIT_FAILURE)
    except Exception as exc:
        if _is_out_of_memory(exc):
            return _fail(OUT_OF_MEMORY, EXIT_FAILURE)
        if os.environ.get("PAINTERLY_TRACEBACK"):
            raise
        # Not a known user error, so probably a bug; still one line, with a way to see the traceback.
        return _fail(f"unexpected {type(exc).__name__}: {exc} (set PAINTERLY_TRACEBACK=1 to see the traceback, "
                     "and please report it)", EXIT_FAILURE)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
