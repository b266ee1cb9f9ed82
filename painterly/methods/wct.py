"""WCT (Li et al. 2017, "Universal Style Transfer via Feature Transforms"): any style, coarse to fine.
At each level (relu5_1 ... relu1_1) the image is encoded, its features whitened and coloured with the
style's covariance (float64 eigendecomposition, eigenvalues below a floor dropped), and decoded by
that level's reconstruction decoder; the next level starts from the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..config import option
from ..errors import PainterlyError
from ..nets.decoder import LEVELS
from ..nets.io import DECODERS
from ..recipe import register
from ..transforms import Moments, WctMap, wct
from .arbitrary import STYLE, ArbitraryConfig, ArbitraryRecipe, decoder_file


# The defaults, chosen over 40 held-out pairs (8 photos x 5 paintings, docs/benchmarks.md). With the
# bundled decoders the relu1_1 level undoes much of the coarser levels' texture (relu4_1..relu1_1 at the
# paper's 0.6: style loss 0.34 of the photo's on average, up to 0.97 on The Scream). The finer levels
# also move the relu4_1 statistics that carry most of the Gram loss, so a second relu4_1 pass ends the
# run: relu4_1..relu2_1 at 0.8 averaged 0.24 (at most 0.50); relu4_1, relu2_1 and relu4_1 again at
# full strength 0.17 (at most 0.37), the content loss at most 0.75 of the style image's, and relu3_1's
# pass left out saves a fifth of the time for no loss.
DEFAULT_LEVELS = ("relu4_1", "relu2_1", "relu4_1")
MAX_PASSES = 10  # levels may repeat (the default's second relu4_1), but each pass is a full decode
DEFAULT_STRENGTH = 1.0


@dataclass(frozen=True)
class WctConfig(ArbitraryConfig):
    """A WCT run. strength is the paper's alpha, the same at every level (0.6 in the paper's figures; 1 here,
    measured with painterly's decoders)."""

    strength: float = option(DEFAULT_STRENGTH, "how far the content's features move to the style's at each level: "
                             "0 decodes the content's own (the decoders' rendering of the photo), 1 is the full "
                             "transform", minimum=0, maximum=1, group=STYLE, metavar="A")
    levels: Optional[tuple[str, ...]] = option(None, "the levels in the order they run, coarse to fine (the "
                                               "paper's: relu5_1,relu4_1,relu3_1,relu2_1,relu1_1); a level may run "
                                               "again, as the default's last relu4_1 pass", choices=LEVELS, group=STYLE,
                                               default_text=",".join(DEFAULT_LEVELS), metavar="LAYERS")
    decoders: Optional[tuple[str, ...]] = option(None, "one decoder file per level (painterly train-decoder --method "
                                                 "wct --level L)", default_text="the bundled ones", group=STYLE,
                                                 metavar="FILE,FILE,...", files=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.levels is not None and not self.levels:
            raise PainterlyError("at least one level is needed")
        if self.levels is not None and len(self.levels) > MAX_PASSES:
            raise PainterlyError(f"levels runs {len(self.levels)} passes; at most {MAX_PASSES}")
        if self.decoders is not None and self.levels is None:
            raise PainterlyError("--decoders needs --levels: one decoder file per level, in the same order")
        if self.decoders is not None and len(self.decoders) != len(self.levels):
            raise PainterlyError(f"{len(self.decoders)} decoder file(s) for {len(self.levels)} level(s)")
        if self.decoders is not None:
            files: dict[str, str] = {}
            for level, file in zip(self.levels, self.decoders):
                if files.setdefault(level, file) != file:
                    raise PainterlyError(f"{level} runs twice with two decoder files; give the same file both times")


class Wct(ArbitraryRecipe):
    name = "wct"
    config_class = WctConfig
    summary = "WCT (Li et al. 2017): any style, whitening and colouring at up to five levels"
    full_covariance = True

    def levels(self, config: WctConfig) -> list[str]:
        if config.levels is not None:
            return list(config.levels)
        missing = [level for level in dict.fromkeys(DEFAULT_LEVELS) if not (DECODERS / f"wct_{level}.safetensors").exists()]
        if missing:
            raise PainterlyError(f"the WCT decoder(s) of {', '.join(missing)} are not bundled in this installation; "
                                 "train them with `painterly train-decoder --method wct --level L` and give "
                                 "--levels and --decoders")
        return list(DEFAULT_LEVELS)

    def decoder_file(self, config: WctConfig, level: str) -> Path:
        if config.decoders is not None:
            return decoder_file(config.decoders[list(config.levels).index(level)], "")
        return decoder_file("", f"wct_{level}")

    def transform(self, config: WctConfig, level: str, content: torch.Tensor, content_moments: Moments,
                  style_moments: Moments) -> torch.Tensor:
        return wct(content, WctMap.between(content_moments, style_moments), config.strength)


WCT = register(Wct())
