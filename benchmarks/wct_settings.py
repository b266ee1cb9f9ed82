"""WCT's levels and strength (and AdaIN beside them) over every held-out photo and painting, in one run.

The two pairs of benchmarks/arbitrary.py are too few to choose a default from: a setting that helps
one painting hurts another. This scores each setting on all 8 photos of ../shared/data/adain/content
with the 5 paintings of ../shared/data/classic/style (Matisse's Woman with a Hat is one of the
training paintings of the AdaIN decoder and of WCT's relu4_1 decoder, which meets coloured features in
training; the other four are held out from every decoder), at 512 px,
with painterly's fp32 Gatys objective: the style loss as a fraction of the plain photo's (target <= 0.2)
and the content loss as a fraction of the style image's (target <= 0.8). It prints one row per pair
and a summary per setting (mean by painting, mean and worst over all pairs, pairs meeting the target).

    python benchmarks/wct_settings.py --settings "relu4_1,relu3_1,relu2_1,relu1_1@0.6;relu4_1,relu3_1,relu2_1@0.8"
    python benchmarks/wct_settings.py --settings "" --adain-decoders bundled,out/adain_wider.safetensors
    python benchmarks/wct_settings.py --settings "" --adain-color-match 0,0.5
    python benchmarks/wct_settings.py --settings "relu4_1,relu3_1,relu2_1,relu1_1@0.6" --precisions fp32,int8
    python benchmarks/wct_settings.py --paintings the_scream.jpg --settings \
        "relu4_1,relu2_1,relu4_1@1@out/d.safetensors,painterly/models/decoders/wct_relu2_1.safetensors,out/d.safetensors"
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402

SHARED = C.ROOT.parent / "shared" / "data"
PAINTINGS = ("the_scream.jpg", "shipwreck.jpg", "composition_vii.jpg", "starry_night.jpg", "woman-with-hat-matisse.jpg")
SETTINGS = ("relu4_1,relu3_1,relu2_1,relu1_1@0.6;relu4_1,relu3_1,relu2_1@0.6;relu4_1,relu3_1,relu2_1@0.8;"
            "relu4_1,relu3_1@0.8;relu4_1@1;relu4_1,relu3_1@1;relu4_1,relu3_1,relu2_1@1;"
            "relu4_1,relu3_1,relu2_1,relu1_1@0.8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default=SETTINGS, help="';'-separated LEVELS@STRENGTH[@DECODERS], levels coarse "
                    "to fine; DECODERS a file per level (default: the bundled ones)")
    ap.add_argument("--paintings", default=",".join(PAINTINGS), help="a comma-separated subset of the five")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--adain-decoders", default="bundled", help="AdaIN decoder files, comma-separated, a row each "
                    "('bundled' for the bundled one, '' for none)")
    ap.add_argument("--wct-color-match", default="0", help="WCT's colour step, comma-separated: a row each with "
                    "every setting [0, the default]")
    ap.add_argument("--adain-color-match", default="0.5", help="AdaIN's colour step, comma-separated: a row each "
                    "with every decoder (0: the paper's AdaIN) [0.5, the default]")
    ap.add_argument("--precisions", default="auto", help="comma-separated precisions, a row each with every "
                    "setting (auto, fp32, int8: the encoder in int8 where auto picks it)")
    args = ap.parse_args()
    import painterly
    from painterly.features import FeatureExtractor
    from painterly.image import as_tensor, fit_long_side, resize
    from painterly.methods.gatys import GatysConfig, GatysEvaluator

    paintings = args.paintings.split(",")
    runs = {}
    for setting in filter(None, args.settings.split(";")):
        levels, strength, *decoders = setting.split("@")
        options = {"levels": tuple(levels.split(",")), "strength": float(strength)}
        name = f"WCT {levels} @{strength}"
        if decoders:
            options["decoders"] = tuple(decoders[0].split(","))
            name += f" ({','.join(dict.fromkeys(Path(d).stem for d in options['decoders']))})"
        for match in args.wct_color_match.split(","):
            runs[name + (f" colour {match}" if match != "0" else "")] = ("wct", {**options, "color_match": float(match)})
    for decoder in filter(None, args.adain_decoders.split(",")):
        for match in args.adain_color_match.split(","):
            runs[f"AdaIN {Path(decoder).stem} colour {match}"] = (
                "adain", {"color_match": float(match), **({} if decoder == "bundled" else {"decoder": decoder})})
    precisions = args.precisions.split(",")
    if precisions != ["auto"]:
        runs = {f"{name} {p}": (method, {**options, "precision": p}) for name, (method, options) in runs.items()
                for p in precisions}
    config = GatysConfig(precision="fp32")
    vgg = FeatureExtractor.vgg19(last_layer=config.layers[-1], precision="fp32")
    scores: dict[str, dict[tuple[str, str], tuple[float, float]]] = {name: {} for name in runs}
    rows = []
    for painting in paintings:
        style = as_tensor(SHARED / "classic" / "style" / painting)
        for photo in sorted((SHARED / "adain" / "content").glob("*.jpg")):
            content = as_tensor(photo)
            content = resize(content, fit_long_side(*content.shape[-2:], args.size))
            evaluate = GatysEvaluator(vgg, config, content, [style])
            plain_style = evaluate(content).floats()["style"]
            plain_content = evaluate(resize(style, tuple(content.shape[-2:]))).floats()["content"]
            for name, (method, options) in runs.items():
                out = as_tensor(painterly.stylize(content, style, method=method, size=args.size, **options))
                s = evaluate(out).floats()
                scores[name][photo.stem, Path(painting).stem] = (s["style"] / plain_style, s["content"] / plain_content)
                rows.append([photo.stem, Path(painting).stem, name, *(f"{v:.3f}" for v in scores[name][
                    photo.stem, Path(painting).stem])])
    print(f"# {args.size} px, painterly's fp32 Gatys objective")
    print(C.table(rows, ["photo", "painting", "setting", "style / photo's", "content / style's"]))
    summary = []
    for name, by_pair in scores.items():
        styles = [v[0] for v in by_pair.values()]
        contents = [v[1] for v in by_pair.values()]
        per_painting = [statistics.mean(v[0] for k, v in by_pair.items() if k[1] == Path(p).stem) for p in paintings]
        summary.append([name, *(f"{m:.3f}" for m in per_painting), f"{statistics.mean(styles):.3f}",
                        f"{max(styles):.3f}", f"{max(contents):.3f}",
                        f"{sum(s <= 0.2 and c <= 0.8 for s, c in zip(styles, contents))}/{len(styles)}"])
    print(C.table(summary, ["setting", *(Path(p).stem for p in paintings), "style mean", "style worst",
                            "content worst", "both targets"]))


if __name__ == "__main__":
    main()
