"""`painterly train` and `painterly models`: train a style network, list the models there are.

    painterly train starry_night.jpg --photos photos/ -o starry.safetensors --steps 2000
    painterly train a.jpg b.jpg c.jpg d.jpg --multi-style --photos photos/ -o four.safetensors
    painterly train e.jpg --extend four.safetensors --photos photos/ -o five.safetensors
    painterly models [MODEL.safetensors ...]

Like the main command it uses only the public API, prints one line per error, writes outputs
atomically, checkpoints (Ctrl-C saves and stops; --resume continues exactly) and shows a progress bar
with the loss terms and images per second, a preview sheet of a validation photo (OUT.preview.png)
and a loss curve (OUT.loss.png).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Sequence

from . import (Checkpointer, Interrupted, TrainConfig, bundled_models, check_writable,
               default_checkpoint_path, install_stop_handlers, load_model, loss_curve, save_image,
               side_by_side, tensor_to_pil, train)
from .cli_args import EXIT_INTERRUPTED, EXIT_OK, _Parser, _UsageError, add_config_flags

PREVIEW_COLUMNS = 6


def build_train_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="painterly train", usage="painterly train STYLE [STYLE ...] --photos DIR -o MODEL.safetensors",
                description="Train a feed-forward style network on photos (Johnson et al. 2016; several styles in "
                            "one network with --multi-style, Dumoulin et al. 2017).", allow_abbrev=False)
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image(s)")
    p.add_argument("--photos", required=True, metavar="DIR", help="photos to train on: every image under DIR")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="the model file to write (.safetensors)")
    p.add_argument("--validation", metavar="PHOTO", help="a photo (not a training one) rendered into the preview "
                                                           "sheet every --preview-every steps [the first photo]")
    p.add_argument("--extend", metavar="MODEL", help="add the STYLE to this multi-style model, training only its "
                                                      "normalisation parameters")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint (OUT.ckpt)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    hints = typing.get_type_hints(TrainConfig)
    flags = {f.name: (f, hints[f.name], ["train"]) for f in dataclasses.fields(TrainConfig)}
    add_config_flags(p, flags, TrainConfig(), ["train"], "train")
    return p


def _train(words: Sequence[str]) -> int:
    args = build_train_parser().parse_args(words)
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    config = TrainConfig(**options)
    output = check_writable(args.output, (".safetensors",))
    sheet_path, curve_path = output.with_suffix(".preview.png"), output.with_suffix(".loss.png")
    validation = args.validation  # None: train() previews its first readable photo
    ckpt = Checkpointer(default_checkpoint_path(output), seconds=60.0, resume=args.resume)
    previews: list = []

    def preview(step: int, image) -> None:
        previews.append((f"step {step}", tensor_to_pil(image)))
        shown = previews[-PREVIEW_COLUMNS:]
        save_image(side_by_side([img for _, img in shown], [label for label, _ in shown], height=192), sheet_path)

    bar = None

    def progress(step: int, steps: int, losses: dict, rate: float) -> None:
        nonlocal bar
        if not args.quiet:
            if bar is None:  # made at the first step, so an input error prints no empty bar
                from tqdm import tqdm

                bar = tqdm(total=steps, initial=step - 1, file=sys.stderr, dynamic_ncols=True, unit="step",
                           desc="train")
            bar.n = step
            bar.set_postfix_str(" ".join(f"{k}={v:.3g}" for k, v in losses.items()) + f" {rate:.1f} img/s",
                                refresh=False)
            bar.refresh()

    restore = install_stop_handlers(ckpt)
    try:
        info = train(list(args.styles), None, args.photos, output, config, validation=validation,
                     extend=args.extend, checkpoint=ckpt, callback=progress, preview=preview)
    except Interrupted:
        print(f"painterly: interrupted; resume with: painterly train {' '.join(words)} --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        restore()
        if bar is not None:
            bar.close()
    save_image(loss_curve([{"scale": 0, **record} for record in info["log"]]), curve_path)
    if not args.quiet:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in info["losses"].items())
        print(f"painterly: wrote {output} ({info['training']['steps_done']} steps, {losses}), {sheet_path}, "
              f"{curve_path}; {info['training']['photos']} photos, {info['training']['skipped']} unreadable skipped",
              file=sys.stderr)
    return EXIT_OK


def describe_model(path: Path) -> str:
    """One line: name, styles, size, how it was trained and its final losses (its model card in short)."""
    net, meta = load_model(path)
    training = meta.get("training", {})
    losses = ", ".join(f"{k} {v:.3g}" for k, v in meta.get("losses", {}).items())
    arch = meta["architecture"]
    return (f"{path.stem}: {len(meta['styles'])} style(s) ({', '.join(meta['styles'])}); widths "
            f"{'/'.join(map(str, arch['widths']))}, {arch['residual_blocks']} residual blocks, "
            f"{path.stat().st_size / 2**20:.1f} MB; trained {training.get('steps_done', '?')} steps on "
            f"{training.get('photos', '?')} photos at {training.get('crop', '?')} px; final losses: {losses or 'n/a'}")


def _models(words: Sequence[str]) -> int:
    p = _Parser(prog="painterly models", usage="painterly models [MODEL.safetensors ...]",
                description="List the bundled models (use them with --model NAME) and describe model files.")
    p.add_argument("files", nargs="*", metavar="MODEL")
    args = p.parse_args(words)
    paths = [Path(f) for f in args.files] or bundled_models()
    if not paths:
        print("no bundled models in this version; train one with painterly train")
    for path in paths:
        print(describe_model(path))
    return EXIT_OK


def run_subcommand(words: Sequence[str]) -> int:
    """`painterly train ...` or `painterly models ...`; errors propagate to the main command's handler."""
    command, rest = words[0], list(words[1:])
    try:
        return {"train": _train, "models": _models}[command](rest)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except _UsageError as exc:
        raise _UsageError(f"{command}: {exc}") from None
