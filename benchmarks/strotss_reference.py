"""painterly's STROTSS against the authors' reference output, scored by one STROTSS objective.

Runs painterly STROTSS on the STROTSS repository's example (content_im.jpg + style_im.jpg) at the
reference size (reference_output/output.png is 512x341), then scores painterly's output, the reference
output and, as baselines, the content image itself, with the SAME objective: the final scale's
STROTSS terms on the same sampled positions (one fixed sampling seed per row of the average, shared by
every image). Prints a table (mean +- std over the seeds), wall time per scale, and saves a
content | style | reference | painterly sheet under benchmarks/results/.

    python benchmarks/strotss_reference.py                    # full size: 4 scales x 250 iterations (slow on CPU)
    python benchmarks/strotss_reference.py --size 128 --scales 2 --iterations 20   # a quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from painterly.features import FeatureExtractor  # noqa: E402
from painterly.figures import side_by_side  # noqa: E402
from painterly.image import as_tensor, fit_long_side, resize, save_image, tensor_to_pil  # noqa: E402
from painterly.driver import run  # noqa: E402
from painterly.methods.strotss import StrotssConfig, StrotssObjective  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "strotss"
TERMS = ("content", "style", "moments", "palette", "total")


def score(images: dict[str, torch.Tensor], content: torch.Tensor, style: torch.Tensor, config: StrotssConfig,
          extractor: FeatureExtractor, seeds: list[int]) -> dict[str, dict[str, list[float]]]:
    """Every image scored on the same samples per seed: the final scale's weighted STROTSS terms."""
    alpha = config.content_weight / 2 ** ((config.scales or 1) - 1)
    size = tuple(content.shape[-2:])
    style_k = resize(style, fit_long_side(*style.shape[-2:], max(size)))
    out: dict[str, dict[str, list[float]]] = {name: {t: [] for t in TERMS} for name in images}
    for seed in seeds:
        for name, image in images.items():
            objective = StrotssObjective(extractor, config, content, [style_k], alpha, torch.Generator().manual_seed(seed))
            with torch.no_grad():
                values = objective(resize(image, size)).floats()
            for t in TERMS:
                out[name][t].append(values[t])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="long side of the output [512, the reference's]")
    p.add_argument("--scales", type=int, default=4)
    p.add_argument("--iterations", type=int, default=250, help="per scale")
    p.add_argument("--seed", type=int, default=0, help="painterly's run seed")
    p.add_argument("--score-seeds", type=int, default=3, help="sampling seeds the scores are averaged over")
    p.add_argument("--precision", default="auto")
    p.add_argument("--content-weight", type=float, default=StrotssConfig().content_weight,
                   help="STROTSS alpha at the coarsest scale [16, the original's]")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()

    torch.set_num_threads(torch.get_num_threads())
    content = as_tensor(DATA / "content_im.jpg")
    style = as_tensor(DATA / "style_im.jpg")
    reference = as_tensor(DATA / "reference_output" / "output.png")
    config = StrotssConfig(size=args.size, scales=args.scales, iterations=args.iterations, seed=args.seed,
                           precision=args.precision, content_weight=args.content_weight)

    scale_times: dict[int, list[float]] = {}

    def on_step(info) -> None:
        scale_times.setdefault(info.scale, [info.size, 0.0, 0, info.elapsed])
        rec = scale_times[info.scale]
        rec[1] = info.elapsed
        rec[2] += 1

    t0 = time.perf_counter()
    result = run(content, [style], config, callback=on_step)
    wall = time.perf_counter() - t0

    final = tuple(result.shape[-2:])
    content_k = resize(content, final)
    extractor = FeatureExtractor.vgg19(pooling=config.pooling, last_layer=config.sorted_layers[-1], precision="fp32")
    images = {"painterly": result, "reference": reference, "content image": content_k}
    scores = score(images, content_k, style, config, extractor, list(range(args.score_seeds)))

    print(f"STROTSS objective at {final[1]}x{final[0]} (final scale, alpha = "
          f"{config.content_weight / 2 ** ((config.scales or 1) - 1):g}), mean +- std over {args.score_seeds} sampling seeds")
    print(f"{'image':<14}" + "".join(f"{t:>18}" for t in TERMS))
    for name, values in scores.items():
        cells = []
        for t in TERMS:
            v = values[t]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):>10.4f} +-{sd:6.4f}")
        print(f"{name:<14}" + "".join(f"{c:>18}" for c in cells))
    ratio = statistics.mean(scores["painterly"]["total"]) / statistics.mean(scores["reference"]["total"])
    print(f"painterly / reference total: {ratio:.3f}")
    print(f"reference image {reference.shape[-1]}x{reference.shape[-2]}"
          + (" (resized to the output size for scoring)" if tuple(reference.shape[-2:]) != final else ""))

    print("\nwall time per scale")
    previous = 0.0
    for k in sorted(scale_times):
        (h, w), end, steps, _ = scale_times[k]
        took = end - previous
        print(f"  scale {k + 1}: {w}x{h}, {steps} iterations, {took:.1f} s ({took / max(steps, 1):.3f} s/iteration)")
        previous = end
    print(f"  total: {wall:.1f} s, {torch.get_num_threads()} threads")

    args.out.mkdir(parents=True, exist_ok=True)
    sheet = side_by_side([tensor_to_pil(content), tensor_to_pil(style), tensor_to_pil(reference),
                          tensor_to_pil(result)], ["content", "style", "reference (authors)", "painterly"],
                         height=min(341, max(128, final[0])))
    path = args.out / f"strotss_reference_{final[1]}x{final[0]}_cw{args.content_weight:g}.png"
    save_image(sheet, path)
    save_image(tensor_to_pil(result), args.out / f"strotss_painterly_{final[1]}x{final[0]}.png")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
