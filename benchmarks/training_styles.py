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

`--more` writes, instead, the set of a later training stage into a folder of its own (so the earlier
stages' set stays as it was):

- wesnoth_more/: 12 story paintings of three more Battle for Wesnoth campaigns (wesnoth-1.16-did, -l
  and -ttb; GPL-2+): Liberty's four sunsets in bold swirls of orange and flat dark shapes, Descent into
  Darkness's four sepia and green washes, Two Brothers' four muted ink-and-wash scenes. The other
  campaigns' story folders hold character portraits on black, or game screenshots.

`--museum` writes the set of the stage after that:

- museum/: 21 paintings of the GCompris "paintings" jigsaw activity (gcompris-qt-data; from Nicolas
  Pioch's WebMuseum, GPL-3+ per its README), each put back together from its puzzle pieces at the
  centres its board file gives: eight Hokusai and two Hiroshige woodcuts, two Renoirs, Cassatt, Bazille,
  Van Gogh's Village Street in Auvers, Kandinsky's Composition VIII, Bruegel, Duerer's Lion, two
  Arcimboldos, Bellini and the Mona Lisa. Michelangelo's Pieta (a photograph of a sculpture) is left out.

All packages are fetched with `apt-get download`; their photographs, game maps, logos and near
duplicates are left out. The scoring paintings (classic/style) stay held out.

    python benchmarks/training_styles.py out/styles   # then: painterly train-decoder ... --styles DIR out/styles
    python benchmarks/training_styles.py --more out/styles-more
    python benchmarks/training_styles.py --museum out/styles-museum
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from pathlib import Path

from PIL import Image

from training_photos import GCOMPRIS, GCOMPRIS_RCC, qt_resources, save, unpacked

PACKAGES = ("plasma-workspace-wallpapers", "ukui-wallpapers", "wesnoth-1.16-data", "wesnoth-1.16-trow",
            "wesnoth-1.16-httt", "wesnoth-1.16-tsg", GCOMPRIS)
PLASMA = ("Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui", "Honeywave",
          "IceCold", "Kay", "Kokkini", "Opal", "PastelHills", "Patak", "SafeLanding", "Shell", "Volna")
UKUI = ("2004default", "calla", "city", "desert", "firstgeneration", "fluent-color", "focal-ubuntukylin", "goldfish",
        "rhythm", "rollpaper", "string", "the-mouse")
SHARED = ("strotss/style_im.jpg", "strotss/test_style.jpg")
WESNOTH = "usr/share/games/wesnoth/1.16/data"
WESNOTH_STORIES = ("core", "campaigns/The_Rise_Of_Wesnoth", "campaigns/Heir_To_The_Throne", "campaigns/The_South_Guard")
WESNOTH_DUPLICATES = ("landscape-battlefield_nohumans.jpg", "landscape-bridge_sun.jpg")
MORE_PACKAGES = ("wesnoth-1.16-did", "wesnoth-1.16-l", "wesnoth-1.16-ttb")
MORE_STORIES = ("campaigns/Descent_Into_Darkness", "campaigns/Liberty", "campaigns/Two_Brothers")
PAINTINGS_FOLDER = "gcompris/src/activities/paintings/resource/"
NOT_PAINTINGS = ("Michelangelo, Pieta",)
RIM = 3  # pixels
VAN_GOGH = ("PortraitOfPereTanguy", "Van_Gogh_The_Night_Cafe", "Eglise_dAuvers-sur-Oise", "VincentVanGoghBridge",
            "VincentVanGogh0012", "VincentVanGogh0013", "VincentVanGogh0019", "Gogh4")


def packaged(out: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as work:
        root = unpacked(PACKAGES, work)
        return {"wallpapers": wallpapers(root, out), "wesnoth": wesnoth(root, out / "wesnoth", WESNOTH_STORIES),
                "vangogh": van_gogh(root, out)}


def packaged_more(out: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as work:
        root = unpacked(MORE_PACKAGES, work)
        return {"wesnoth_more": wesnoth(root, out / "wesnoth_more", MORE_STORIES, ("*.jpg", "*.png"))}


def packaged_museum(out: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as work:
        return {"museum": museum(unpacked((GCOMPRIS,), work), out / "museum")}


def museum(root: Path, out: Path) -> int:
    """GCompris's jigsaw paintings into `out`, each pasted together from its pieces."""
    files = {name.removeprefix(PAINTINGS_FOLDER): blob
             for name, blob in qt_resources(root / GCOMPRIS_RCC / "paintings.rcc")
             if name.startswith(PAINTINGS_FOLDER)}
    count = 0
    for name, blob in sorted(files.items()):
        if name.startswith("board/"):
            title, painting = jigsaw(blob.decode(), files)
            if not title.startswith(NOT_PAINTINGS):
                save(painting, out / f"{re.sub(r'[^A-Za-z0-9]+', '_', title.split(' - ')[0]).strip('_')}.jpg")
                count += 1
    if count != 21:
        raise SystemExit(f"found {count} of the 21 jigsaw paintings in {GCOMPRIS}")
    return count


def jigsaw(board: str, files: dict[str, bytes]) -> tuple[str, Image.Image]:
    """The title and the picture of one GCompris puzzle board: its RGBA pieces pasted at the centres the board
    gives (as fractions of its width and height), cropped to what they cover less their antialiased rim."""
    title = re.search(r'qsTr\("([^"]+)"\)', board).group(1)
    width, height = (int(re.search(rf'"{key}"\s*:\s*(\d+)', board).group(1)) for key in ("width", "height"))
    canvas = Image.new("RGBA", (width, height))
    for name, x, y in re.findall(r'"pixmapfile"\s*:\s*"([^"]+\.webp)",\s*"x"\s*:\s*"([\d.]+)",\s*"y"\s*:\s*"([\d.]+)"',
                                 board):
        piece = Image.open(io.BytesIO(files[name])).convert("RGBA")
        corner = (round(float(x) * width - piece.width / 2), round(float(y) * height - piece.height / 2))
        canvas.alpha_composite(piece, corner)
    left, top, right, bottom = canvas.getchannel("A").getbbox()
    return title, canvas.crop((left + RIM, top + RIM, right - RIM, bottom - RIM)).convert("RGB")


def wallpapers(root: Path, out: Path) -> int:
    for name in PLASMA:  # a plasma wallpaper comes in several sizes: the largest light one
        images = sorted((root / "usr/share/wallpapers" / name / "contents/images").iterdir(),
                        key=lambda p: p.stat().st_size)
        save(Image.open(images[-1]), out / "plasma" / f"{name}.jpg")
    backgrounds = {p.stem: p for p in (root / "usr/share/backgrounds").iterdir()}
    for name in UKUI:
        save(Image.open(backgrounds[name]), out / "ukui" / f"{name}.jpg")
    return len(PLASMA) + len(UKUI)


def wesnoth(root: Path, out: Path, stories: tuple[str, ...], patterns: tuple[str, ...] = ("*.jpg",)) -> int:
    """The story paintings of Wesnoth's `stories` (folders under its data/) into `out`."""
    count = 0
    for story in stories:
        folder = root / WESNOTH / story / "images/story"
        for path in sorted(p for pattern in patterns for p in folder.glob(pattern)):
            if path.name not in WESNOTH_DUPLICATES:
                save(Image.open(path), out / f"{Path(story).name}_{path.stem}.jpg")
                count += 1
    return count


def van_gogh(root: Path, out: Path) -> int:
    wanted = {f"{name}_background.webp": name for name in VAN_GOGH}
    count = 0
    for name, blob in qt_resources(root / GCOMPRIS_RCC / "details.rcc"):
        painting = wanted.get(Path(name).name)
        if painting is not None:
            save(Image.open(io.BytesIO(blob)), out / "vangogh" / f"{painting}.jpg")
            count += 1
    if count != len(VAN_GOGH):
        raise SystemExit(f"found {count} of the {len(VAN_GOGH)} Van Gogh paintings in {GCOMPRIS}")
    return count


def shared(out: Path, data: Path) -> int:
    for name in SHARED:
        save(Image.open(data / name), out / "shared" / Path(name).name)
    return len(SHARED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data")
    later = ap.add_mutually_exclusive_group()
    later.add_argument("--more", action="store_true", help="the later stage's set only (wesnoth_more/)")
    later.add_argument("--museum", action="store_true", help="the stage after that's set only (museum/)")
    args = ap.parse_args()
    if args.more:
        counts = packaged_more(args.out)
    elif args.museum:
        counts = packaged_museum(args.out)
    else:
        counts = {**packaged(args.out), "shared": shared(args.out, args.data)}
    print(f"{sum(counts.values())} style images in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
