"""`painterly train`, `painterly train-decoder` and `painterly models`: train a style network or a
decoder, list the models there are.

    painterly train starry_night.jpg --photos photos/ -o starry.safetensors --steps 2000
    painterly train a.jpg b.jpg c.jpg d.jpg --multi-style --photos photos/ -o four.safetensors
    painterly train e.jpg --extend four.safetensors --photos photos/ -o five.safetensors
    painterly models [MODEL.safetensors ...]
    painterly train-decoder --method adain --photos photos/ --styles paintings/ -o adain.safetensors
    painterly train-decoder --method wct --level relu3_1 --photos photos/ -o wct_relu3_1.safetensors

Like the main command it uses only the public API, prints one line per error, writes outputs
atomically, checkpoints (Ctrl-C saves and stops; --resume continues exactly) and shows a progress bar
with the loss terms and images per second, a preview sheet of a validation photo (OUT.preview.png)
and a loss curve (OUT.loss.png).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
import typing
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import (Checkpointer, DecoderTrainConfig, Interrupted, NetworkConfig, TrainConfig, bundled_decoders,
               bundled_file, bundled_models, check_writable, checkpoint_advice, default_checkpoint_path,
               install_stop_handlers, is_decoder_file, is_network_file, load_decoder, load_model, loss_curve, method_of,
               preview_sheet, save_image, tensor_to_pil, train, train_decoder, usable_cpus, PainterlyError)
from .cli_args import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _Parser, _UsageError, add_config_flags


def build_train_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="painterly train", usage="painterly train STYLE [STYLE ...] --photos DIR -o MODEL.safetensors",
                description="Train a feed-forward style network on photos (Johnson et al. 2016; several styles in "
                            "one network with --multi-style, Dumoulin et al. 2017). With --method adain|wct (and "
                            "--styles DIR of style images) it trains that method's decoder instead: painterly "
                            "train-decoder --help lists its options.",
                allow_abbrev=False)
    p.add_argument("styles", nargs="+", metavar="STYLE", help="style image(s): several make one style blended "
                                                               "from them all, or with --style-set one artist's "
                                                               "style pooled over the works, or with --multi-style "
                                                               "one network holding each")
    _add_photos_flag(p)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="the model file to write (.safetensors)")
    p.add_argument("--extend", metavar="MODEL", help="add the STYLE to this model (a single-style one becomes a "
                                                      "two-style one), training only the new style's normalisation "
                                                      "parameters: the model's styles keep their pictures")
    p.add_argument("--init", metavar="MODEL", help="start from this model's architecture and weights (train a "
                                                    "network further on more steps, photos or weights; it keeps its "
                                                    "widths and residual blocks, which --widen and --deepen grow) "
                                                    "[random]")
    _add_training_flags(p, TrainConfig, "train")
    return p


def _add_photos_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--photos", required=True, nargs="+", metavar="DIR",
                   help="photos to train on: every image under each DIR")


def _add_training_flags(p: argparse.ArgumentParser, config_class, command: str) -> None:
    """What every training command takes: a validation photo, resume, quiet, and its config's flags."""
    p.add_argument("--validation", metavar="PHOTO", help="a photo rendered into the preview sheet every "
                                                           "--preview-every steps; best one not trained on [the first "
                                                           "training photo]")
    p.add_argument("--resume", action="store_true", help="continue exactly from the checkpoint, OUT with the "
                                                         "extension .ckpt, saved every minute and at Ctrl-C")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train data-parallel in N processes (torchrun; gloo on CPUs, NCCL on GPUs); --batch is "
                        "per process [1]")
    hints = typing.get_type_hints(config_class)
    flags = {f.name: (f, hints[f.name], [command]) for f in dataclasses.fields(config_class)}
    add_config_flags(p, flags, config_class(), [command], command)


