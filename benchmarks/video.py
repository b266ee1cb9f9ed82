"""Video: temporal consistency and speed per method, independent frames against the temporal method.

Consistency is Lai et al. (2018)'s warping error (painterly.warping_error: flow and masks from the
input frames, pixels in [0, 1]); the input video's own error is the floor. Each method runs twice on
the same frames with the same iterations per frame: --temporal-weight 0 (independent frames) and the
default. Seconds per frame include flow, blending and encoding. Clips: the first --frames frames of
../shared/data/video/bigbuckbunny.mp4 and a synthetic pan over the bundled Tübingen photo.

    python benchmarks/video.py [--size 256] [--frames 12] [--methods gatys,network,adain] [--fps-size 640]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import painterly  # noqa: E402
from painterly.image import as_tensor, resize  # noqa: E402
from painterly.videoio import VideoSink, VideoSource  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT.parent / "shared" / "data" / "video" / "bigbuckbunny.mp4"
STYLE = ROOT / "painterly" / "examples" / "starry_night.jpg"
RECIPES = {  # options per method, the same iteration budget for every frame
    "gatys": {"iterations": 40, "scales": 1},
    "strotss": {"iterations": 40, "scales": 1},
    "network": {"model": "starry_night"},
    "adain": {},
    "wct": {},
}


def synthetic_pan(folder: Path, frames: int, size: int) -> Path:
    """A window panning and zooming slowly over the Tübingen photo, written as an H.264 clip."""
    photo = as_tensor(ROOT / "painterly" / "examples" / "tubingen.jpg")
    h, w = photo.shape[-2:]
    path = folder / "pan.mp4"
    out_h, out_w = (size * 9 // 16) // 2 * 2, size // 2 * 2
    sink = VideoSink(path, (out_h, out_w), Fraction(25), crf=12)
    for i in range(frames):
        zoom = 1 - 0.004 * i
        ch, cw = int(h * 0.6 * zoom), int(w * 0.6 * zoom)
        top, left = int(h * 0.2) + i, int(w * 0.1) + 3 * i
        sink.write(resize(photo[..., top:top + ch, left:left + cw], (out_h, out_w)))
    sink.close()
    return path


def run(clip: Path, method: str, options: dict, weight: float, size: int, frames: int, folder: Path):
    out = folder / f"{method}_{weight:g}.mp4"
    seconds = []
    styles = [] if "model" in options else [STYLE]
    if painterly.get_method(method).optimises:
        options = {**options, "seed": 0}  # a forward pass draws nothing at random
    t0 = time.perf_counter()
    painterly.stylize_video(clip, styles, out, method=method, size=size,
                            video=painterly.VideoConfig(temporal_weight=weight, end=frames / 25 + 1e-3),
                            callback=lambda info: seconds.append(info.seconds), **options)
    total = time.perf_counter() - t0
    outputs = list(VideoSource(out))
    return outputs, total / len(outputs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--methods", default="gatys,network,adain")
    p.add_argument("--temporal-weight", type=float, default=200.0, help="the temporal method's --temporal-weight")
    p.add_argument("--iterations", type=int, help="iterations a frame for the optimisation methods [40]")
    p.add_argument("--clips", default="bigbuckbunny,synthetic pan")
    p.add_argument("--fps-size", type=int, default=640, help="the size the network's frames per second is measured at")
    args = p.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    if args.iterations is not None:
        for options in RECIPES.values():
            if "iterations" in options:
                options["iterations"] = args.iterations
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wanted = args.clips.split(",")
        clips = {"bigbuckbunny": CLIP} if "bigbuckbunny" in wanted else {}
        if "synthetic pan" in wanted:
            clips["synthetic pan"] = synthetic_pan(folder, args.frames, args.size)
        print(f"video on 2 cores, {args.size} px long side, {args.frames} frames per clip, style Starry Night, "
              f"{RECIPES['gatys']['iterations']} iterations a frame for optimisation")
        print(f"{'clip':<15}{'method':<9}{'floor':>9}{'independent':>13}{'temporal':>10}{'ratio':>7}"
              f"{'s/frame ind.':>14}{'s/frame temp.':>15}")
        for clip_name, clip in clips.items():
            if not clip.exists():
                continue
            source = VideoSource(clip, end=args.frames / 25 + 1e-3, max_side=args.size)
            inputs = list(source)
            floor = painterly.warping_error(inputs, inputs)
            for method in methods:
                try:
                    independent, s_ind = run(clip, method, RECIPES[method], 0.0, args.size, args.frames, folder)
                    temporal, s_temp = run(clip, method, RECIPES[method], args.temporal_weight, args.size, args.frames,
                                           folder)
                except painterly.PainterlyError as exc:
                    print(f"{clip_name:<15}{method:<9} skipped: {exc}")
                    continue
                e_ind = painterly.warping_error(inputs, independent)
                e_temp = painterly.warping_error(inputs, temporal)
                print(f"{clip_name:<15}{method:<9}{floor:>9.4f}{e_ind:>13.4f}{e_temp:>10.4f}{e_temp / e_ind:>7.2f}"
                      f"{s_ind:>14.2f}{s_temp:>15.2f}")
        if "network" in methods and CLIP.exists():
            _, per_frame = run(CLIP, "network", RECIPES["network"], 200.0, args.fps_size, 25, folder)
            print(f"network at {args.fps_size} px (bigbuckbunny, 25 frames, flow + blending + encoding included): "
                  f"{1 / per_frame:.1f} frames/s")


if __name__ == "__main__":
    main()
