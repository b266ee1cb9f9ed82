"""Test helpers built on the recipe hooks (painterly.recipe): what the per-method conveniences the
driver refactor (issue 9) removed used to give, computed the way the driver computes it."""

from __future__ import annotations

from typing import Optional, Sequence

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
