"""benchmarks/training_photos.py reads GCompris's paintings and photos out of Qt resource (.rcc) files: its reader
against a file laid out by hand from Qt's format (header, names, the entry tree, the payload)."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from training_photos import qt_resources  # noqa: E402

DIRECTORY, COMPRESSED = 2, 1


def rcc_file(version: int, files: dict[str, tuple[bytes, bool]]) -> bytes:
    """One directory "art" holding `files` (name -> (bytes, zlib-compressed?)), in Qt's rcc layout."""
    names, name_offsets = b"", {}
    for name in ["art", *files]:
        name_offsets[name] = len(names)
        names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
    payload, data_offsets = b"", {}
    for name, (blob, compress) in files.items():
        data_offsets[name] = len(payload)
        stored = struct.pack(">I", len(blob)) + zlib.compress(blob) if compress else blob
        payload += struct.pack(">I", len(stored)) + stored
    modified = b"\0" * 8 if version >= 2 else b""  # version 2 and later: a last-modified time per entry
    tree = struct.pack(">IHII", 0, DIRECTORY, 1, 1) + modified  # the root: one child, entry 1
    tree += struct.pack(">IHII", name_offsets["art"], DIRECTORY, len(files), 2) + modified
    for name, (_, compress) in files.items():
        tree += struct.pack(">IHHHI", name_offsets[name], COMPRESSED if compress else 0, 0, 0,
                            data_offsets[name]) + modified
    header_size = 24 if version >= 3 else 20  # version 3 adds a flags word
    tree_at = header_size
    payload_at = tree_at + len(tree)
    names_at = payload_at + len(payload)
    header = b"qres" + struct.pack(">IIII", version, tree_at, payload_at, names_at)
    header += b"\0" * (header_size - len(header))
    return header + tree + payload + names


@pytest.mark.parametrize("version", [1, 2, 3])
def test_qt_resources_lists_stored_and_compressed_files(tmp_path: Path, version: int) -> None:
    painting = bytes(range(256)) * 40
    path = tmp_path / "details.rcc"
    files = {"Gogh4_background.webp": (painting, True), "board.qml": (b"QtObject {}", False)}
    path.write_bytes(rcc_file(version, files))
    assert dict(qt_resources(path)) == {"art/Gogh4_background.webp": painting, "art/board.qml": b"QtObject {}"}


def test_qt_resources_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "not.rcc"
    path.write_bytes(b"RIFF" + b"\0" * 40)
    with pytest.raises(ValueError, match="not a Qt resource file"):
        list(qt_resources(path))


def test_jigsaw_puts_a_painting_back_together_from_its_pieces() -> None:
    import io

    import numpy as np
    from PIL import Image

    from training_styles import RIM, jigsaw

    rng = np.random.default_rng(0)
    painting = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)  # on a 100 x 80 board at (20, 10)
    pieces = {}
    for name, (left, right) in {"image/a.webp": (0, 25), "image/b.webp": (25, 60)}.items():
        piece = np.zeros((50, right - left + 10, 4), np.uint8)  # a transparent margin of 5 all round
        piece[5:45, 5:-5, :3] = painting[:, left:right]
        piece[5:45, 5:-5, 3] = 255
        blob = io.BytesIO()
        Image.fromarray(piece).save(blob, "webp", lossless=True)
        pieces[name] = blob.getvalue()
    centre = {"image/a.webp": 20 + 12.5, "image/b.webp": 20 + 25 + 17.5}  # pixel centres, as fractions below
    board = 'instruction: qsTr("Someone, A Study - 1900")\n"width": 100,\n"height": 80\n' + "".join(
        f'{{"pixmapfile" : "{name}",\n "x" : "{centre[name] / 100}",\n "y" : "{30 / 80}"}},\n' for name in pieces)
    title, picture = jigsaw(board, pieces)
    assert title == "Someone, A Study - 1900"
    np.testing.assert_array_equal(np.asarray(picture), painting[RIM:-RIM, RIM:-RIM])
