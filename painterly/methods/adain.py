"""AdaIN (Huang and Belongie 2017): any style in one pass. VGG19 up to relu4_1, each channel moved to
the style's mean and standard deviation, and a decoder painterly trains (`painterly train-decoder
--method adain`) back to pixels; then, by default, the colours moved half way to the style's (the
colour step of painterly.methods.arbitrary)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import option
from ..recipe import register
from ..transforms import Moments, adain
from .arbitrary import STYLE, ArbitraryConfig, ArbitraryRecipe, decoder_file

LEVEL = "relu4_1"


@dataclass(frozen=True)
class AdainConfig(ArbitraryConfig):
    """An AdaIN run. strength is the paper's alpha."""

    decoder: str = option("", "the decoder file (painterly train-decoder --method adain)", default_text="the bundled one",
                          group=STYLE, metavar="FILE", files=True)
    # Half way: over 40 held-out pairs the style loss fell from 0.182 to 0.164 of the photo's (29 pairs
    # meeting both targets, not 25), the content loss rising 0.750 -> 0.766 of the style image's at worst;
    # the full match overshoots (docs/benchmarks.md).
    color_match: float = option(0.5, "after decoding, move the colours' mean and covariance this fraction of the way "
                                "to the style's (times --strength): the decoder reproduces them only in part; 0 is "
                                "the paper's AdaIN", minimum=0, maximum=1, group=STYLE, metavar="F")


class Adain(ArbitraryRecipe):
    name = "adain"
    config_class = AdainConfig
    summary = "AdaIN (Huang and Belongie 2017): any style, one encode-transform-decode pass"

    def levels(self, config: AdainConfig) -> list[str]:
        return [LEVEL]

    def decoder_file(self, config: AdainConfig, level: str) -> Path:
        return decoder_file(config.decoder, "adain")

    def transform(self, config: AdainConfig, level: str, content: torch.Tensor, content_moments: Moments,
                  style_moments: Moments) -> torch.Tensor:
        return adain(content, content_moments, style_moments, config.strength)


ADAIN = register(Adain())
