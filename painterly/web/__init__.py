"""painterly's local web app: `painterly serve`, or `serve(...)` from Python.

The page (static/) is plain HTML, CSS and JavaScript served by the app itself: nothing is fetched
from the internet. It uses only the HTTP API in painterly.web.server, which uses only painterly's
public API. Needs the `web` extra: pip install 'painterly[web]'.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Optional, Union

import painterly

from .server import DEFAULT_MAX_UPLOAD_MB, ServerSettings, create_app, is_loopback

DEFAULT_PORT = 7860


def default_data_folder() -> Path:
    """Where jobs live unless --data says otherwise: $XDG_DATA_HOME/painterly (~/.local/share/painterly)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "painterly"


def serve(data: Union[str, os.PathLike, None] = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          workers: int = 1, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, token: Optional[str] = None) -> None:
    """Run the web app until Ctrl-C (running jobs checkpoint and resume on the next start)."""
    import uvicorn

    folder = Path(data) if data is not None else default_data_folder()
    if folder.exists() and not folder.is_dir():
        raise painterly.PainterlyError(f"--data '{folder}' is a file; give a folder for the jobs")
    check_bindable(host, port)  # one line now, not a server that says it serves and then a log of uvicorn's
    folder.mkdir(parents=True, exist_ok=True)
    settings = ServerSettings(folder, host, port, token or secrets.token_urlsafe(24), not is_loopback(host),
                              workers, int(max_upload_mb * 2**20))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/?token={settings.token}"
    if settings.require_token:
        print(f"painterly: warning: serving on {host}, reachable from other machines; every request needs the "
              "token in this address", file=sys.stderr)
    print(f"painterly: serving {folder} at {url} (Ctrl-C stops; running jobs resume next time)", file=sys.stderr)
    # open event streams would hold a graceful shutdown (and the running job's checkpoint) forever
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)


def check_bindable(host: str, port: int) -> None:
    """Refuse, in one line, an address that cannot be served: unknown, not this machine's, or a port in use."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        raise painterly.PainterlyError(f"cannot serve on {host}:{port} ({exc.strerror or exc})") from None


__all__ = ["serve", "create_app", "ServerSettings", "default_data_folder", "DEFAULT_PORT"]
