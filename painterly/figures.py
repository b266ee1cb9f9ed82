"""Pictures people would rather look at than read: side-by-side comparisons and loss curves.

Drawn with Pillow alone so the core install needs no plotting library.
"""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .errors import PainterlyError

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def side_by_side(images: Sequence[Image.Image], labels: Sequence[str], height: int = 384,
                 gap: int = 8) -> Image.Image:
    """Images scaled to one height, left to right, each with a caption underneath."""
    if len(images) != len(labels) or not images:
        raise PainterlyError(f"side_by_side takes one label per image: {len(images)} image(s), {len(labels)} label(s)")
    font = ImageFont.load_default()
    scaled = [im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS)
              for im in images]
    caption = 22
    width = sum(im.width for im in scaled) + gap * (len(scaled) + 1)
    sheet = Image.new("RGB", (width, height + caption + 2 * gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = gap
    for im, label in zip(scaled, labels):
        sheet.paste(im, (x, gap))
        draw.text((x + 4, height + gap + 5), label, fill=(0, 0, 0), font=font)
        x += im.width + gap
    return sheet


PREVIEWS_SHOWN = 6  # a training's preview sheet: its latest validation renders


def preview_sheet(previews: Sequence[tuple[int, Image.Image]], styles: Sequence[str] = ()) -> Image.Image:
    """A training's latest validation renders, (step, render) each: left to right, or for a network of
    several `styles` (whose render is the photo in each style, left to right) a row a step with a
    labelled column a style, so the sheet neither grows ever wider nor leaves the styles unnamed."""
    shown = list(previews)[-PREVIEWS_SHOWN:]
    if len(styles) < 2:
        return side_by_side([image for _, image in shown], [f"step {step}" for step, _ in shown], height=192)
    rows = []
    for step, image in shown:
        width = image.width // len(styles)
        parts = [image.crop((i * width, 0, (i + 1) * width, image.height)) for i in range(len(styles))]
        rows.append(side_by_side(parts, [f"step {step}: {name}" for name in styles], height=192))
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), (255, 255, 255))
    for i, row in enumerate(rows):
        sheet.paste(row, (0, sum(r.height for r in rows[:i])))
    return sheet


# Above this many points a term's curve is drawn as its running mean over len // SMOOTHED_POINTS steps (geometric,
# as the axis is logarithmic) above its raw values: minibatch losses swing 2-3x from step to step and hide the trend.
SMOOTHED_POINTS = 40


def running_mean(values: Sequence[float], window: int) -> list[float]:
    """The mean of every run of `window` consecutive values (len - window + 1 of them)."""
    total = sum(values[:window])
    out = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        out.append(total / window)
    return out


def loss_curve(records: Sequence[dict], size: tuple[int, int] = (800, 480)) -> Image.Image:
    """Log-scale plot of every loss term over steps, with scale changes marked by dashed lines (a long,
    noisy series smoothed: SMOOTHED_POINTS)."""
    width, height = size
    left, right, top, bottom = 70, 150, 20, 40
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    skip = {"step", "scale", "iteration", "size", "elapsed"}
    names = [k for k in (records[0] if records else {}) if k not in skip]
    values = [math.log10(r[n]) for r in records for n in names if r.get(n) and r[n] > 0 and math.isfinite(r[n])]
    if not records or not values:
        draw.text((left, top), "no loss values", fill=(0, 0, 0), font=font)
        return img
    lo, hi = math.floor(min(values)), math.ceil(max(values))
    hi = hi if hi > lo else lo + 1
    steps = [r["step"] for r in records]
    s0, s1 = min(steps), max(max(steps), min(steps) + 1)
    pw, ph = width - left - right, height - top - bottom

    def xy(step: float, logv: float) -> tuple[float, float]:
        return left + (step - s0) / (s1 - s0) * pw, top + (hi - logv) / (hi - lo) * ph

    def _dashed_line(points: Sequence[tuple[float, float]], fill: tuple[int, int, int], width: int,
                     dash: float = 6.0, gap: float = 4.0) -> None:
        """A polyline drawn `dash` px on, `gap` px off, the pattern running on across its corners."""
        travelled = 0.0
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            length = math.hypot(x1 - x0, y1 - y0)
            at = 0.0
            while at < length:
                phase = travelled % (dash + gap)
                run = min((dash - phase) if phase < dash else (dash + gap - phase), length - at)
                if phase < dash and run > 0:
                    a, b = at / length, (at + run) / length
                    draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                              fill=fill, width=width)
                at += max(run, 1e-6)
                travelled += max(run, 1e-6)

    draw.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    for e in range(lo, hi + 1):
        _, y = xy(s0, e)
        draw.line([left, y, left + pw, y], fill=(225, 225, 225))
        draw.text((8, y - 6), f"1e{e}", fill=(0, 0, 0), font=font)
    prev_scale = records[0]["scale"]
    for r in records:
        if r["scale"] != prev_scale:
            x, _ = xy(r["step"], lo)
            for y in range(top, top + ph, 8):
                draw.line([x, y, x, y + 4], fill=(120, 120, 120))
            prev_scale = r["scale"]
    curves = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        kept = [(r["step"], math.log10(r[name])) for r in records if r.get(name) and r[name] > 0]
        window = len(kept) // SMOOTHED_POINTS
        if window > 1:  # a training's minibatch losses: the raw values faint (all under every bold line)
            draw.line([xy(*p) for p in kept], fill=tuple(c + (255 - c) * 3 // 4 for c in colour), width=1)
            kept = list(zip([p[0] for p in kept[window - 1:]], running_mean([p[1] for p in kept], window)))
        curves.append((name, kept, colour))
    # the total last and dashed: where one term is all of it (a decoder's features), a solid total hid that term
    for i, (name, kept, colour) in sorted(enumerate(curves), key=lambda c: c[1][0] == "total"):
        line = _dashed_line if name == "total" else draw.line
        if len(kept) > 1:
            line([xy(*p) for p in kept], fill=colour, width=2)
        line([(left + pw + 10, top + 10 + 16 * i), (left + pw + 30, top + 10 + 16 * i)], fill=colour, width=3)
        draw.text((left + pw + 36, top + 4 + 16 * i), name, fill=(0, 0, 0), font=font)
    draw.text((left + pw // 2 - 20, height - bottom + 14), "step", fill=(0, 0, 0), font=font)
    draw.text((left + 4, height - bottom + 14), str(s0), fill=(0, 0, 0), font=font)
    draw.text((left + pw - 30, height - bottom + 14), str(s1), fill=(0, 0, 0), font=font)
    return img
