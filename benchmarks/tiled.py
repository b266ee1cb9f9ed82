"""Tiled optimisation: print-size runs within a memory cap, and seams measured along tile borders.

Each contender runs in a fresh process, so its peak RSS is its own. The seam metric is the mean
image-gradient magnitude within 2 px of every tile border (all rounds) over that elsewhere
(painterly.tiling.seam_ratio); the bar is 0.9..1.1. The same ratio on an untiled output, over the
same border map, shows what the metric reads when there can be no seam.

    # whole vs tiled final scale at a size that fits whole (quality, seams, memory)
    python benchmarks/tiled.py compare --size 1024 --tile-size 512
    # a print-size output from the bundled example within a memory cap; saves a full-resolution crop
    python benchmarks/tiled.py print --size 4096 --max-memory 10 --scale-iterations 100,100,50,20,4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

EXAMPLES = C.ROOT / "painterly" / "examples"
OUT = C.ROOT / "benchmarks" / "results"


def worker(spec: dict) -> dict:
    """One run from a JSON spec: the method's config fields plus 'out' (where to save the image)."""
    import torch

    from painterly.image import as_tensor, save_image, tensor_to_pil
    from painterly.driver import make_plan, run
    from painterly.hardware import resolve_precision
    from painterly.methods.gatys import GATYS, GatysConfig
    from painterly.schedule import scale_peak_bytes
    from painterly.tiling import seam_ratio, tile_borders

    content = as_tensor(EXAMPLES / "tubingen.jpg")
    style = as_tensor(EXAMPLES / "starry_night.jpg")
    config = GatysConfig(**spec["config"])
    precision = resolve_precision(config.precision, "cpu")
    plan = make_plan(GATYS, config, tuple(content.shape[-2:]), [tuple(style.shape[-2:])], "cpu", precision)
    scale_end: dict[int, float] = {}
    scale_peak: dict[int, float] = {}

    def on_step(info) -> None:
        scale_end[info.scale] = info.elapsed
        scale_peak[info.scale] = C.peak_rss_mib()

    start = time.perf_counter()
    result = run(content, [style], config, callback=on_step)
    wall = time.perf_counter() - start
    save_image(tensor_to_pil(result), spec["out"])
    seams = {}
    for k, scale in enumerate(plan):
        if scale.tiling is not None and k == len(plan) - 1:
            seams["own borders"] = seam_ratio(result, tile_borders(scale.size, scale.tiling))
    if spec.get("borders_of"):
        from painterly.tiling import Tiling

        t = spec["borders_of"]
        seams["borders of the tiled run"] = seam_ratio(result, tile_borders(tuple(result.shape[-2:]),
                                                                            Tiling(t["tile"], t["overlap"], t["rounds"])))
    times, previous = [], 0.0
    for k in sorted(scale_end):
        times.append(round(scale_end[k] - previous, 1))
        previous = scale_end[k]
    last = plan[-1]
    model = GATYS.memory(config, [tuple(style.shape[-2:])], precision)
    predicted = [scale_peak_bytes(s, model) / 2**20 for s in plan]
    return {"peak_mib": C.peak_rss_mib(), "wall_s": round(wall, 1), "scale_s": times, "seams": seams,
            "scale_peak_mib": [round(scale_peak.get(k, 0)) for k in range(len(plan))],
            "predicted_mib": [round(p) for p in predicted],
            "plan": [{"size": [s.width, s.height], "iterations": s.iterations,
                      "tiling": None if s.tiling is None else {"tile": s.tiling.tile, "overlap": s.tiling.overlap,
                                                               "rounds": s.tiling.rounds,
                                                               "tiles": s.tiling.tile_count(s.size),
                                                               "largest": list(s.tiling.largest_box(s.size))[::-1]}}
                     for s in plan],
            "tiling": None if last.tiling is None else {"tile": last.tiling.tile, "overlap": last.tiling.overlap,
                                                         "rounds": last.tiling.rounds},
            "threads": torch.get_num_threads(), "precision": precision}


def score(path: Path, size: int) -> dict:
    """painterly's default Gatys objective of an output, on the whole image at once (fp32)."""
    from painterly.features import FeatureExtractor
    from painterly.image import as_tensor
    from painterly.image import resize
    from painterly.methods.gatys import GatysConfig, GatysEvaluator

    config = GatysConfig(precision="fp32")
    vgg = FeatureExtractor.vgg19(last_layer=config.layers[-1], precision="fp32")
    image = as_tensor(path)
    content = resize(as_tensor(EXAMPLES / "tubingen.jpg"), tuple(image.shape[-2:]))
    evaluate = GatysEvaluator(vgg, config, content, [as_tensor(EXAMPLES / "starry_night.jpg")])
    return {k: round(v, 1) for k, v in evaluate(image).floats().items()}


