"""Gather more style images for the AdaIN decoder into one folder.

The bundled AdaIN decoder was trained on the 14 paintings of ../shared/data/adain/style. On those it
reaches a Gram style loss of 0.05-0.11 of the plain content's, on the held-out paintings of
../shared/data/classic/style 0.29-0.33: it has learnt its 14 styles rather than styles in general (the
paper trains on 80 000 WikiArt paintings). This adds the non-photographic images that install offline,
each reduced to 1280 px on the long side:

- plasma/: 18 illustrations of plasma-workspace-wallpapers (Debian; GPL-2+, per its copyright file);
- ukui/: 12 illustrations of ukui-wallpapers (Debian; CC-BY-SA-3.0);
- shared/: ../shared/data/strotss's two paintings (style_im, a still life; test_style);
- wesnoth/: 46 digital paintings, the story art of Battle for Wesnoth 1.16 (Debian packages
  wesnoth-1.16-data and the trow, httt and tsg campaigns; GPL-2+): landscapes and scenes;
- vangogh/: 8 public-domain Van Gogh paintings (not Starry Night) of the GCompris "details"
  activity (gcompris-qt-data, GPL-3+), read out of its Qt resource file.

All packages are fetched with `apt-get download`; their photographs, game maps, logos and near
duplicates are left out. The scoring paintings (classic/style) stay held out.

    python benchmarks/training_styles.py out/styles   # then: painterly train-decoder ... --styles DIR out/styles
"""

from __future__ import annotations

import argparse
import io
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from training_photos import save

PACKAGES = ("plasma-workspace-wallpapers", "ukui-wallpapers", "wesnoth-1.16-data", "wesnoth-1.16-trow",
            "wesnoth-1.16-httt", "wesnoth-1.16-tsg", "gcompris-qt-data")
PLASMA = ("Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui", "Honeywave",
          "IceCold", "Kay", "Kokkini", "Opal", "PastelHills", "Patak", "SafeLanding", "Shell", "Volna")
UKUI = ("2004default", "calla", "city", "desert", "firstgeneration", "fluent-color", "focal-ubuntukylin", "goldfish",
        "rhythm", "rollpaper", "string", "the-mouse")
SHARED = ("strotss/style_im.jpg", "strotss/test_style.jpg")
WESNOTH = "usr/share/games/wesnoth/1.16/data"
WESNOTH_STORIES = ("core", "campaigns/The_Rise_Of_Wesnoth", "campaigns/Heir_To_The_Throne", "campaigns/The_South_Guard")
WESNOTH_DUPLICATES = ("landscape-battlefield_nohumans.jpg", "landscape-bridge_sun.jpg")
VAN_GOGH = ("PortraitOfPereTanguy", "Van_Gogh_The_Night_Cafe", "Eglise_dAuvers-sur-Oise", "VincentVanGoghBridge",
            "VincentVanGogh0012", "VincentVanGogh0013", "VincentVanGogh0019", "Gogh4")


def qt_resources(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each file in a Qt .rcc resource file (format versions 1-3, zlib or stored)."""
    data = path.read_bytes()
    if data[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    entry = 22 if version >= 2 else 14

    def name(offset: int) -> str:
        (length,) = struct.unpack_from(">H", data, names + offset)
        return data[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * entry
        name_offset, flags = struct.unpack_from(">IH", data, base)
        here = f"{prefix}{name(name_offset)}" if index else ""
        if flags & 2:  # a directory: its children are consecutive entries
            count, first = struct.unpack_from(">II", data, base + 6)
            for child in range(first, first + count):
                yield from walk(child, f"{here}/" if index else "")
        else:
            (offset,) = struct.unpack_from(">I", data, base + 10)
            (size,) = struct.unpack_from(">I", data, payload + offset)
            blob = data[payload + offset + 4:payload + offset + 4 + size]
            yield here, zlib.decompress(blob[4:]) if flags & 1 else blob

    yield from walk(0, "")


def packaged(out: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=work, check=True, capture_output=True)
        root = Path(work) / "x"
        for deb in Path(work).glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        return {"wallpapers": wallpapers(root, out), "wesnoth": wesnoth(root, out), "vangogh": van_gogh(root, out)}


def wallpapers(root: Path, out: Path) -> int:
    for name in PLASMA:  # a plasma wallpaper comes in several sizes: the largest light one
        images = sorted((root / "usr/share/wallpapers" / name / "contents/images").iterdir(),
                        key=lambda p: p.stat().st_size)
        save(Image.open(images[-1]), out / "plasma" / f"{name}.jpg")
    backgrounds = {p.stem: p for p in (root / "usr/share/backgrounds").iterdir()}
    for name in UKUI:
        save(Image.open(backgrounds[name]), out / "ukui" / f"{name}.jpg")
    return len(PLASMA) + len(UKUI)


def wesnoth(root: Path, out: Path) -> int:
    count = 0
    for story in WESNOTH_STORIES:
        for path in sorted((root / WESNOTH / story / "images/story").glob("*.jpg")):
            if path.name not in WESNOTH_DUPLICATES:
                save(Image.open(path), out / "wesnoth" / f"{Path(story).name}_{path.name}")
                count += 1
    return count


def van_gogh(root: Path, out: Path) -> int:
    wanted = {f"{name}_background.webp": name for name in VAN_GOGH}
    count = 0
    for name, blob in qt_resources(root / "usr/share/gcompris-qt/rcc/details.rcc"):
        painting = wanted.get(Path(name).name)
        if painting is not None:
            save(Image.open(io.BytesIO(blob)), out / "vangogh" / f"{painting}.jpg")
            count += 1
    if count != len(VAN_GOGH):
        raise SystemExit(f"found {count} of the {len(VAN_GOGH)} Van Gogh paintings in gcompris-qt-data")
    return count


def shared(out: Path, data: Path) -> int:
    for name in SHARED:
        save(Image.open(data / name), out / "shared" / Path(name).name)
    return len(SHARED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data")
    args = ap.parse_args()
    counts = {**packaged(args.out), "shared": shared(args.out, args.data)}
    print(f"{sum(counts.values())} style images in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