class _Display:
    """The preview sheet (last few validation renders), the progress bar and the loss curve of a run."""

    def __init__(self, output: Path, quiet: bool, command: str, styles: Sequence[str] = ()) -> None:
        self.sheet_path, self.curve_path = output.with_suffix(".preview.png"), output.with_suffix(".loss.png")
        self.quiet, self.previews, self.bar, self.command = quiet, [], None, command
        self.styles = list(styles)  # a multi-style network's, whose renders show each
        self.rate: Optional[float] = None  # images a second, averaged over the recent steps
        self.started = time.time()  # the bar's clock: made at the first step, it would rate that step at ~0 s

    def preview(self, step: int, image) -> None:
        self.previews.append((step, tensor_to_pil(image)))
        save_image(preview_sheet(self.previews, self.styles), self.sheet_path)

    def progress(self, step: int, steps: int, losses: dict, rate: float) -> None:
        if self.quiet:
            return
        if self.bar is None:  # made at the first step, so an input error prints no empty bar
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=step - 1, file=sys.stderr, dynamic_ncols=True, unit="step",
                            desc=self.command)
            self.bar.start_t = self.bar.last_print_t = self.started
        self.bar.n = step
        # a running mean: a step's own rate swung 0.4-22 img/s on small runs (a preview, a checkpoint between)
        self.rate = rate if self.rate is None else 0.9 * self.rate + 0.1 * rate
        self.bar.set_postfix_str(" ".join(f"{k}={v:.3g}" for k, v in losses.items()) + f" {self.rate:.1f} img/s",
                                 refresh=False)
        self.bar.refresh()

    def run(self, command: str, words: Sequence[str], ckpt: Checkpointer, work) -> Optional[dict]:
        """`work()` with Ctrl-C saving a checkpoint; then the loss curve. None when interrupted."""
        restore = install_stop_handlers(ckpt)
        try:
            info = work()
        except Interrupted as stop:
            self.close_bar()  # first: the line goes below the bar, not onto it
            print(f"painterly: interrupted at {stop.where}; '{ckpt.path}' keeps the progress (no model written: "
                  f"--max-time writes one); resume with: {resume_command(command, words)}", file=sys.stderr)
            return None
        finally:
            restore()
            self.close_bar()
        save_image(loss_curve([{"scale": 0, **record} for record in info["log"]]), self.curve_path)
        return info

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def summary(self, output: Path, info: dict, data: str) -> None:
        if not self.quiet:
            losses = ", ".join(f"{k} {v:.4g}" for k, v in info["losses"].items())
            done = info['training']['steps_done']
            print(f"painterly: wrote {output} ({_count(done, 'step')}, {losses}), {self.sheet_path}, "
                  f"{self.curve_path}; {data}", file=sys.stderr)


def resume_command(command: str, words: Sequence[str]) -> str:
    """The command line that continues an interrupted run, quoted for a shell."""
    return shlex.join(["painterly", command, *words, *([] if "--resume" in words else ["--resume"])])


def _launch(command: str, words: Sequence[str], nproc: int) -> int:
    """`painterly COMMAND WORDS` in `nproc` processes on this machine, through torchrun."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    rest = _without_flag(words, "--nproc")  # the same command, each rank one process
    resume = resume_command(command, words)
    # each rank sets its own share of the CPUs (threads_per_rank); said here, torchrun's banner about
    # setting OMP_NUM_THREADS to 1 is not printed
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // nproc)))
    try:
        torchrun(["--standalone", f"--nproc-per-node={nproc}", "-m", "painterly", command, *rest])
    except SignalException:
        print(f"painterly: interrupted; resume with: {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ChildFailedError as exc:
        if all(getattr(f, "exitcode", None) == EXIT_INTERRUPTED for f in exc.failures.values()):
            print(f"painterly: interrupted; resume with: {resume}", file=sys.stderr)
            return EXIT_INTERRUPTED
        raise PainterlyError(f"a training process failed ({' '.join(str(exc).split())[:200]})") from None
    return EXIT_OK


def _config_from(args: argparse.Namespace, cls):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def _named(args: argparse.Namespace, names: Sequence[str]) -> dict:
    """The options among `names` given on the command line, to pass by name beside the config: training
    from a file (--init, --extend) refuses an architecture option named that the file does not have,
    where one left at its default is the file's to set."""
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _method_given(words: Sequence[str]) -> Optional[str]:
    """The value of --method among `words` (None: not given)."""
    for i, word in enumerate(words):
        if word == "--method":
            return words[i + 1] if i + 1 < len(words) else ""
        if word.startswith("--method="):
            return word.split("=", 1)[1]
    return None


