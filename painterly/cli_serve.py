"""`painterly serve`: start the local web app (painterly.web) on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from typing import Sequence

from .cli_args import EXIT_OK, _number, _Parser, _positive_int
from . import PainterlyError


def build_serve_parser():
    from .web import DEFAULT_PORT, default_data_folder

    p = _Parser(prog="painterly serve", usage="painterly serve [--port 7860] [--data DIR] [--host ADDR]",
                description="Start the local web app: upload, paint regions, watch it paint, download. It binds "
                            "127.0.0.1; with --host another address every request needs the printed token.",
                allow_abbrev=False)
    p.add_argument("--port", type=_positive_int, default=DEFAULT_PORT, help=f"TCP port [{DEFAULT_PORT}]")
    p.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                   help="address to bind; anything but loopback is reachable from other machines [127.0.0.1]")
    p.add_argument("--data", default=None, metavar="DIR",
                   help=f"folder for jobs, inputs and results, kept across restarts [{default_data_folder()}]")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="jobs run at the same time (more only with cores or GPUs to spare) [1]")
    p.add_argument("--max-upload-mb", type=_number, default=25.0, metavar="MB", help="largest upload per file [25]")
    return p


def serve_command(words: Sequence[str]) -> int:
    try:
        from .web import serve
    except ImportError as exc:
        raise PainterlyError(f"the web app needs its extra: pip install 'painterly[web]' ({exc.name} is missing)") \
            from None
    args = build_serve_parser().parse_args(words)
    if args.max_upload_mb <= 0:
        raise PainterlyError(f"--max-upload-mb must be positive, got {args.max_upload_mb:g}")
    if args.port > 65535:
        raise PainterlyError(f"--port must be at most 65535, got {args.port}")
    serve(args.data, host=args.host, port=args.port, workers=args.workers, max_upload_mb=args.max_upload_mb)
    return EXIT_OK
