"""The one exception type users see: a clear, one-line message about bad input or settings."""


class PainterlyError(ValueError):
    """Raised for anything the user can fix: bad files, bad options, sizes that do not fit.

    The CLI prints its message on one line and exits non-zero; it never shows a traceback.
    """


class NotAnImageError(PainterlyError):
    """A file that no image format painterly reads recognises (the web app answers 415)."""


class DamagedImageError(PainterlyError):
    """An image file that is corrupt or truncated: reading it again reads the same (a batch does not retry)."""


class ImageTooLargeError(PainterlyError):
    """An image over the pixel safety limit, e.g. a decompression bomb (the web app answers 413)."""


def require_file(path, noun: str) -> None:
    """Refuse, as a run would, a file an option names that is missing or a folder: plans call it too, so
    --dry-run does not plan a run that cannot start."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise PainterlyError(f"{noun} '{path}' {'is not a file' if path.exists() else 'does not exist'}")
