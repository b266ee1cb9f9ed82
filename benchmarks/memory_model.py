"""Predicted (schedule.estimate_peak_bytes) against measured peak RSS, one fresh process per size.

Single scale, 2 L-BFGS iterations per size (the estimate is asked for the same 2 iterations, so the
L-BFGS history term is small here; it is exact arithmetic, 2 x history x image floats).

    python benchmarks/memory_model.py                      # 256..2048 px, fp32 and bf16, ~5 min on 2 cores
    python benchmarks/memory_model.py --sizes 256,512 --precisions fp32 --history 120
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

ITERATIONS = 2


def worker(size: int, precision: str, iterations: int = ITERATIONS, method: str = "gatys") -> dict:
    import painterly.methods.gatys as gatys
    import painterly.methods.strotss as strotss
    from painterly.image import as_tensor

    folder = C.tmpdir()
    content, style, (h, w) = C.prepare_inputs(size, folder)
    module = gatys if method == "gatys" else strotss
    config = (module.GatysConfig if method == "gatys" else module.StrotssConfig)(
        size=size, iterations=iterations, scales=1, precision=precision, seed=0)
    times: list[float] = []
    last = [time.perf_counter()]

    def on_step(info) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    from painterly.driver import run

    run(as_tensor(content), [as_tensor(style)], config, callback=on_step)
    return {"size": size, "hw": [h, w], "precision": precision, "peak_mib": C.peak_rss_mib(), "method": method,
            "s_per_iter": times[-1], "iterations": iterations}


def predicted_mib(hw: tuple[int, int], precision: str, iterations: int = ITERATIONS, method: str = "gatys") -> float:
    import painterly

    recipe = painterly.get_method(method)
    model = recipe.memory(recipe.config_class(), [tuple(hw)], precision)
    return model.scale_bytes(tuple(hw), None, iterations) / 2**20


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="256,512,768,1024,1536,2048")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--history", type=int, default=0, metavar="N",
                   help="also measure 256 px with N iterations (checks the L-BFGS history term; N > 100 fills it)")
    p.add_argument("--method", choices=("gatys", "strotss"), default="gatys")
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help="steps per run (default 2 for gatys; 10 for strotss, whose peak grows over its first "
                        "steps: 2 read 80 MiB under the steady state at 512 px)")
    p.add_argument("--worker", nargs=4, metavar=("SIZE", "PRECISION", "ITERATIONS", "METHOD"), help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the raw measurements here")
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1], int(args.worker[2]), args.worker[3])))
        return
    rows, raw = [], []
    header = ["size", "precision", "iterations", "predicted MiB", "measured MiB", "error", "s/iter"]
    steps = args.iterations or (10 if args.method == "strotss" else ITERATIONS)
    runs = [(int(s), p, steps) for p in args.precisions.split(",") for s in args.sizes.split(",")]
    if args.history:
        runs += [(256, p, args.history) for p in args.precisions.split(",")]
    for size, precision, iterations in runs:
        r = C.run_worker(__file__, "--worker", str(size), precision, str(iterations), args.method)
        pred = predicted_mib(r["hw"], precision, iterations, args.method)
        err = 100 * (pred - r["peak_mib"]) / r["peak_mib"]
        raw.append(r)
        rows.append([f"{r['hw'][1]}x{r['hw'][0]}", precision, iterations, f"{pred:.0f}", f"{r['peak_mib']:.0f}",
                     f"{err:+.1f}%", f"{r['s_per_iter']:.2f}"])
        print(C.table(rows[-1:], header).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"# {args.method}: peak RSS, single scale, fresh process per row; s/iter = the last iteration's wall time")
    print(C.table(rows, header))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
