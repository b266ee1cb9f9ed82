"""A trained model's card: what it was trained on and how long, its final losses, and sample outputs
on held-out photos (a side-by-side sheet saved beside the card).

    python benchmarks/model_card.py painterly/models/starry_night.safetensors \\
        --photos ../shared/data/adain/content --count 3 --out docs/models
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--photos", required=True, help="held-out photos (not among the training ones)")
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--out", default="docs/models")
    args = ap.parse_args()
    import painterly
    from PIL import Image

    _, meta = painterly.load_model(args.model)
    name = Path(args.model).stem
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.count]
    styles = meta["styles"]
    rows = []
    for photo in photos:
        content = Image.open(photo).convert("RGB")
        content.thumbnail((args.size, args.size))
        images, labels = [content], [photo.name]
        # one style: its picture; several: each style alone, then the first two mixed half and half
        mixes = [None] if len(styles) == 1 else [tuple(float(i == k) for i in range(len(styles)))
                                                  for k in range(len(styles))] + [(0.5, 0.5) + (0.0,) * (len(styles) - 2)]
        for weights in mixes:
            images.append(painterly.stylize(photo, model=args.model, size=args.size, style_weights=weights))
            labels.append(styles[0] if weights is None else styles[weights.index(1.0)] if 1.0 in weights else
                          " + ".join(f"{w:g} {n}" for w, n in zip(weights, styles) if w))
        rows.append(painterly.side_by_side(images, labels, height=192))
    sheet = out / f"{name}_samples.jpg"
    C.stack(rows).save(sheet, quality=85)
    t = meta["training"]
    from painterly.training_losses import DEFAULT_WEIGHTS

    loss = t.get("loss", "gram")
    weights = [DEFAULT_WEIGHTS[loss][i] if t[k] is None else t[k] for i, k in enumerate(("content_weight", "style_weight"))]
    layers = (f"content weight {weights[0]} at {', '.join(t['content_layers'])}, style weight {weights[1]} at "
              f"{', '.join(t['style_layers'])}" if loss == "gram" else
              f"the STROTSS objective, content weight (alpha) {weights[0]}, style weight {weights[1]}")
    losses = ", ".join(f"{k} {v:.4g}" for k, v in meta.get("losses", {}).items())
    print(f"""## {name}

- Styles: {', '.join(meta['styles'])}. Architecture: widths {'/'.join(map(str, meta['architecture']['widths']))},
  {meta['architecture']['residual_blocks']} residual blocks; {Path(args.model).stat().st_size / 2**20:.2f} MB (fp16 safetensors).
- Data: {t['photos']} photos ({t['skipped']} unreadable skipped), {t['crop']} px crops, batch {t['batch']},
  scale jitter {t['scale_jitter']}, flips; style read at {t['style_size']} px.
- Training: {t['steps_done']} of {t['steps']} steps in {t['wall_s']:.0f} s on {platform.processor() or platform.machine()}
  ({'max-time ' + str(t['max_time']) + ' s' if t.get('max_time') else 'no time limit'}), Adam lr {t['learning_rate']},
  {layers}, TV weight {t['tv_weight']}, seed {t['seed']}.
- Final losses (last batch): {losses}.
- Samples on held-out photos ({args.photos}): `{sheet}`.""")


if __name__ == "__main__":
    main()
