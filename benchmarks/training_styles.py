"""Gather more style images for the AdaIN decoder into one folder.

The bundled AdaIN decoder was trained on the 14 paintings of ../shared/data/adain/style. On those it
reaches a Gram style loss of 0.05-0.11 of the plain content's, on the held-out paintings of
../shared/data/classic/style 0.29-0.33: it has learnt its 14 styles rather than styles in general (the
paper trains on 80 000 WikiArt paintings). This adds the non-photographic images that install offline,
each reduced to 1280 px on the long side:

- plasma/: 18 illustrations of plasma-workspace-wallpapers (Debian; GPL-2+, per its copyright file);
- ukui/: 12 illustrations of ukui-wallpapers (Debian; CC-BY-SA-3.0);
- shared/: ../shared/data/strotss's two paintings (style_im, a still life; test_style).

Both packages are fetched with `apt-get download`; their photographs are left out. The scoring
paintings (classic/style) stay held out.

    python benchmarks/training_styles.py out/styles   # then: painterly train-decoder ... --styles DIR out/styles
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from training_photos import save

PACKAGES = ("plasma-workspace-wallpapers", "ukui-wallpapers")
PLASMA = ("Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui", "Honeywave",
          "IceCold", "Kay", "Kokkini", "Opal", "PastelHills", "Patak", "SafeLanding", "Shell", "Volna")
UKUI = ("2004default", "calla", "city", "desert", "firstgeneration", "fluent-color", "focal-ubuntukylin", "goldfish",
        "rhythm", "rollpaper", "string", "the-mouse")
SHARED = ("strotss/style_im.jpg", "strotss/test_style.jpg")


def wallpapers(out: Path) -> int:
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=work, check=True, capture_output=True)
        root = Path(work) / "x"
        for deb in Path(work).glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        for name in PLASMA:  # a plasma wallpaper comes in several sizes: the largest light one
            images = sorted((root / "usr/share/wallpapers" / name / "contents/images").iterdir(),
                            key=lambda p: p.stat().st_size)
            save(Image.open(images[-1]), out / "plasma" / f"{name}.jpg")
        backgrounds = {p.stem: p for p in (root / "usr/share/backgrounds").iterdir()}
        for name in UKUI:
            save(Image.open(backgrounds[name]), out / "ukui" / f"{name}.jpg")
    return len(PLASMA) + len(UKUI)


def shared(out: Path, data: Path) -> int:
    for name in SHARED:
        save(Image.open(data / name), out / "shared" / Path(name).name)
    return len(SHARED)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data")
    args = ap.parse_args()
    counts = {"wallpapers": wallpapers(args.out), "shared": shared(args.out, args.data)}
    print(f"{sum(counts.values())} style images in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