def _run_training(command: str, words: Sequence[str], args: argparse.Namespace, config_class, work,
                  data: Callable[[dict], str], styles: Sequence[str] = ()) -> int:
    """Parse the config, check the output, then `work(config, output, checkpointer, display)` with
    Ctrl-C handling, the loss curve and a summary line. --nproc N: the same command in N processes
    under torchrun; under torchrun, rank 0 alone shows progress and writes files."""
    config = _config_from(args, config_class)
    output = check_writable(args.output, (".safetensors",))
    if args.nproc < 1:
        raise _UsageError("--nproc must be at least 1")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch(command, words, args.nproc)
    if int(os.environ.get("RANK", "0")) > 0:  # a helper rank: no files, no output; stops with rank 0
        ckpt = Checkpointer(default_checkpoint_path(output), every=None, seconds=None, resume=args.resume)
        restore = install_stop_handlers(ckpt)
        try:
            work(config, output, ckpt, _Display(output, True, command))
        except Interrupted:
            return EXIT_INTERRUPTED
        finally:
            restore()
        return EXIT_OK
    if default_checkpoint_path(output).is_dir():  # found now, not when the first checkpoint is due
        raise PainterlyError(f"checkpoint '{default_checkpoint_path(output)}' is a directory; move it or name "
                             f"another output")
    ckpt = Checkpointer(default_checkpoint_path(output), seconds=60.0, resume=args.resume)
    display = _Display(output, args.quiet, command, styles)
    info = display.run(command, words, ckpt, lambda: work(config, output, ckpt, display))
    if info is None:
        return EXIT_INTERRUPTED
    display.summary(output, info, data(info["training"]))
    done, steps = info["training"]["steps_done"], info["training"]["steps"]
    if done < steps:  # the resume line leaves --max-time out: it counts the earlier time too, so would stop at once
        seconds = info["training"]["wall_s"]
        again = resume_command(command, _as_launched(_without_flag(words, "--max-time")))
        print(f"painterly: --max-time stopped the run after {done} of {steps} steps ({seconds:g} s); '{ckpt.path}' "
              f"keeps it; continue with: {again} (a --max-time there counts those {seconds:g} s too)", file=sys.stderr)
    return EXIT_OK


def _as_launched(words: Sequence[str]) -> list[str]:
    """`words` with the --nproc they were launched with: under torchrun each rank's command has lost it,
    and resumed on one process the run would train another global batch."""
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    return [*words, "--nproc", str(ranks)] if ranks > 1 and "--nproc" not in words else list(words)


def _without_flag(words: Sequence[str], flag: str) -> list[str]:
    """`words` less `flag` and its value (`--flag V` or `--flag=V`)."""
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == flag:
            skip = True
        elif not word.startswith(f"{flag}="):
            kept.append(word)
    return kept


def _train(words: Sequence[str]) -> int:
    method, network = _method_given(words), method_of(NetworkConfig())
    decoders = next(f for f in dataclasses.fields(DecoderTrainConfig) if f.name == "method").metadata["choices"]
    if method == "":
        raise _UsageError("argument --method: expected one argument")
    if method in decoders:  # a decoder: painterly train --method adain is painterly train-decoder
        return _train_decoder(words, "train")
    if method not in (None, network):
        raise PainterlyError(f"painterly train trains a style network (--method {network}, the default) or the "
                             f"decoder of --method {' or '.join(decoders)}, not --method {method}")
    words = [w for w in words if w != f"--method={network}"]  # the network named: what train trains anyway
    if "--method" in words:
        at = words.index("--method")
        words = words[:at] + words[at + 2:]
    args = build_train_parser().parse_args(words)
    return _run_training("train", words, args, TrainConfig, lambda config, output, ckpt, display: train(
        list(args.styles), args.photos, output, config, validation=args.validation, extend=args.extend,
        init=args.init, checkpoint=ckpt, callback=display.progress, preview=display.preview,
        **_named(args, ("widths", "residual_blocks"))),
        lambda t: f"{t['photos']} photos, {t['skipped']} unreadable skipped",
        # a multi-style network's previews show each of its styles (--extend's, the new one alone)
        [Path(s).stem for s in args.styles] if getattr(args, "multi_style", False) and not args.extend else ())


