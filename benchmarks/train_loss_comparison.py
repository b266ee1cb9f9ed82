"""Networks trained on the Gram objective and on the STROTSS objective, scored side by side in one run.

Trains two networks with the same photos, style, seed, steps, batch and crop — one with `--loss gram`,
one with `--loss strotss` — then scores both on held-out photos at 512 px with both objectives:
painterly's fp32 Gatys objective (content relu4_2 + Gram styles, default weights) and the STROTSS
objective at its final-scale weights (the same samples for both networks, averaged over seeds).
Also the content image itself as a reference, and a sheet content | Gram-trained | STROTSS-trained.

    python benchmarks/train_loss_comparison.py --steps 300 --crop 128 --sheet docs/models/loss_comparison.jpg
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import _common as C  # noqa: E402

SHARED = C.ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default=str(C.ROOT / "painterly" / "examples" / "starry_night.jpg"))
    ap.add_argument("--photos", default=str(SHARED / "photos"))
    ap.add_argument("--held-out", default=str(SHARED / "adain" / "content"))
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--sheet", default="")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    import painterly
    from painterly.features import FeatureExtractor
    from painterly.image import as_tensor, fit_long_side, resize
    from painterly.methods.gatys import GatysConfig, GatysEvaluator
    from painterly.methods.strotss import StrotssConfig, StrotssObjective

    style = as_tensor(args.style)
    common = dict(steps=args.steps, crop=args.crop, batch=args.batch, widths=(16, 32, 64), style_size=2 * args.crop,
                  seed=0, preview_every=10**6, threads=args.threads)
    recipes = {"gram": dict(loss="gram", content_weight=0.5, tv_weight=3e4),
               "strotss": dict(loss="strotss", tv_weight=0.1)}
    tmp = Path(tempfile.mkdtemp())
    models, train_s = {}, {}
    for name, recipe in recipes.items():
        t = time.perf_counter()
        painterly.train([style], args.photos, tmp / f"{name}.safetensors", painterly.TrainConfig(**common, **recipe),
                        style_names=["style"])
        train_s[name] = time.perf_counter() - t
        models[name] = tmp / f"{name}.safetensors"
    gatys = GatysConfig(precision="fp32")
    vgg = FeatureExtractor.vgg19(last_layer="relu5_4", precision="fp32")
    strotss = StrotssConfig(precision="fp32")
    strotss_vgg = FeatureExtractor.vgg19(pooling="max", last_layer="relu5_3", precision="fp32")
    alpha = strotss.content_weight / 2 ** ((strotss.scales or 1) - 1)
    photos = sorted(p for p in Path(args.held_out).iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.count]
    rows, sheet = [], []
    for photo in photos:
        content = as_tensor(photo)
        content = resize(content, fit_long_side(*content.shape[-2:], args.size))
        images = {"content": content}
        images.update({name: as_tensor(painterly.stylize(content, model=str(path), size=args.size))
                       for name, path in models.items()})
        gram_score = GatysEvaluator(vgg, gatys, content, [style])
        style_k = resize(style, fit_long_side(*style.shape[-2:], args.size))
        for name, image in images.items():
            strotss_totals = []
            for seed in range(3):
                objective = StrotssObjective(strotss_vgg, strotss, content, [style_k], alpha,
                                             torch.Generator().manual_seed(seed))
                with torch.no_grad():
                    strotss_totals.append(objective(image).floats()["total"])
            g = gram_score(image).floats()
            rows.append([photo.name, name, f"{g['content']:.4g}", f"{g['style']:.4g}", f"{g['total']:.4g}",
                         f"{statistics.mean(strotss_totals):.4f}"])
        sheet.append(painterly.side_by_side([painterly.tensor_to_pil(images[k]) for k in ("content", "gram", "strotss")],
                                            [photo.name, "trained on Gram", "trained on STROTSS"], height=256))
    print(f"# {args.steps} steps, batch {args.batch}, {args.crop} px crops, slim widths; training s: "
          + ", ".join(f"{k} {v:.0f}" for k, v in train_s.items()) + f"; scored at {args.size} px")
    print(C.table(rows, ["photo", "image", "Gatys content", "Gatys style", "Gatys total", "STROTSS objective"]))
    if args.sheet:
        C.save_sheet(sheet, args.sheet)


if __name__ == "__main__":
    main()
