"""Forward-pass speed of this tree against an earlier revision, side by side in one run.

Each method stylises a random 1024x1024 image (the speed targets' size) in a fresh process per tree,
the two trees taking turns so both see the same machine; a process warms up once, then its best of
`--runs` timed calls is taken, and the table gives each tree's best over `--rounds` processes.

    python benchmarks/inference_speed.py --baseline c98ce94
    python benchmarks/inference_speed.py --baseline HEAD~1 --methods network --size 4096
    python benchmarks/inference_speed.py --baseline HEAD~1 --methods adain,wct --size 2048 --tile-size 1024
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

STYLE = C.ROOT / "painterly" / "examples" / "starry_night.jpg"


def worker(method: str, size: int, runs: int, precision: str, tile_size: int | None) -> dict:
    import torch

    import painterly

    torch.manual_seed(0)
    content = torch.rand(1, 3, size, size)
    kwargs = {"model": "starry_night"} if method == "network" else {}
    kwargs["precision"] = precision
    kwargs["tile_size"] = tile_size
    styles = [] if method == "network" else [str(STYLE)]
    painterly.stylize(content, styles, method=method, size=size, **kwargs)
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        painterly.stylize(content, styles, method=method, size=size, **kwargs)
        seconds.append(time.perf_counter() - t)
    return {"seconds": min(seconds), "peak_mib": C.peak_rss_mib()}


def run_in(tree: Path, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="git revision to compare with")
    ap.add_argument("--methods", default="network,adain,wct")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3, help="timed calls per process")
    ap.add_argument("--rounds", type=int, default=2, help="processes per tree and method")
    ap.add_argument("--precision", default="auto", help="for both trees (auto: each tree's default)")
    ap.add_argument("--tile-size", type=int, help="tiles of at most this many px (default: tiles only where the "
                    "picture does not fit whole)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.size, args.runs, args.precision, args.tile_size)))
        return
    if not args.baseline:
        ap.error("--baseline REV is needed")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(C.ROOT), "worktree", "add", "--detach", "-q", str(base), args.baseline], check=True)
        try:
            rows = []
            for method in args.methods.split(","):
                best: dict[str, dict] = {}
                for _ in range(args.rounds):
                    for name, tree in (("baseline", base), ("this tree", C.ROOT)):
                        tiles = ["--tile-size", str(args.tile_size)] if args.tile_size is not None else []
                        r = run_in(tree, "--worker", method, "--size", str(args.size), "--runs", str(args.runs),
                                   "--precision", args.precision, *tiles)
                        if name not in best or r["seconds"] < best[name]["seconds"]:
                            best[name] = r
                b, t = best["baseline"], best["this tree"]
                rows.append([method, f"{b['seconds']:.2f}", f"{t['seconds']:.2f}", f"{t['seconds'] / b['seconds']:.2f}x",
                             f"{b['peak_mib']:.0f}", f"{t['peak_mib']:.0f}"])
        finally:
            subprocess.run(["git", "-C", str(C.ROOT), "worktree", "remove", "--force", str(base)], check=False)
    tiles = f", tiles of at most {args.tile_size} px" if args.tile_size is not None else ""
    print(f"# {args.size}x{args.size}{tiles}, precision {args.precision}, best of {args.runs} calls x {args.rounds} processes; "
          f"baseline {args.baseline}; fp32 peak {C.fp32_peak_gflops():.0f} GFLOP/s")
    print(C.table(rows, ["method", "baseline s", "this tree s", "ratio", "baseline peak MiB", "this tree peak MiB"]))


if __name__ == "__main__":
    main()
