"""Peak memory of the trained-network method: inference at print sizes and training, one fresh process each.

Inference: measured peak RSS against the plan's estimate (NetworkMemory), whole or banded/tiled as
the plan chose, and the time; each size also with the heap handing freed maps back to the kernel (the
run reuses them where twice the estimate fits: painterly.heap, driver.reuses_heap). Training: peak RSS of a few steps of `painterly.train` at the default
settings (batch 4, 256 px crops) for the slim and Johnson widths.

    python benchmarks/network_memory.py --model painterly/models/starry_night.safetensors --sizes 1024,2048,4096
    python benchmarks/network_memory.py --model painterly/models/starry_night.safetensors --precision fp32 --train-steps 0
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

PHOTOS = C.ROOT.parent / "shared" / "data" / "photos"


def inference_worker(model: str, size: int, precision: str, reuse_heap: bool) -> dict:
    import torch

    import painterly
    import painterly.heap

    if not reuse_heap:
        painterly.heap._LIBC = None

    content = torch.rand(1, 3, size * 3 // 4, size)
    plan = painterly.plan(content, model=model, size=size, precision=precision)
    t = time.perf_counter()
    painterly.stylize(content, model=model, size=size, precision=precision)
    return {"seconds": time.perf_counter() - t, "estimate": plan.peak_bytes,
            "tiled": any(s.tiling is not None for s in plan.scales)}


def training_worker(widths: str, steps: int) -> dict:
    import painterly

    style = C.STYLE
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        config = painterly.TrainConfig(steps=steps, widths=tuple(int(w) for w in widths.split(",")), preview_every=10**6)
        painterly.train([style], PHOTOS, Path(tmp) / "m.safetensors", config, style_names=["style"])
    return {"seconds": time.perf_counter() - t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--sizes", default="1024,2048,4096")
    ap.add_argument("--train-steps", type=int, default=3, help="0: inference only")
    ap.add_argument("--precision", default="auto", help="inference precision (auto, bf16, fp32)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, value = args.worker.split(":", 1)
        result = (inference_worker(args.model, int(value.split(":")[0]), args.precision, value.endswith(":heap"))
                  if kind == "infer"
                  else training_worker(value, args.train_steps))
        print(json.dumps({**result, "peak_mib": C.peak_rss_mib()}))
        return
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for heap in ("heap", "kernel"):
            r = C.run_worker(__file__, "--model", args.model, "--precision", args.precision,
                             "--worker", f"infer:{size}:{heap}")
            rows.append([f"inference {size}x{size * 3 // 4} ({args.precision}), freed maps to the {heap}",
                         f"{r['peak_mib']:.0f}", f"{r['estimate'] / 2**20:.0f}",
                         "tiled" if r["tiled"] else "whole (banded)", f"{r['seconds']:.1f}"])
    if PHOTOS.is_dir() and args.train_steps > 0:
        for widths in ("16,32,64", "32,64,128"):
            r = C.run_worker(__file__, "--model", args.model, "--train-steps", str(args.train_steps),
                             "--worker", f"train:{widths}")
            rows.append([f"training, widths {widths}, batch 4, 256 px", f"{r['peak_mib']:.0f}", "", "",
                         f"{r['seconds']:.1f} ({args.train_steps} steps + set-up)"])
    print("# peak RSS of a fresh process (MiB)")
    print(C.table(rows, ["run", "peak RSS MiB", "estimate MiB", "plan", "seconds"]))


if __name__ == "__main__":
    main()
