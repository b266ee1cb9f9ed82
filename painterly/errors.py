"""The one exception type users see: a clear, one-line message about bad input or settings."""


class PainterlyError(ValueError):
    """Raised for anything the user can fix: bad files, bad options, sizes that do not fit.

    The CLI prints its message on one line and exits non-zero; it never shows a traceback.
    """


class NotAnImageError(PainterlyError):
    """A file that no image format painterly reads recognises (the web app answers 415)."""


class ImageTooLargeError(PainterlyError):
    """An image over the pixel safety limit, e.g. a decompression bomb (the web app answers 413)."""
