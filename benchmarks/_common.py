"""Shared pieces of the benchmarks: prepared inputs, one fp32 loss evaluator, FLOP counts, peak."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "classic"
CONTENT = DATA / "content" / "tubingen.jpg"
STYLE = DATA / "style" / "starry_night.jpg"
# pastiche's defaults expressed in painterly's terms: content 0.01 x MSE, style 10 x MSE/C^2.
PASTICHE_WEIGHTS = {"content_weight": 0.01, "style_weight": 10.0, "tv_weight": 0.0}
VGG_BGR_MEAN = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


def prepare_inputs(long_side: int, folder: Path) -> tuple[Path, Path, tuple[int, int]]:
    """Content resized to `long_side` and style to the same pixel count (pastiche's rule), as PNGs,
    so both tools read identical pixels and neither resizes again."""
    content = Image.open(CONTENT).convert("RGB")
    s = long_side / max(content.size)
    cw, ch = round(content.width * s), round(content.height * s)
    style = Image.open(STYLE).convert("RGB")
    sh = round((cw * ch * style.height / style.width) ** 0.5)
    sw = round(style.width / style.height * sh)
    c_path, s_path = folder / "content.png", folder / "style.png"
    content.resize((cw, ch), Image.BILINEAR).save(c_path)
    style.resize((sw, sh), Image.BILINEAR).save(s_path)
    return c_path, s_path, (ch, cw)


def caffe_to_rgb01(x: torch.Tensor) -> torch.Tensor:
    """pastiche's optimised tensor (BGR, 0..255, mean-subtracted) -> RGB [0, 1], unclamped."""
    return ((x.detach() + VGG_BGR_MEAN) / 255.0).flip(1)


class SharedEvaluator:
    """The one fp32 Gatys loss both tools are scored with (pastiche's default weights and layers)."""

    def __init__(self, content: Path, style: Path) -> None:
        from painterly.features import FeatureExtractor
        from painterly.image import as_tensor
        from painterly.methods.gatys import GatysConfig, GatysEvaluator

        self.config = GatysConfig(scales=1, precision="fp32", pooling="avg", **PASTICHE_WEIGHTS)
        self.extractor = FeatureExtractor.vgg19(pooling="avg", last_layer=self.config.layers[-1], precision="fp32")
        c = as_tensor(content)
        self.evaluate = GatysEvaluator(self.extractor, self.config, c, [as_tensor(style)])

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> float:
        return float(self.evaluate(image).total)


def vgg_flops(size: tuple[int, int], last_layer: str = "relu5_1") -> float:
    """FLOPs of one VGG19 forward plus backward to the input (no weight gradients): 2 x forward."""
    from painterly.schedule import vgg_flops as flops

    return flops(size, [last_layer])


def fp32_peak_gflops() -> float:
    """This machine's fp32 FMA peak, from the shared tool (falls back to 0 if unavailable)."""
    tool = ROOT.parent / "shared" / "tools" / "fma_peak.sh"
    try:
        return float(subprocess.run(["bash", str(tool)], capture_output=True, text=True, check=True).stdout.strip())
    except Exception:
        return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script: str, *args: str) -> dict:
    """Run one contender in a fresh process (so its peak RSS is its own); it prints one JSON line."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="painterly-bench-"))


def stack(rows: list) -> "Image.Image":
    """PIL images one above the other on white (sheets of several side-by-side rows)."""
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for r in rows:
        sheet.paste(r, (0, top))
        top += r.height
    return sheet


def save_sheet(rows: list, path: str) -> None:
    """Stack the rows into one sheet and save it (as JPEG or PNG by the name), saying where."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    stack(rows).save(path, quality=85)
    print(f"# sheet: {path}")
