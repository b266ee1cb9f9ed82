"""`painterly video IN STYLE... -o OUT.mp4`: any method on a video (or a folder of frames), consistent
along the optical flow; a progress bar over frames, Ctrl-C keeps the finished frames for --resume."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import time
import typing
from typing import Optional, Sequence

from .cli_flags import _method_in, config_flags, options_for_method
from .cli_args import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _Parser, _UsageError, add_config_flags
from . import (DEFAULT_METHOD, VideoConfig, available_methods, install_signal_handlers, make_config, method_for,
               plan_video, stylize_video, video_work_folder)


def build_video_parser(method: str = DEFAULT_METHOD) -> argparse.ArgumentParser:
    registered = available_methods()
    shown = registered.get(method, registered[DEFAULT_METHOD])
    p = _Parser(prog="painterly video", usage="painterly video IN [STYLE ...] -o OUT.mp4 [options]",
                description="Stylise a video (or a folder of frames) with any method, frame after frame, kept "
                            "consistent along the optical flow (Ruder et al. 2016). The audio is carried over into "
                            "a video file. STYLE images for every method but --model, whose network holds its "
                            "styles. --max-time limits each frame.",
                epilog="Method options show the defaults of --method " + shown.name, allow_abbrev=False)
    p.add_argument("input", metavar="IN", help="a video file or a folder of frames")
    p.add_argument("styles", nargs="*", metavar="STYLE", help="style image(s)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="a video file (.mp4, .mkv, .mov, ...) or a folder for PNG frames")
    p.add_argument("--method", choices=list(registered), default=None,
                   help=f"the method [{DEFAULT_METHOD}, or the one that takes every option given, e.g. --model]")
    p.add_argument("--content-guidance", metavar="MAP", help="colour-coded region map for every frame")
    p.add_argument("--style-guidance", metavar="MAP", nargs="+", help="colour-coded region map(s), one per STYLE")
    p.add_argument("--resume", action="store_true", help="continue after the frames a stopped run finished")
    p.add_argument("--dry-run", action="store_true", help="print the plan (frames, size, the first frame's and a "
                   "later frame's plans, estimated time) and exit (status 2 where a frame does not fit)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_config_flags(p, config_flags(), shown.config_class(), list(registered), shown.name)
    hints = typing.get_type_hints(VideoConfig)
    video_flags = {f.name: (f, hints[f.name], ["video"]) for f in dataclasses.fields(VideoConfig)}
    add_config_flags(p, video_flags, VideoConfig(), ["video"], "video")
    return p


class _FrameBar:
    """Frames done of all, each painted frame's seconds and, from the second frame painted after the first
    of the video (which takes longer), the time left at their mean. No frames/s: frames loaded for a
    resume, or a first frame timed from the bar's start, would make it up."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"

    def __init__(self, quiet: bool, size_max: bool = False) -> None:
        self.quiet, self.bar, self.size_max = quiet, None, size_max
        self.later: list[float] = []  # seconds of the frames painted after the video's first
        self.cut_short = 0  # frames --max-time stopped before their planned iterations
        self.finished = 0  # frames done, painted or loaded for a resume
        self.painted = 0  # frames painted by this process
        self.shown_step = 0.0  # when a step last updated the bar

    def _open(self, frames: Optional[int], elapsed: float) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=frames, file=sys.stderr, dynamic_ncols=True, unit="frame", desc="video",
                        bar_format=self.FORMAT)
        self.bar.start_t -= elapsed  # the clock from the run's start, not from the first frame's end

    def step(self, info) -> None:
        """An optimising method's iteration within a frame (minutes each at print sizes), at most twice a
        second: the bar otherwise stood still at 0/N through the whole first frame."""
        if self.quiet or info.iterations <= 1 or time.monotonic() - self.shown_step < 0.5:
            return
        self.shown_step = time.monotonic()
        if self.bar is None:  # the first frame: how many there are comes with its end
            self._open(None, info.elapsed)
        scale = f" scale {info.scale + 1}/{info.scales}" if info.scales > 1 else ""
        terms = "".join(f" {k}={v:.3g}" for k, v in info.losses.items())
        self.bar.set_postfix_str(f"frame {(info.frame or 0) + 1}{scale} iteration {info.iteration}/{info.iterations}"
                                 f"{terms}", refresh=True)

    def __call__(self, info) -> None:
        self.cut_short += info.stopped_early == "max_time"
        self.finished += 1
        self.painted += not info.resumed
        if self.quiet:
            return
        if self.bar is None or self.bar.total is None:
            if self.size_max:
                how = "chosen when the run began" if info.resumed else "fits in free memory"
                line = f"painterly: --size max: {max(info.size)} px {how} ({info.size[0]}x{info.size[1]} frames)"
                print(line, file=sys.stderr) if self.bar is None else self.bar.write(line, file=sys.stderr)
            if self.bar is None:
                self._open(info.frames, info.elapsed)
            else:
                self.bar.total = info.frames
        if not info.resumed and info.frame > 1:
            self.later.append(info.seconds)
        self.bar.n += 1  # shown with this frame's postfix, not the last one's
        self.bar.set_postfix_str(self.postfix(info), refresh=True)

    def postfix(self, info) -> str:
        words = ["resumed" if info.resumed else f"{info.seconds:.1f} s/frame"]
        if self.later and info.frame < info.frames:
            left = sum(self.later) / len(self.later) * (info.frames - info.frame)
            words.append(f"{self.bar.format_interval(left)} left")
        return ", ".join(words) + "".join(f" {k}={v:.3g}" for k, v in info.losses.items())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def video_command(words: Sequence[str]) -> int:
    args = build_video_parser(_method_in(words)).parse_intermixed_args(list(words))
    video_names = {f.name for f in dataclasses.fields(VideoConfig)}
    options = {name: getattr(args, name) for name in config_flags() if hasattr(args, name) and name not in video_names}
    video = VideoConfig(**{name: getattr(args, name) for name in video_names if hasattr(args, name)})
    method = args.method or method_for(options)  # as the image command: options no one method takes are refused
    options = options_for_method(method, options, args.method is not None)
    if not args.styles and available_methods()[method].needs_styles:
        raise _UsageError("a STYLE image is needed")
    size_max = options.get("size") == "max"  # resolved from the frames' size, as the image command's
    config = make_config(method, **{k: v for k, v in options.items() if not (size_max and k == "size")})
    bar = _FrameBar(args.quiet, size_max)
    guides = {k: v for k, v in (("content_guidance", args.content_guidance), ("style_guidance", args.style_guidance))
              if v is not None}
    if args.dry_run:
        planned = plan_video(args.input, list(args.styles), method=method, config=config, video=video, **guides,
                             **({"size": "max"} if size_max else {}))
        print(planned.describe())
        return EXIT_USAGE if planned.problem else EXIT_OK
    # Ctrl-C and SIGTERM stop it keeping the finished frames, also where the shell started it with SIGINT
    # ignored (a background job of a script), which Python then leaves ignored
    restore_handlers = install_signal_handlers(signal.default_int_handler)
    try:
        result = stylize_video(args.input, list(args.styles), args.output, method=method, config=config, video=video,
                               resume=args.resume, callback=bar, step_callback=bar.step, **guides,
                               **({"size": "max"} if size_max else {}))
    except KeyboardInterrupt:
        bar.close()
        again = [*words, *([] if "--resume" in words else ["--resume"])]
        kept = (f"the {bar.finished} finished frame{'s are' if bar.finished > 1 else ' is'} kept in "
                f"'{video_work_folder(args.output)}'") if bar.finished else "no frame was finished yet"
        print(f"painterly: interrupted; {kept}; resume with: {shlex.join(['painterly', 'video', *again])}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
        restore_handlers()
    if not args.quiet:
        if result.note:
            print(f"painterly: {result.note}", file=sys.stderr)
        if bar.cut_short:
            print(f"painterly: {bar.cut_short} of the {bar.painted} frames painted now cut short by --max-time (a limit "
                  "for each frame)", file=sys.stderr)
        w, h = result.size
        print(f"painterly: wrote {result.path} ({result.frames} frames, {w}x{h}, {float(result.rate):g} fps)",
              file=sys.stderr)
    return EXIT_OK
