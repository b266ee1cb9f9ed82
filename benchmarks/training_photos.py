"""Gather the wider training photo set for the bundled networks and decoders into one folder.

../shared/data/photos holds 21 Debian wallpapers, mostly nature close-ups and abstracts; the held-out
photos the models are scored on (../shared/data/adain/content) are cities, buildings and people. This
adds photographs of other kinds, all installable offline, each reduced to 1280 px on the long side:

- lomiri/: the 14 photographs (landscapes, a bridge, interiors, animals, objects) among
  lomiri-wallpapers-16.04 and -20.04 (Debian; CC-BY-4.0 / CC-BY-SA-4.0, per file in their copyright),
  fetched with `apt-get download`;
- skimage/: scikit-image's astronaut, chelsea, coffee and rocket (bundled in its wheel);
- sklearn/: scikit-learn's china and flower (bundled in its wheel);
- shared/: ../shared/data/classic/content's hoovertowernight and tubingen, ../shared/data/strotss's
  content_im (golden_gate stays out: it is the validation photo and a held-out one).

`--more` writes, instead, the set of a later training stage into a folder of its own (so the earlier
stages' set stays as it was):

- widelands/: the 21 photographs (Alpine meadows, lakes, coasts, fields, winter woods; 2592x1944) of
  Widelands' game-loading screens, data/templates/default/loadscreens/gameloading/*/ in widelands-data
  (Debian; GPL-2+), a 381 MB package fetched with `apt-get download`;
- monuments/: the 49 photographs of buildings (castles, cathedrals, temples, towers, pyramids, bridges;
  1024 px) of the GCompris "explore monuments" activity (gcompris-qt-data, Debian; each CC-BY-SA 4.0,
  CC-BY or public domain per its README, all from Wikimedia Commons), read out of its Qt resource file.
  The held-out photos are cities, buildings and people; the rest of the training set is mostly nature.

`--animals-people` writes the set added at starry_night's eleventh stage, again into a folder of its own:

- gcompris/: the 33 photographs (1024 px) of GCompris's "explore world animals" (15), "explore farm animals" (9)
  and "explore world music" (9: musicians of seven countries, an orchestra, an instrument) activities
  (gcompris-qt-data, Debian; each public domain, CC0-1.0 or CC-BY 2.0 per the README beside it, all from
  Wikimedia Commons): animals' fur and feathers, and people, whom the earlier sets hardly have.

`--wildlife-objects` writes the set added at starry_night's thirteenth stage:

- gcompris/: the 33 photographs (1920x1080) of GCompris's "erase" activity, animals in their settings, and the 6
  underwater ones of its "clickgame", all from Wikimedia Commons (CC-BY 2.0/3.0, CC-BY-SA 4.0, CC0-1.0 or public
  domain per the READMEs beside them);
- opencv/: 18 photographs of opencv-doc's examples/data (Debian; Apache-2.0 and BSD-3-Clause, its
  copyright's "Files: *"): aerial views of a town, streets of Leuven, a building, a house, a car, a
  footballer, fruit, a plant, a circuit board, graffiti, a squirrel, a butterfly, a baboon.

    python benchmarks/training_photos.py out/photos     # then: painterly train ... --photos DIR out/photos
    python benchmarks/training_photos.py --more out/photos-more
    python benchmarks/training_photos.py --animals-people out/photos-animals
    python benchmarks/training_photos.py --wildlife-objects out/photos-wildlife
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

LOMIRI_PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
LOMIRI_PHOTOS = ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Kleiber_by_Lukas_Baubkus",
                 "Picture_0B_by_freespace", "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede",
                 "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
                 "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
                 "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
WIDELANDS_PHOTOS = "usr/share/games/widelands/data/templates/default/loadscreens/gameloading"
GCOMPRIS = "gcompris-qt-data"
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"  # its activities' Qt resource files
ANIMALS_PEOPLE = {"explore_world_animals": 15, "explore_farm_animals": 9, "explore_world_music": 9}
WILDLIFE = {"erase": 33, "clickgame": 6}  # their photographs; the rest are drawings
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
OPENCV_PHOTOS = ("aero1", "aero3", "aloeL", "apple", "baboon", "board", "building", "butterfly", "fruits", "graf1",
                 "home", "leuvenA", "leuvenB", "licenseplate_motion", "messi5", "orange", "squirrel_cls", "stuff")
LONG_SIDE = 1280


def save(image: Image.Image, path: Path) -> None:
    image = image.convert("RGB")
    image.thumbnail((LONG_SIDE, LONG_SIDE), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.jpg")
    image.save(part, quality=90)
    part.replace(path)


def unpacked(packages: tuple[str, ...], work: str) -> Path:
    """The files of Debian `packages`, fetched with apt-get download and unpacked under `work`."""
    subprocess.run(["apt-get", "download", *packages], cwd=work, check=True, capture_output=True)
    root = Path(work) / "x"
    for deb in Path(work).glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


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


def lomiri(out: Path) -> int:
    with tempfile.TemporaryDirectory() as work:
        found = {p.stem: p for p in unpacked(LOMIRI_PACKAGES, work).rglob("*.jpg")}
        for name in LOMIRI_PHOTOS:
            save(Image.open(found[name]), out / "lomiri" / f"{name}.jpg")
    return len(LOMIRI_PHOTOS)


def widelands(out: Path) -> int:
    with tempfile.TemporaryDirectory() as work:
        paths = sorted((unpacked(("widelands-data",), work) / WIDELANDS_PHOTOS).glob("*/*.png"))
        for path in paths:  # jaegersee is in two seasons' folders: the season keeps the names apart
            save(Image.open(path), out / "widelands" / f"{path.parent.name}_{path.stem}.jpg")
    return len(paths)


def activity_images(rcc: Path, activity: str) -> Iterator[tuple[str, Image.Image]]:
    """(file stem, image) of each .webp in a GCompris activity's resource folder, from its .rcc file
    under `rcc` (the unpacked package's GCOMPRIS_RCC)."""
    folder = f"gcompris/src/activities/{activity}/resource/"
    for name, blob in qt_resources(rcc / f"{activity}.rcc"):
        if name.startswith(folder) and name.endswith(".webp"):
            yield Path(name).stem, Image.open(io.BytesIO(blob))


def monuments(out: Path) -> int:
    with tempfile.TemporaryDirectory() as work:
        count = 0
        for stem, image in activity_images(unpacked((GCOMPRIS,), work) / GCOMPRIS_RCC, "explore_monuments"):
            save(image, out / "monuments" / f"{stem}.jpg")
            count += 1
    if count != 49:
        raise SystemExit(f"found {count} of the 49 monument photographs in {GCOMPRIS}")
    return count


def gcompris_photos(out: Path, activities: dict[str, int]) -> int:
    """The photographs (1000 px and more on the long side; the rest are icons and drawings) of GCompris
    activities, `activities` naming how many each must have, written under out/gcompris."""
    with tempfile.TemporaryDirectory() as work:
        rcc = unpacked((GCOMPRIS,), work) / GCOMPRIS_RCC
        count = 0
        for activity, expected in activities.items():
            found = 0
            for stem, image in activity_images(rcc, activity):
                if max(image.size) >= 1000:
                    save(image, out / "gcompris" / f"{activity}_{stem}.jpg")
                    found += 1
            if found != expected:
                raise SystemExit(f"found {found} of the {expected} photographs of {activity} in {GCOMPRIS}")
            count += found
    return count


def opencv_photos(out: Path) -> int:
    with tempfile.TemporaryDirectory() as work:
        data = unpacked(("opencv-doc",), work) / OPENCV_DATA
        for name in OPENCV_PHOTOS:
            (path,) = data.glob(f"{name}.*")
            save(Image.open(path), out / "opencv" / f"{name}.jpg")
    return len(OPENCV_PHOTOS)


def samples(out: Path) -> int:
    import numpy as np
    import skimage.data
    from sklearn.datasets import load_sample_images

    for name in SKIMAGE_PHOTOS:
        save(Image.fromarray(getattr(skimage.data, name)()), out / "skimage" / f"{name}.jpg")
    bunch = load_sample_images()
    for name, array in zip(bunch.filenames, bunch.images):
        save(Image.fromarray(np.asarray(array)), out / "sklearn" / Path(name).name)
    return len(SKIMAGE_PHOTOS) + len(bunch.images)


def shared(out: Path, data: Path) -> int:
    paths = [data / "classic/content/hoovertowernight.jpg", data / "classic/content/tubingen.jpg",
             data / "strotss/content_im.jpg"]
    for path in paths:
        save(Image.open(path), out / "shared" / path.name)
    return len(paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared/data")
    ap.add_argument("--more", action="store_true", help="the later stage's set only (widelands/, monuments/)")
    ap.add_argument("--animals-people", action="store_true", help="the eleventh stage's set only (gcompris/)")
    ap.add_argument("--wildlife-objects", action="store_true",
                    help="the thirteenth stage's set only (gcompris/, opencv/)")
    args = ap.parse_args()
    if args.animals_people:
        counts = {"gcompris": gcompris_photos(args.out, ANIMALS_PEOPLE)}
    elif args.wildlife_objects:
        counts = {"gcompris": gcompris_photos(args.out, WILDLIFE), "opencv": opencv_photos(args.out)}
    elif args.more:
        counts = {"widelands": widelands(args.out), "monuments": monuments(args.out)}
    else:
        counts = {"lomiri": lomiri(args.out), "scikit samples": samples(args.out), "shared": shared(args.out, args.data)}
    print(f"{sum(counts.values())} photos in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
