"""Growing a trained network's convolutions wider without changing what it computes (Net2Net)."""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

from ..errors import PainterlyError


def require_wider(widths: Sequence[int], old: Sequence[int], owner: str) -> None:
    """A one-line error when `widths` would narrow any of `old` (the `owner`'s own widths)."""
    if any(n < o for n, o in zip(widths, old)):
        raise PainterlyError(f"widen {','.join(map(str, widths))} is narrower than the {owner}'s "
                             f"{','.join(map(str, old))}")


def copies(old: int, new: int) -> torch.Tensor:
    """Which old channel each of `new` channels copies: channel j copies j mod old."""
    return torch.arange(new) % old


def widen_convs(pairs: Iterable[tuple[nn.Conv2d, nn.Conv2d]], generator: torch.Generator,
                spread: float = 0.2) -> None:
    """Fill each larger convolution of a chain from its smaller twin (Chen et al., "Net2Net", 2016).

    New output channel j copies old channel j mod c (filters and bias), so its activations equal the
    original's. The next convolution reads each group of copies with weights that sum to the original
    one, split unevenly (random shares around 1/k, `spread` wide): copies read equally would get equal
    gradients and stay copies forever. Channel-wise layers between the convolutions (ReLU, upsampling,
    a normalisation whose parameters are copied the same way) keep the copies equal."""
    with torch.no_grad():
        for small, large in pairs:
            w, b = small.weight, small.bias
            out_map = copies(w.shape[0], large.out_channels)
            in_map = copies(w.shape[1], large.in_channels)
            grown = w[out_map][:, in_map]
            shares = 1 + spread * (2 * torch.rand(grown.shape, generator=generator) - 1)
            totals = torch.zeros(grown.shape[0], w.shape[1], *grown.shape[2:]).index_add_(1, in_map, shares)
            large.weight.copy_(grown * shares / totals[:, in_map])
            large.bias.copy_(b[out_map])