def build_train_decoder_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="painterly train-decoder",
                usage="painterly train-decoder --method adain|wct [--level L] --photos DIR [--styles DIR] "
                      "-o DECODER.safetensors",
                description="Train the decoder of an arbitrary-style method: AdaIN's (photos and style images; "
                            "Huang and Belongie 2017) or one WCT level's (photos; Li et al. 2017).",
                allow_abbrev=False)
    _add_photos_flag(p)
    p.add_argument("--styles", nargs="+", metavar="DIR", help="style images to train on (AdaIN; WCT with "
                                                               "--stylised-share), every image under each DIR")
    p.add_argument("-o", "--output", required=True, metavar="DECODER", help="the decoder file to write (.safetensors)")
    p.add_argument("--init", metavar="DECODER", help="start from this decoder's weights (same method and level; it "
                                                      "keeps its widths, which --widen grows) [random]")
    _add_training_flags(p, DecoderTrainConfig, "train-decoder")
    return p


def _train_decoder(words: Sequence[str], command: str = "train-decoder") -> int:
    """`painterly train-decoder WORDS`, or `painterly train WORDS` where they name --method adain or wct."""
    args, extra = build_train_decoder_parser().parse_known_args(words)
    # the words no option takes: the STYLE arguments of painterly train (not the value after an unknown flag)
    files = [word for i, word in enumerate(extra) if not word.startswith("-") and not
             (i and extra[i - 1].startswith("-") and "=" not in extra[i - 1])]
    if command == "train" and files:  # painterly train STYLE --method adain: a network's STYLE argument
        on, styles = "folders of style images", "--styles DIR"
        if not DecoderTrainConfig(method=args.method).uses_styles():  # WCT's: style images with a stylised share
            on = "photos, and with --stylised-share on folders of style images"
            styles = "[--styles DIR --stylised-share P]"
        raise PainterlyError(f"painterly train --method {args.method} trains the {args.method} decoder (as painterly "
                             f"train-decoder does) on {on}, not on STYLE files ({' '.join(files)}): painterly "
                             f"train-decoder --method {args.method} --photos DIR {styles} -o DECODER.safetensors")
    if extra:
        raise _UsageError(f"unrecognized arguments: {' '.join(extra)}")
    config = _config_from(args, DecoderTrainConfig)
    if args.styles and not config.uses_styles():
        raise PainterlyError(f"--styles: the {config.method} decoder trains on photos alone unless --stylised-share P "
                             f"colours that share of each batch with the style images; add --stylised-share (0.5, "
                             f"say) or leave --styles out")
    return _run_training("train-decoder", words, args, DecoderTrainConfig, lambda config, output, ckpt, display:
                         train_decoder(args.photos, output, config, styles=args.styles, init=args.init,
                                       validation=args.validation,
                                       checkpoint=ckpt, callback=display.progress, preview=display.preview,
                                       **_named(args, ("width_divisor",))),
                         lambda t: f"{t['photos']} photos, {t['skipped']} unreadable skipped" + (
                             f"; {t['styles']} style images, {t['styles_skipped']} unreadable skipped"
                             if t['styles'] or t['styles_skipped'] else ""))


def _file_size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{max(1, round(size / 2**10))} KB"


def _count(number, noun: str) -> str:
    """"1 step", "9 steps": the noun in the number's plural."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _trained(path: Path, meta: dict, also: str = "") -> str:
    """The file's size, what it was trained on (`also`: data beside the photos) and its final losses."""
    training = meta.get("training", {})
    losses = ", ".join(f"{k} {v:.3g}" for k, v in meta.get("losses", {}).items())
    done, planned = training.get("steps_done", "?"), training.get("steps")
    steps = _count(done, "step")
    if isinstance(done, int) and isinstance(planned, int) and done < planned:  # --max-time stopped it
        steps = f"{done} of {planned} steps (stopped by --max-time)"
    how = f"trained {steps}"
    if training.get("extended_from"):  # its steps trained the new style alone
        how = f"extended from {Path(str(training['extended_from'])).name} by {steps}"
    if training.get("loss") not in (None, "gram"):
        how += f" on the {str(training['loss']).upper()} objective"
    return (f"{_file_size(path)}; {how} on {_count(training.get('photos', '?'), 'photo')}{also} at "
            f"{training.get('crop', '?')} "
            f"px; final losses: {losses or 'n/a'}")


