"""`painterly video IN STYLE... -o OUT.mp4`: any method on a video (or a folder of frames), consistent
along the optical flow; a progress bar over frames, Ctrl-C keeps the finished frames for --resume."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import typing
from typing import Sequence

from .cli_flags import _method_in, config_flags, options_for_method
from .cli_args import EXIT_INTERRUPTED, EXIT_OK, _Parser, _UsageError, add_config_flags
from . import DEFAULT_METHOD, VideoConfig, available_methods, make_config, method_for, stylize_video


def build_video_parser(method: str = DEFAULT_METHOD) -> argparse.ArgumentParser:
    registered = available_methods()
    shown = registered.get(method, registered[DEFAULT_METHOD])
    p = _Parser(prog="painterly video", usage="painterly video IN STYLE [STYLE ...] -o OUT.mp4 [options]",
                description="Stylise a video (or a folder of frames) with any method, frame after frame, kept "
                            "consistent along the optical flow (Ruder et al. 2016). The audio is carried over.",
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
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_config_flags(p, config_flags(), shown.config_class(), list(registered), shown.name)
    hints = typing.get_type_hints(VideoConfig)
    video_flags = {f.name: (f, hints[f.name], ["video"]) for f in dataclasses.fields(VideoConfig)}
    add_config_flags(p, video_flags, VideoConfig(), ["video"], "video")
    return p


class _FrameBar:
    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar = quiet, None

    def __call__(self, info) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=info.frames, file=sys.stderr, dynamic_ncols=True, unit="frame", desc="video")
        self.bar.update(1)
        losses = " ".join(f"{k}={v:.3g}" for k, v in info.losses.items())
        self.bar.set_postfix_str(("resumed" if info.resumed else f"{info.seconds:.1f} s/frame ") + losses, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def video_command(words: Sequence[str]) -> int:
    args = build_video_parser(_method_in(words)).parse_intermixed_args(list(words))
    video_names = {f.name for f in dataclasses.fields(VideoConfig)}
    options = {name: getattr(args, name) for name in config_flags() if hasattr(args, name) and name not in video_names}
    video = VideoConfig(**{name: getattr(args, name) for name in video_names if hasattr(args, name)})
    method = args.method or method_for(options)
    if not args.styles and available_methods()[method].needs_styles:
        raise _UsageError("a STYLE image is needed")
    config = make_config(method, **options_for_method(method, options, args.method is not None))
    bar = _FrameBar(args.quiet)
    guides = {k: v for k, v in (("content_guidance", args.content_guidance), ("style_guidance", args.style_guidance))
              if v is not None}
    try:
        result = stylize_video(args.input, list(args.styles), args.output, method=method, config=config, video=video,
                               resume=args.resume, callback=bar, **guides)
    except KeyboardInterrupt:
        bar.close()
        again = [*words, *([] if "--resume" in words else ["--resume"])]
        print(f"painterly: interrupted; the finished frames are kept; resume with: {shlex.join(['painterly', 'video', *again])}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if not args.quiet:
        if result.note:
            print(f"painterly: {result.note}", file=sys.stderr)
        h, w = result.size
        print(f"painterly: wrote {result.path} ({result.frames} frames, {w}x{h}, {float(result.rate):g} fps)",
              file=sys.stderr)
    return EXIT_OK
