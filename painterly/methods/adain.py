"""AdaIN (Huang and Belongie 2017): any style in one pass. VGG19 up to relu4_1, each channel moved to
the style's mean and standard deviation, and a decoder painterly trains (`painterly train-decoder
--method adain`) back to pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import option
from ..recipe import register
from ..transforms import Moments, adain
from .arbitrary import STYLE, ArbitraryConfig, ArbitraryRecipe, decoder_path

LEVEL = "relu4_1"


@dataclass(frozen=True)
class AdainConfig(ArbitraryConfig):
    """An AdaIN run. strength is the paper's alpha."""

    decoder: str = option("", "the decoder file (painterly train-decoder --method adain)", default_text="the bundled one",
                          group=STYLE, metavar="FILE", files=True)


class Adain(ArbitraryRecipe):
    name = "adain"
    config_class = AdainConfig
    summary = "AdaIN (Huang and Belongie 2017): any style, one encode-transform-decode pass"

    def levels(self, config: AdainConfig) -> list[str]:
        return [LEVEL]

    def decoder_file(self, config: AdainConfig, level: str) -> Path:
        return decoder_path(config.decoder, "adain")

    def transform(self, config: AdainConfig, level: str, content: torch.Tensor, content_moments: Moments,
                  style_moments: Moments) -> torch.Tensor:
        return adain(content, content_moments, style_moments, config.strength)


ADAIN = register(Adain())
