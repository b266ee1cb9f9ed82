"""Test helpers built on the recipe hooks (painterly.recipe): what the per-method conveniences the
driver refactor (issue 9) removed used to give, computed the way the driver computes it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from painterly.features import FeatureExtractor
from painterly.guidance import RegionPair
from painterly.methods.gatys import GATYS, GatysConfig, GatysTargets
from painterly.recipe import Recipe, RunContext
from painterly.schedule import Scale
from painterly.tiling import Tiling


class FakeClock:
    """A time.monotonic() stand-in that only moves when a test moves it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def use_fake_clock(monkeypatch, *modules: str, now: float = 1000.0) -> FakeClock:
    """Replace `time` in each named module (e.g. 'painterly.driver') by one FakeClock."""
    clock = FakeClock(now)
    for module in modules:
        monkeypatch.setattr(f"{module}.time", clock)
    return clock


def run_context(config, content: torch.Tensor, styles: Sequence[torch.Tensor], plan: Sequence[Scale], *,
                extractor: FeatureExtractor, style_masks: Optional[Sequence[torch.Tensor]] = None,
                guidance: Optional[Sequence[RegionPair]] = None, init_image: Optional[torch.Tensor] = None,
                seed: int = 0, precision: str = "fp32") -> RunContext:
    """The RunContext the driver would hand a recipe's hooks for this run (on the CPU)."""
    return RunContext(config, torch.device("cpu"), precision, extractor, torch.Generator().manual_seed(seed),
                      content, list(styles), list(plan), init_image,
                      None if style_masks is None else list(style_masks),
                      None if guidance is None else list(guidance))


def scale_targets(recipe: Recipe, ctx: RunContext, k: int = 0, box=None):
    """A scale's targets as the driver builds them: the style side, then the content side (whole or a tile)."""
    scale = ctx.plan[k]
    style = recipe.style_targets(ctx, k, scale)
    return recipe.targets(ctx, k, scale, style, box)


def compute_targets(extractor: FeatureExtractor, config: GatysConfig, content: torch.Tensor,
                    styles: Sequence[torch.Tensor], size: tuple[int, int],
                    style_masks: Optional[Sequence[torch.Tensor]] = None,
                    guidance: Optional[Sequence[RegionPair]] = None,
                    tiling: Optional[Tiling] = None) -> GatysTargets:
    """Gatys's content features and Gram targets at `size` for the whole image (the old
    methods.gatys.compute_targets): GATYS.style_targets then GATYS.targets on a one-scale plan."""
    ctx = run_context(config, content, styles, [Scale(*size, 1, tiling)], extractor=extractor,
                      style_masks=style_masks, guidance=guidance)
    return scale_targets(GATYS, ctx)


def write_clip(path: Path, frames, rate=10, audio=True) -> Path:
    """An H.264 clip (crf 10) of 1x3xHxW frames in [0, 1], with a 440 Hz tone as its sound unless audio=False."""
    import av

    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = frames[0].shape[-1], frames[0].shape[-2], "yuv420p"
    stream.options = {"crf": "10"}
    sound = container.add_stream("aac", rate=16000) if audio else None
    for i, frame in enumerate(frames):
        image = (frame[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        out = av.VideoFrame.from_ndarray(image, format="rgb24")
        out.pts = i
        for packet in stream.encode(out):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if sound is not None:
        seconds = len(frames) / rate
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(16000 * seconds)) / 16000)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 16000, start
            for packet in sound.encode(chunk):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    container.close()
    return path
