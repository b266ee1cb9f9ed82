"""AdaIN and WCT against Gatys, side by side in one run, on content and style images not used in training.

For each (content, style) pair at 512 px, one fp32 evaluator (painterly's default Gatys objective)
scores the content image itself, the style image (resized to the content), AdaIN at strength 1 (and
0), WCT at its defaults, and Gatys (single-scale L-BFGS from the content). Reported: each one's style
loss as a fraction of the plain content image's (target <= 0.2 for AdaIN and WCT) and its content loss
as a fraction of the style image's (target <= 0.8); then the time at 1024x1024 of AdaIN and WCT
against the Gatys run of comparable style loss. A sheet content | style | AdaIN | WCT | Gatys is saved.

    python benchmarks/arbitrary.py --pairs chicago.jpg:the_scream.jpg,golden_gate.jpg:shipwreck.jpg \\
        --sheet docs/arbitrary_samples.jpg
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import _common as C  # noqa: E402

SHARED = C.ROOT.parent / "shared" / "data"
CONTENTS, STYLES = SHARED / "adain" / "content", SHARED / "classic" / "style"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="chicago.jpg:the_scream.jpg,golden_gate.jpg:shipwreck.jpg")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--gatys-iterations", type=int, default=50)
    ap.add_argument("--sheet", default="docs/arbitrary_samples.jpg")
    ap.add_argument("--adain-decoder", default="", help="AdaIN decoder file(s), comma-separated for rows each "
                                                        "(default: the bundled one)")
    ap.add_argument("--wct-levels", default="", help="comma-separated, coarse to fine (default: the bundled ones); "
                    "several sets separated by ';' for a row each")
    ap.add_argument("--wct-decoders", default="", help="comma-separated, one per --wct-levels level ('' for the "
                    "bundled ones); ';' between sets, as in --wct-levels")
    args = ap.parse_args()
    import painterly
    from painterly.driver import run
    from painterly.features import FeatureExtractor
    from painterly.image import as_tensor, fit_long_side, resize
    from painterly.methods.gatys import GatysConfig, GatysEvaluator

    adains = [(f" ({Path(d).stem})" if "," in args.adain_decoder else "", {"decoder": d})
              for d in args.adain_decoder.split(",")] if args.adain_decoder else [("", {})]
    level_sets = args.wct_levels.split(";")
    decoder_sets = args.wct_decoders.split(";") if args.wct_decoders else [""] * len(level_sets)
    wcts = []
    for k, (levels, decoders) in enumerate(zip(level_sets, decoder_sets)):
        options = {"levels": tuple(levels.split(","))} if levels else {}
        if decoders:
            options["decoders"] = tuple(decoders.split(","))
        name = "WCT" if len(level_sets) == 1 else f"WCT {k + 1}"
        wcts.append((name, "wct", options))
        if len(level_sets) > 1:
            print(f"# {name}: levels {levels or 'bundled'}; decoders {decoders or 'bundled'}")
    config = GatysConfig(precision="fp32")
    vgg = FeatureExtractor.vgg19(last_layer=config.layers[-1], precision="fp32")
    rows, sheet, times = [], [], {"Gatys": []}
    runs = [run for suffix, adain in adains for run in (
        (f"AdaIN{suffix}", "adain", adain), (f"AdaIN a=0{suffix}", "adain", {**adain, "strength": 0.0}))]
    runs.extend(wcts)
    available = []
    for name, method, options in runs:  # a method without its decoders is reported, not run
        try:
            painterly.stylize(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), method=method, size=32, **options)
            available.append((name, method, options))
        except painterly.PainterlyError as exc:
            print(f"# {name}: skipped ({exc})")
    for pair in args.pairs.split(","):
        content_name, style_name = pair.split(":")
        content = as_tensor(CONTENTS / content_name)
        content = resize(content, fit_long_side(*content.shape[-2:], args.size))
        style = as_tensor(STYLES / style_name)
        evaluate = GatysEvaluator(vgg, config, content, [style])
        outputs = {"content": content, "style": resize(style, tuple(content.shape[-2:]))}
        for name, method, options in available:
            t = time.perf_counter()
            outputs[name] = as_tensor(painterly.stylize(content, style, method=method, size=args.size, **options))
            times.setdefault(name, []).append(time.perf_counter() - t)
        t = time.perf_counter()
        outputs["Gatys"] = run(content, [style], GatysConfig(size=args.size, iterations=args.gatys_iterations,
                                                             scales=1, seed=0))
        times["Gatys"].append(time.perf_counter() - t)
        scores = {k: evaluate(v).floats() for k, v in outputs.items()}
        base_style, base_content = scores["content"]["style"], scores["style"]["content"]
        for name, s in scores.items():
            rows.append([pair, name, f"{s['style']:.4g}", f"{s['style'] / base_style:.3f}",
                         f"{s['content']:.4g}", f"{s['content'] / base_content:.3f}"])
        shown = [k for k in ("content", "style", f"AdaIN{adains[-1][0]}", wcts[-1][0], "Gatys") if k in outputs]
        labels = {"content": content_name, "style": style_name, "Gatys": f"Gatys {args.gatys_iterations} it"}
        sheet.append(painterly.side_by_side([painterly.tensor_to_pil(outputs[k]) for k in shown],
                                            [labels.get(k, k) for k in shown], height=256))
    print(f"# {args.size} px, painterly's fp32 Gatys objective; {torch.get_num_threads()} threads")
    print(C.table(rows, ["pair", "image", "style loss", "/ content's", "content loss", "/ style's"]))
    big = torch.rand(1, 3, 1024, 1024)
    for name, method, options in available:
        if " a=0" in name:
            continue
        painterly.stylize(big, big, method=method, size=1024, **options)  # warm
        t = time.perf_counter()
        painterly.stylize(big, big, method=method, size=1024, **options)
        print(f"# {name} at 1024x1024: {time.perf_counter() - t:.2f} s")
    print(f"# Gatys, {args.gatys_iterations} L-BFGS iterations at {args.size} px: "
          f"{sum(times['Gatys']) / len(times['Gatys']):.1f} s")
    if args.sheet:
        C.save_sheet(sheet, args.sheet)


if __name__ == "__main__":
    main()
