"""What a style network is trained against: a batch of outputs scored against its photos and a style.

Two objectives, chosen by name (`TRAINING_LOSSES`), each preparing its style side once:

- "gram" (Johnson et al. 2016): painterly's Gatys objective, content at relu4_2 and Gram matrices of
  the whole crop against the style's (blended over several style images, or pooled over a style set).
- "strotss" (Kolkin et al. 2019, which names feed-forward training as future work): painterly's
  STROTSS objective on hypercolumns sampled per photo of the batch (relaxed EMD + moments + palette
  against the style's hypercolumns, self-similarity against the photo's), the terms averaged over
  the batch. The style's feature maps are held once; each step samples fresh positions from the
  training generator, so the data stream and the samples resume exactly from a checkpoint.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .features import LAYER_INDEX, FeatureExtractor
from .guidance import masked_grams
from .hypercolumns import StyleFeatures, grid_positions, sample_hypercolumns
from .image import fit_long_side, resize
from .losses import LossTerms, blend_grams
from .losses.functional import total_variation
from .methods.gatys import GatysConfig, GatysObjective, GatysTargets
from .methods.strotss import StrotssConfig, strotss_terms


def _style_images(styles: Sequence[torch.Tensor], long_side: int) -> list[torch.Tensor]:
    return [resize(s, fit_long_side(*s.shape[-2:], long_side)) for s in styles]


class GramTraining:
    """The Gatys objective for a batch: one Gram target per style (separate) or one for all."""

    def __init__(self, extractor: FeatureExtractor, styles: Sequence[torch.Tensor], config, separate: bool,
                 generator: torch.Generator) -> None:
        self.config = GatysConfig(content_layers=config.content_layers, style_layers=config.style_layers,
                                  content_weight=config.content_weight_for("gram"),
                                  style_weight=config.style_weight_for("gram"), tv_weight=config.tv_weight,
                                  precision="fp32", device="cpu")
        self.layers = self.config.layers
        self.extractor = extractor
        self.objective = GatysObjective(self.config)
        self.style_count = len(styles) if separate else 1
        grams, positions = [], []
        with torch.no_grad():
            for s in _style_images(styles, config.style_size):
                (g, p), = masked_grams(extractor, s, config.style_layers, [None])
                grams.append(g)
                positions.append(p)
        if separate:
            self.targets = grams
        else:  # one target: equal weights, or each image's share of a style set's positions
            self.targets = [{l: blend_grams([g[l] for g in grams],
                                            [p[l] for p in positions] if config.style_set else [1.0] * len(grams))
                             for l in config.style_layers}]

    @staticmethod
    def last_layer(config) -> str:
        """The deepest VGG19 layer the objective reads (where the extractor can stop)."""
        return max((*config.content_layers, *config.style_layers), key=LAYER_INDEX.__getitem__)

    def __call__(self, out: torch.Tensor, photos: torch.Tensor, style: int) -> LossTerms:
        with torch.no_grad():
            content = self.extractor(photos, self.config.content_layers) if self.config.content_layers else {}
        return self.objective(out, self.extractor(out, self.layers), GatysTargets(content, self.targets[style]))


class StrotssTraining:
    """The STROTSS objective for a batch: per photo, `samples` grid positions of the output and the
    photo against `style_samples` hypercolumns of the style (or of all styles, blended or a set)."""

    def __init__(self, extractor: FeatureExtractor, styles: Sequence[torch.Tensor], config, separate: bool,
                 generator: torch.Generator) -> None:
        self.strotss = StrotssConfig()
        self.layers = self.strotss.sorted_layers
        self.extractor = extractor
        self.generator = generator
        self.content_weight = config.content_weight_for("strotss")
        self.style_weight = config.style_weight_for("strotss")
        self.tv_weight = config.tv_weight
        self.matmul_dtype = torch.bfloat16 if extractor.precision == "bf16" else None
        images = _style_images(styles, config.style_size)
        groups = [[s] for s in images] if separate else [images]
        self.sides = [StyleFeatures(extractor, self.layers, group, generator, [[None] * len(group)]) for group in groups]
        self.style_count = len(self.sides)

    @staticmethod
    def last_layer(config) -> str:
        return StrotssConfig().sorted_layers[-1]

    def __call__(self, out: torch.Tensor, photos: torch.Tensor, style: int) -> LossTerms:
        features = self.extractor(out, self.layers)
        with torch.no_grad():
            content = self.extractor(photos, self.layers)
        side = self.sides[style]
        totals: dict[str, torch.Tensor] = {}
        size = tuple(out.shape[-2:])
        for i in range(out.shape[0]):
            pos = grid_positions(size, self.strotss.samples, self.generator)
            x = sample_hypercolumns(out[i:i + 1], {l: f[i:i + 1] for l, f in features.items()}, self.layers, pos)
            with torch.no_grad():
                c = sample_hypercolumns(photos[i:i + 1], {l: f[i:i + 1] for l, f in content.items()}, self.layers, pos)
            style_columns = side.sample(self.strotss.style_samples, 0)
            terms = strotss_terms(x, c, style_columns, self.content_weight, self.strotss.moment_weight,
                                  side.moments[0], self.matmul_dtype).terms
            for name, value in terms.items():
                weight = 1.0 if name == "content" else self.style_weight
                totals[name] = totals.get(name, 0) + weight * value / out.shape[0]
        if self.tv_weight > 0:
            totals["tv"] = self.tv_weight * total_variation(out)
        return LossTerms(totals)


TRAINING_LOSSES: dict[str, type] = {"gram": GramTraining, "strotss": StrotssTraining}
# The weights each objective is tuned for (content, style): Gatys's normalisation, STROTSS's alpha.
DEFAULT_WEIGHTS = {"gram": (0.2, 10.0), "strotss": (8.0, 1.0)}
