"""A trained network against Gatys optimisation, side by side in one run, on photos not used in training.

For each held-out photo at 512 px: the network's output and single-scale L-BFGS Gatys runs of a few
iteration counts from the content, all scored by one fp32 evaluator (painterly's default Gatys
objective: relu4_2 content + Gram styles at the default weights). The L-BFGS runs are in fp32 on every
machine: until session 19 they ran in the default precision, which was bf16 on the avx512_bf16 CPUs of
sessions 4-15, and L-BFGS through a bf16 VGG reached a higher fp32 objective in 20 iterations (a weaker
reference than the fp32 runs of the later Xeon). With --refine, also L-BFGS runs started from the first
model's picture instead of the photo (what `painterly PHOTO STYLE --init NETWORK_OUTPUT.png` does). Then the
network's time at 1024 px against the Gatys run whose quality it matches.

    python benchmarks/feedforward.py --model painterly/models/starry_night.safetensors \\
        --style painterly/examples/starry_night.jpg --photos ../shared/data/adain/content --count 2
    python benchmarks/feedforward.py --model four_paintings --style-weights 0,1,0,0 \\
        --style ../shared/data/classic/style/the_scream.jpg --photos ../shared/data/adain/content --count 8
    python benchmarks/feedforward.py --model starry_night --precisions fp32,int8 \\
        --style painterly/examples/starry_night.jpg --photos ../shared/data/adain/content --count 8 --iterations 20
    python benchmarks/feedforward.py --model starry_night --iterations 20 --refine 5,10 \
        --style painterly/examples/starry_night.jpg --photos ../shared/data/adain/content --count 8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import _common as C  # noqa: E402


def score(evaluate, image: torch.Tensor) -> tuple[float, str]:
    """(the objective, 'content / style') of one image."""
    loss = evaluate(image)
    return float(loss.total), " / ".join(f"{float(loss.terms[k]):.3g}" for k in ("content", "style"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model file or name; several, comma-separated, for a column each")
    ap.add_argument("--style", required=True)
    ap.add_argument("--style-weights", default="", help="for multi-style models: the mix to run, e.g. 0,1,0,0 "
                    "(the painting --style names)")
    ap.add_argument("--photos", required=True)
    ap.add_argument("--count", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iterations", default="10,20,50")
    ap.add_argument("--precisions", default="auto", help="comma-separated, a column each with every model "
                    "(auto, fp32, bf16, int8)")
    ap.add_argument("--terms", action="store_true", help="also a table of each score's content and style terms")
    ap.add_argument("--refine", default="", help="comma-separated L-BFGS iteration counts started from the first "
                    "model's picture, a column each")
    args = ap.parse_args()
    import painterly
    from painterly.driver import run
    from painterly.features import FeatureExtractor
    from painterly.image import as_tensor, fit_long_side, resize
    from painterly.methods.gatys import GatysConfig, GatysEvaluator

    config = GatysConfig(precision="fp32")
    vgg = FeatureExtractor.vgg19(last_layer=config.layers[-1], precision="fp32")
    style = as_tensor(args.style)
    photos = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.count]
    counts = [int(n) for n in args.iterations.split(",")]
    refines = [int(n) for n in args.refine.split(",")] if args.refine else []
    precisions = args.precisions.split(",")
    columns = [(Path(m).stem + ("" if precisions == ["auto"] else f" {p}"), m, p)
               for m in args.model.split(",") for p in precisions]
    mix = {"style_weights": tuple(float(w) for w in args.style_weights.split(","))} if args.style_weights else {}
    names = [name for name, _, _ in columns]
    rows, term_rows, gatys_seconds, refine_seconds = [], [], {n: [] for n in counts}, {}
    for photo in photos:
        content = as_tensor(photo)
        content = resize(content, fit_long_side(*content.shape[-2:], args.size))
        evaluate = GatysEvaluator(vgg, config, content, [style])
        scores, terms, net_seconds, outputs = {}, {}, [], []
        for name, model, precision in columns:
            t = time.perf_counter()
            net_out = as_tensor(painterly.stylize(content, method="network", model=model, size=args.size,
                                                  precision=precision, **mix))
            net_seconds.append(time.perf_counter() - t)
            outputs.append(net_out)
            scores[name], terms[name] = score(evaluate, net_out)
        for n in counts:
            t = time.perf_counter()
            out = run(content, [style], GatysConfig(size=args.size, iterations=n, scales=1, seed=0, precision="fp32"))
            gatys_seconds[n].append(time.perf_counter() - t)
            scores[f"L-BFGS {n}"], terms[f"L-BFGS {n}"] = score(evaluate, out)
        for n in refines:
            t = time.perf_counter()
            out = run(content, [style], GatysConfig(size=args.size, iterations=n, scales=1, seed=0, precision="fp32"),
                      init_image=outputs[0])
            refine_seconds.setdefault(n, []).append(time.perf_counter() - t)
            scores[f"{names[0]} + {n}"], terms[f"{names[0]} + {n}"] = score(evaluate, out)
        matches = []
        for name in names:
            matched = [n for n in counts if scores[name] <= scores[f"L-BFGS {n}"]]
            matches.append(f"{max(matched)}" if matched else f"< {counts[0]}")
        rows.append([photo.name, "/".join(f"{t:.2f}" for t in net_seconds)] + [f"{scores[k]:.4g}" for k in scores]
                    + ["/".join(matches)])
        term_rows.append([photo.name] + [terms[k] for k in terms])
    print(f"# {args.size} px, scored by painterly's fp32 Gatys objective (lower is better); {torch.get_num_threads()} threads")
    refined = [f"{names[0]} + {n}" for n in refines]
    print(C.table(rows, ["photo", "network s", *names, *[f"L-BFGS {n}" for n in counts], *refined,
                         "matches L-BFGS (" + "/".join(names) + ")"]))
    if refines:
        print(f"# {names[0]} + N: N L-BFGS iterations started from {names[0]}'s picture; " + ", ".join(
            f"{n} it {sum(v) / len(v):.1f} s" for n, v in refine_seconds.items()))
    if args.terms:
        print("# the same scores' terms, content / style")
        print(C.table(term_rows, ["photo", *names, *[f"L-BFGS {n}" for n in counts], *refined]))
    big = torch.rand(1, 3, 1024, 1024)
    gatys = ", ".join(f"{n} it {sum(v) / len(v):.1f} s" for n, v in gatys_seconds.items())
    for name, model, precision in columns:
        painterly.stylize(big, method="network", model=model, size=1024, precision=precision, **mix)
        t = time.perf_counter()
        painterly.stylize(big, method="network", model=model, size=1024, precision=precision, **mix)
        net_1024 = time.perf_counter() - t
        print(f"# 1024x1024 inference ({name}): {net_1024:.2f} s; Gatys at {args.size} px: {gatys} ("
              + ", ".join(f"{sum(v) / len(v) / net_1024:.0f}x" for v in gatys_seconds.values()) + " the network at 1024)")


if __name__ == "__main__":
    main()