def describe_model(path: Path) -> str:
    """One line: name, styles, size, how it was trained and its final losses (its model card in short)."""
    net, meta = load_model(path)
    arch = meta["architecture"]
    return (f"{path.stem}: {len(meta['styles'])} style(s) ({', '.join(meta['styles'])}); widths "
            f"{'/'.join(map(str, arch['widths']))}, {_count(arch['residual_blocks'], 'residual block')}, {_trained(path, meta)}")


def describe_decoder(path: Path) -> str:
    """One line: name, the method and level it decodes for, size, how it was trained and its final losses."""
    decoder, meta = load_decoder(path)
    styles = meta.get("training", {}).get("styles")
    margin = f", inside a {decoder.arch.margin} px reflected margin" if decoder.arch.margin else ""
    averaged = meta.get("averaged_from")  # benchmarks/average_decoders.py's: the first decoder's training kept
    of = f"; the average of {len(averaged)} decoders, the first's training shown" if isinstance(averaged, list) else ""
    return (f"{path.stem}: decoder for --method {meta.get('method', '?')}, level {decoder.arch.level}{margin}; "
            f"{_trained(path, meta, f' and {styles} style images' if styles else '')}{of}")


def describe_file(path: Path) -> str:
    """A network's or a decoder's line, told apart by the file's metadata; a file that says it is neither
    (truncated, foreign, or no painterly metadata) can't be told, and the error says so."""
    if is_decoder_file(path):
        return describe_decoder(path)
    if path.is_file() and not is_network_file(path):
        advice = checkpoint_advice(path)  # OUT.ckpt beside OUT.safetensors: say what it is and what resumes it
        if advice is not None:
            raise PainterlyError(advice)
        raise PainterlyError(f"'{path}' is neither a painterly style network nor a decoder file (no painterly "
                             f"metadata could be read: truncated, or another program's file)")
    return describe_model(path)


def _models(words: Sequence[str]) -> int:
    p = _Parser(prog="painterly models", usage="painterly models [MODEL.safetensors|DECODER.safetensors ...]",
                description="List the bundled style networks (use them with --model NAME) and the bundled "
                            "decoders of --method adain and wct, or describe model and decoder files.")
    p.add_argument("files", nargs="*", metavar="MODEL",
                   help="a bundled model's or decoder's name, or a .safetensors file (none: list the bundled ones)")
    args = p.parse_args(words)
    for name in args.files:  # a bare name that is neither bundled nor a file: both kinds' names, as both are taken
        if bundled_file(name) is None and not Path(name).exists() and len(Path(name).parts) == 1 \
                and not Path(name).suffix:
            raise PainterlyError(f"no bundled model or decoder '{name}' (models: "
                                 f"{', '.join(p.stem for p in bundled_models()) or 'none'}; decoders: "
                                 f"{', '.join(p.stem for p in bundled_decoders()) or 'none'}) and no such file")
    # a bundled network's or decoder's name stands for its file, as --model and --decoder take it
    paths = [bundled_file(f) or Path(f) for f in args.files] or [*bundled_models(), *bundled_decoders()]
    if not paths:
        print("no bundled models in this version; train one with painterly train")
    failed = 0
    for path in paths:  # a bad file is reported and the rest still listed
        try:
            print(describe_file(path))
        except PainterlyError as exc:
            failed += 1
            print(f"painterly: error: {exc}", file=sys.stderr)
    return EXIT_USAGE if failed else EXIT_OK


TRAIN_COMMANDS = {"train": _train, "train-decoder": _train_decoder, "models": _models}
