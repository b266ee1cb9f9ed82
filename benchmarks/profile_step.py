"""Where one optimisation step's time goes: torch profiler over a few Gatys (or STROTSS) steps,
grouped into convolutions forward/backward, Gram and other matrix products, ReLU, pooling,
elementwise, copies and the optimiser, as seconds per step, GFLOP/s of the convolutions and share
of the step. Compare with the machine's fp32 peak (../shared/tools/fma_peak.sh).

    python benchmarks/profile_step.py --size 512 --precision fp32
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import _common as C  # noqa: E402

GROUPS = [  # (group, substrings of aten op names), first match wins
    ("conv forward", ("mkldnn_convolution", "_convolution", "conv2d")),
    ("conv backward", ("convolution_backward",)),
    ("matmul (Gram, STROTSS)", ("mm", "bmm", "matmul", "addmm", "baddbmm")),
    ("ReLU fwd+bwd", ("threshold_backward", "relu", "clamp_min")),
    ("pooling fwd+bwd", ("pool",)),
    ("copies / layout", ("copy_", "to_copy", "contiguous", "clone", "cat")),
    ("elementwise", ("mul", "add", "sub", "div", "pow", "sum", "mean", "neg", "sqrt", "where", "fill", "zero")),
]


def group_of(name: str) -> str:
    op = name.split("::")[-1]
    for group, keys in GROUPS:
        if any(k == op or k in op for k in keys):
            return group
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--method", default="gatys")
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    import painterly
    from painterly.driver import run
    from painterly.image import as_tensor
    from painterly.schedule import vgg_flops

    folder = C.tmpdir()
    content, style, (h, w) = C.prepare_inputs(args.size, folder)
    recipe = painterly.get_method(args.method)
    config = painterly.make_config(args.method, size=args.size, iterations=args.steps + 2, scales=1,
                                   precision=args.precision, seed=0)
    prof = profile(activities=[ProfilerActivity.CPU])
    wall = []

    def on_step(info) -> None:
        import time

        wall.append(time.perf_counter())
        if info.iteration == 2:
            prof.start()

    run(as_tensor(content), [as_tensor(style)], config, callback=on_step)
    prof.stop()
    per_step = (wall[-1] - wall[1]) / (len(wall) - 2)
    totals: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith("aten::"):
            totals[group_of(event.key)] += event.self_cpu_time_total / 1e6 / args.steps
    flops = vgg_flops((h, w), recipe.layers(config))
    peak = C.fp32_peak_gflops()
    conv = totals["conv forward"] + totals["conv backward"]
    print(f"# {args.method} {args.precision}, {w}x{h}, {torch.get_num_threads()} threads: {per_step:.3f} s/step, "
          f"VGG {flops / 1e9:.0f} GFLOP/step = {flops / per_step / 1e9:.0f} GFLOP/s "
          f"({100 * flops / per_step / 1e9 / peak:.0f}% of the {peak:.0f} GFLOP/s fp32 peak); "
          f"convolutions alone {flops / conv / 1e9:.0f} GFLOP/s")
    rows = [[g, f"{t:.3f}", f"{100 * t / per_step:.0f}%"] for g, t in sorted(totals.items(), key=lambda kv: -kv[1])]
    rows.append(["(python, optimiser bookkeeping, unattributed)", f"{per_step - sum(totals.values()):.3f}",
                 f"{100 * (per_step - sum(totals.values())) / per_step:.0f}%"])
    print(C.table(rows, ["group", "s/step", "of step"]))


if __name__ == "__main__":
    main()
