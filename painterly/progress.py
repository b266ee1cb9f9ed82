"""One callback type for progress: the CLI's bar, logs, intermediate saves and a web UI all consume it."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from PIL import Image

from .image import tensor_to_pil, write_bytes_atomic


@dataclass
class StepInfo:
    """What a callback learns after each iteration.

    `losses` holds each weighted term by name plus 'total' (empty for a forward pass, which has no loss).
    `preview()` renders the current image only when asked, so callbacks that just log cost nothing.
    """

    iteration: int          # 1-based, within this scale
    iterations: int         # planned iterations at this scale
    scale: int              # 0-based, coarsest first
    scales: int
    size: tuple[int, int]   # (height, width) at this scale
    losses: dict[str, float]
    elapsed: float          # seconds since the run started
    step: int               # 1-based count over all scales
    frame: Optional[int] = None  # the video frame being stylised (None for a still image)
    _render: Callable[[], torch.Tensor] = field(repr=False, default=lambda: torch.zeros(1, 3, 1, 1))

    def preview_tensor(self) -> torch.Tensor:
        return self._render()

    def preview(self) -> Image.Image:
        return tensor_to_pil(self._render())


Callback = Callable[[StepInfo], None]


class StopRun(Exception):
    """Raise from a stylize() callback to end an optimisation after this step and get the picture so far,
    at the size asked for (a loss that has levelled off, a preview that looks done). Its later tiles and
    scales are skipped; the result's `info["stopped_early"]` says "callback". A one-pass method (a
    network, AdaIN, WCT) finishes its pass; a video stops as on Ctrl-C, keeping the frames finished."""


def combine(*callbacks: Optional[Callback]) -> Optional[Callback]:
    """One callback that calls each given one in turn."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def call_all(info: StepInfo) -> None:
        for c in active:
            c(info)

    return call_all


class ProgressBar:
    """A tqdm bar per scale with the loss terms and an ETA."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.bar = None
        self.scale = -1

    def __call__(self, info: StepInfo) -> None:
        from tqdm import tqdm

        if info.scale != self.scale or self.bar is None:
            self.close()
            self.scale = info.scale
            h, w = info.size
            self.bar = tqdm(total=info.iterations, initial=info.iteration - 1,  # > 0 on resume
                            file=self.stream, dynamic_ncols=True, leave=True,
                            desc=f"scale {info.scale + 1}/{info.scales} {w}x{h}", unit="it")
        self.bar.set_postfix_str(" ".join(f"{k}={v:.3g}" for k, v in info.losses.items()), refresh=False)
        self.bar.update(1)
        if info.iteration >= info.iterations:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LossHistory:
    """Collects every step's loss terms; writes them as JSON and as a loss-curve PNG."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def __call__(self, info: StepInfo) -> None:
        self.records.append({"step": info.step, "scale": info.scale, "iteration": info.iteration,
                             # [width, height], as the web API and the CLI's "wrote ... (WxH)" give sizes
                             "size": [info.size[1], info.size[0]], "elapsed": round(info.elapsed, 4), **info.losses})

    @property
    def has_losses(self) -> bool:
        """False for a forward pass (a network, AdaIN, WCT): its steps have times but no loss to plot."""
        return any("total" in record for record in self.records)

    def write_json(self, path: str | Path) -> None:
        write_bytes_atomic(json.dumps(self.records, indent=1).encode(), path)

    def write_plot(self, path: str | Path) -> None:
        from .figures import loss_curve
        from .image import save_image

        save_image(loss_curve(self.records), path)


class SaveEvery:
    """Writes the current image every `every` steps as NAME_0100.png beside the output."""

    def __init__(self, output: str | Path, every: int) -> None:
        out = Path(output)
        self.pattern = str(out.with_name(f"{out.stem}_{{:04d}}{out.suffix}"))
        self.every = every

    def __call__(self, info: StepInfo) -> None:
        if self.every > 0 and info.step % self.every == 0:
            from .image import save_image

            save_image(info.preview(), self.pattern.format(info.step))

