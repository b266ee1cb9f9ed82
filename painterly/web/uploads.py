"""Multipart uploads read as a stream: each file goes to disk as it arrives, under a name of ours, and
the request is cut off the moment a file passes the size limit (never read whole into memory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, BinaryIO, Optional

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header


class UploadError(Exception):
    """A bad request, with the HTTP status to answer and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class UploadedFile:
    field: str        # the form field ("content", "style", ...)
    filename: str     # what the client called it: shown to the user, never used as a path
    path: Path        # where it was stored (a name of ours)
    size: int = 0


@dataclass
class Form:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def named(self, name: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field == name]


def _display_name(raw: bytes) -> str:
    """The client's file name reduced to a short, printable base name (for display only)."""
    name = raw.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable())
    if len(name) > 120:  # shortened in the middle: the extension stays (the job's command names the file)
        stem, dot, suffix = name.rpartition(".")
        name = f"{stem[:110]}…{dot}{suffix[:8]}" if dot and stem else name[:120]
    return name or "upload"


async def read_form(content_type: str, body: AsyncIterator[bytes], folder: Path, *, file_fields: dict[str, int],
                    text_fields: set[str], max_file_bytes: int, max_text_bytes: int = 64 * 1024) -> Form:
    """Parse a multipart/form-data body into files under `folder` and small text fields.

    file_fields: the allowed file fields and how many files each may have. Anything else (an unknown
    field, a text field sent as a file or the other way round, a text field given twice, too many
    files, a file over max_file_bytes) raises UploadError with the status to answer.
    """
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise UploadError(415, "send the job as multipart/form-data")
    form = Form()
    header_name, header_value = bytearray(), bytearray()
    headers: dict[bytes, bytes] = {}
    state: dict = {"file": None, "text": None, "name": ""}

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name:
            raise UploadError(400, "a form part without a field name")
        state["name"] = name
        if b"filename" in options:
            if name not in file_fields:
                raise UploadError(400, f"unexpected file field '{name[:40]}'; "
                                       f"files go in {', '.join(sorted(file_fields))}")
            count = len(form.named(name))
            if count >= file_fields[name]:
                raise UploadError(400, f"too many '{name}' files (at most {file_fields[name]})")
            upload = UploadedFile(name, _display_name(options[b"filename"]), folder / f"{name}_{count}.upload")
            form.files.append(upload)
            state["file"], state["text"] = (upload, upload.path.open("wb")), None
        else:
            if name not in text_fields:
                raise UploadError(400, f"unexpected field '{name[:40]}'; expected {', '.join(sorted(text_fields))}")
            if name in form.fields:  # not resolved last-one-wins: which one was meant is the sender's to say
                raise UploadError(400, f"field '{name[:40]}' is given twice; send it once")
            state["file"], state["text"] = None, bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["file"] is not None:
            upload, handle = state["file"]
            upload.size += end - start
            if upload.size > max_file_bytes:
                raise UploadError(413, f"'{upload.filename}' is over the {max_file_bytes // 2**20} MB upload limit")
            handle.write(data[start:end])
        else:
            state["text"].extend(data[start:end])
            if len(state["text"]) > max_text_bytes:
                raise UploadError(413, f"field '{state['name']}' is over {max_text_bytes // 1024} KB")

    def on_part_end() -> None:
        if state["file"] is not None:
            state["file"][1].close()
        elif state["text"] is not None:
            try:
                form.fields[state["name"]] = bytes(state["text"]).decode("utf-8")
            except UnicodeDecodeError:
                raise UploadError(400, f"field '{state['name']}' is not UTF-8 text") from None
        state["file"] = state["text"] = None

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end})
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END:  # cut short: its last file would be read as a truncated image
            raise UploadError(400, "malformed multipart body (it ends before its closing boundary)")
    except UploadError:
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        raise UploadError(400, f"malformed multipart body ({exc})") from None
    finally:
        handle: Optional[BinaryIO] = state["file"][1] if state["file"] is not None else None
        if handle is not None:
            handle.close()
    return form