def save_crop(path: Path, crop: int) -> Path:
    """A full-resolution crop from the middle of the output, and the whole output at 1024 px."""
    from PIL import Image

    image = Image.open(path)
    w, h = image.size
    left, top = (w - crop) // 2, (h - crop) // 2
    crop_path = path.with_name(path.stem + f"_crop{crop}.png")
    image.crop((left, top, left + crop, top + crop)).save(crop_path)
    small = image.copy()
    small.thumbnail((1024, 1024), Image.LANCZOS)
    small.save(path.with_name(path.stem + "_1024.png"))
    return crop_path


def launch(spec: dict) -> dict:
    return C.run_worker(__file__, "--worker", json.dumps(spec))


def compare(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    base = {"size": args.size, "scales": 2, "iterations": args.iterations, "coarse_iterations": args.coarse_iterations,
            "seed": 0, "precision": args.precision}
    tiled_out = OUT / f"tiled_{args.size}_tile{args.tile_size}.png"
    whole_out = OUT / f"tiled_{args.size}_whole.png"
    tiled = launch({"config": {**base, "tile_size": args.tile_size}, "out": str(tiled_out)})
    whole = launch({"config": {**base, "tile_size": 0}, "out": str(whole_out)}
                   | {"borders_of": tiled["tiling"]})
    rows = []
    for name, r, path in (("whole", whole, whole_out), (f"tiled ({args.tile_size} px tiles)", tiled, tiled_out)):
        s = score(path, args.size)
        rows.append([name, r["wall_s"], round(r["peak_mib"]), s["content"], s["style"], s["total"],
                     " ".join(f"{v:.3f}" for v in r["seams"].values())])
    t = tiled["tiling"]
    print(f"{args.size} px, 2 scales, {args.coarse_iterations} + {args.iterations} iterations, {tiled['precision']}, "
          f"{tiled['threads']} threads; tiles {t['tile']} px, overlap {t['overlap']}, {t['rounds']} rounds")
    print(C.table(rows, ["final scale", "wall s", "peak MiB", "content", "style", "total (whole-image objective)",
                         "seam ratio"]))


def print_size(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"print_{args.size}.png"
    config = {"size": args.size, "seed": 0, "precision": args.precision, "max_memory": args.max_memory,
              "scale_iterations": [int(i) for i in args.scale_iterations.split(",")]}
    if args.tile_size is not None:
        config["tile_size"] = args.tile_size
    r = launch({"config": config, "out": str(out)})
    crop = save_crop(out, args.crop)
    print(f"{args.size} px output of the bundled example, {r['precision']}, {r['threads']} threads, "
          f"--max-memory {args.max_memory:g} GiB")
    rows = [[f"{p['size'][0]}x{p['size'][1]}", p["iterations"] if p["tiling"] is None else f"{p['iterations']} per tile",
             "whole" if p["tiling"] is None else
             f"{p['tiling']['tiles']} tiles <= {p['tiling']['largest'][0]}x{p['tiling']['largest'][1]}, "
             f"overlap {p['tiling']['overlap']}, {p['tiling']['rounds']} rounds", s]
            + [r["predicted_mib"][k], r["scale_peak_mib"][k]]
            for k, (p, s) in enumerate(zip(r["plan"], r["scale_s"]))]
    print(C.table(rows, ["scale", "iterations", "how", "wall s", "predicted peak MiB", "peak RSS so far MiB"]))
    print(f"total wall {r['wall_s']} s; peak RSS {r['peak_mib'] / 1024:.2f} GiB; "
          f"seam ratio {', '.join(f'{k}: {v:.3f}' for k, v in r['seams'].items())}")
    print(f"wrote {out}, {crop}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="mode")
    c = sub.add_parser("compare", help="whole vs tiled final scale")
    c.add_argument("--size", type=int, default=1024)
    c.add_argument("--tile-size", type=int, default=512)
    c.add_argument("--iterations", type=int, default=40)
    c.add_argument("--coarse-iterations", type=int, default=100)
    c.add_argument("--precision", default="auto")
    q = sub.add_parser("print", help="a print-size output within a memory cap")
    q.add_argument("--size", type=int, default=4096)
    q.add_argument("--max-memory", type=float, default=10.0, help="GiB")
    q.add_argument("--scale-iterations", default="100,100,50,20,4")
    q.add_argument("--tile-size", type=int)
    q.add_argument("--crop", type=int, default=1024)
    q.add_argument("--precision", default="auto")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
    elif args.mode == "print":
        print_size(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
