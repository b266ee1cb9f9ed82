"""Training style networks (Johnson et al. 2016; Dumoulin et al. 2017 for several styles in one).

The network is trained by painterly's own parts: the same VGG19 extractor, Gram targets (blended,
or pooled over a style set) and Gatys objective as the optimisation method, on random crops of the
photos under a folder (scale jitter, flips). One style per batch; a multi-style network cycles its
styles batch by batch, each with its own instance-norm scale and shift. `extend` adds a style to a
multi-style model by training only that style's normalisation parameters.

Checkpoints hold the network, Adam's state, the data sampler's generator and the loss log, through
the same Checkpointer as optimisation runs, so `resume` continues exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from PIL import Image

from .checkpoint import DIGEST_SUFFIX, Checkpointer, Interrupted, fingerprint, make_checkpointer, restore_rng, rng_state, run_record
from .config import SEED_RANGE, MethodConfig, flag_name, option, unknown_options
from .errors import PainterlyError
from .features import FeatureExtractor, check_layers
from .figures import PREVIEWS_SHOWN
from .hardware import free_memory_bytes, resolve_device, resolve_precision, set_threads
from .image import (READ_SUFFIXES, ImageLike, as_tensor, check_writable, fit_long_side, image_list, open_image,
                    pil_to_tensor, resize, split_alpha)
from .losses import LossTerms
from .nets.grow import copies, require_wider, widen_convs
from .nets.io import KIND, save_model, starting_file
from .nets.transformer import Architecture, TransformerNet
from .schedule import gib
from .training_losses import DEFAULT_WEIGHTS, TRAINING_LOSSES

DATA, LOSSES, NET = "data", "losses", "network"


@dataclass(frozen=True)
class LoopConfig(MethodConfig):
    """What every training run has: data, optimiser, hardware, time, previews."""

    steps: int = option(2000, "optimiser steps", minimum=1, group=DATA, metavar="N")
    batch: int = option(4, "photos per step", minimum=1, group=DATA, metavar="N")
    crop: int = option(256, "side of the random square crops, px", minimum=32, group=DATA, metavar="PX")
    scale_jitter: float = option(0.25, "photos are scaled by a random factor in [1-J, 1+J] before cropping",
                                 minimum=0, maximum=0.9, group=DATA, metavar="J")  # 1-J > 0: a scale
    image_side: Optional[int] = option(None, "short side photos are scaled to (before the jitter) for cropping: "
                                       "the scale the network learns to repaint, so the short side of the "
                                       "pictures it will stylise", minimum=32, default_text="1.25 x the crop",
                                       group=DATA, metavar="PX")
    learning_rate: float = option(1e-3, "Adam's step", above=0, maximum=1, group=DATA, metavar="LR")
    warmup: int = option(0, "steps over which the learning rate rises linearly to --learning-rate (with --init: "
                         "Adam's first steps, about the full rate on every weight, would undo a trained model)",
                         minimum=0, group=DATA, metavar="N")
    decay: int = option(0, "the last N steps: the learning rate falls to zero along a half cosine (a constant rate "
                        "leaves the weights hovering; annealing settles them). Counted back from --steps, so give "
                        "the real step count, not a large one cut short by --max-time", minimum=0, group=DATA,
                        metavar="N")
    seed: int = option(0, "random seed (data order, crops, initial weights)", minimum=SEED_RANGE[0],
                       maximum=SEED_RANGE[1], group=DATA, metavar="N")
    precision: str = option("auto", "VGG19's precision; auto uses bf16 where it runs faster than fp32 here",
                            choices=("auto", "fp32", "bf16"), group="hardware")
    device: str = option("auto", "torch device", group="hardware", metavar="DEVICE")
    threads: Optional[int] = option(None, "CPU threads", minimum=1, default_text="the CPUs this process may use",
                                    group="hardware", metavar="N")
    max_time: Optional[float] = option(None, "stop (and save the model) after about this many seconds", above=0,
                                       default_text="no limit", group=DATA, metavar="SECONDS")
    preview_every: int = option(100, "render the validation photo every N steps into the preview sheet", minimum=1,
                                group=DATA, metavar="N")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decay > self.steps:
            raise PainterlyError(f"decay {self.decay} is longer than the run ({self.steps} steps)")
        if self.image_side is not None and self.image_side < self.crop:
            raise PainterlyError(f"image-side {self.image_side} is smaller than the crop ({self.crop})")

    def rate_at(self, step: int) -> float:
        """The learning rate of step `step` (0-based): the warm-up's ramp, the decay's half cosine. A
        function of the step alone, so a resumed run takes up the same rates."""
        rate = self.learning_rate
        if self.warmup:
            rate *= min(1.0, (step + 1) / self.warmup)
        into_decay = step - (self.steps - self.decay)
        if self.decay and into_decay >= 0:
            rate *= 0.5 * (1 + math.cos(math.pi * (into_decay + 1) / (self.decay + 1)))
        return rate

    def photo_side(self) -> float:
        """The short side photos are scaled to (before the jitter) for cropping: by default a 256 px crop
        sees most of a 320 px-high view, the framing of the photos it will repaint."""
        return 1.25 * self.crop if self.image_side is None else float(self.image_side)

    def decode_side(self) -> int:
        """Half the largest short side a crop is taken from (find_photos keeps photos at twice this)."""
        return max(self.crop, round(self.photo_side() * (1 + self.scale_jitter) / 2))


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    """Every knob of a network's training run. Round-trips through JSON; stored in the model file."""

    style_size: int = option(384, "long side the style images are read at (sets the stroke size)", minimum=32,
                             group=LOSSES, metavar="PX")
    content_layers: tuple[str, ...] = option(("relu4_2",), "VGG19 layers for content", group=LOSSES, metavar="LAYERS")
    style_layers: tuple[str, ...] = option(("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                                           "VGG19 layers for style", group=LOSSES, metavar="LAYERS")
    loss: str = option("gram", "what the network is trained against: Gram matrices (Johnson et al.) or the "
                       "STROTSS objective (relaxed EMD + moments + self-similarity)", choices=tuple(TRAINING_LOSSES),
                       group=LOSSES)
    content_weight: Optional[float] = option(None, "content weight", minimum=0, group=LOSSES, metavar="W",
                                             default_text="0.2 with gram (Gatys's normalisation), 8 with strotss "
                                                          "(STROTSS's alpha)")
    style_weight: Optional[float] = option(None, "style weight", minimum=0, group=LOSSES, metavar="W",
                                           default_text="10 with gram, 1 with strotss")
    tv_weight: float = option(0.0, "total-variation weight", minimum=0, group=LOSSES, metavar="W")
    temporal_weight: float = option(0.0, "for video: weight of a temporal loss on synthetic motion (each photo "
                                    "shifted, zoomed and turned a little, with known flow): the output of the moved "
                                    "photo must be the moved output", minimum=0, group=LOSSES, metavar="W")
    style_set: bool = option(False, "the STYLE images are one artist's work: Gram targets pooled over all of them",
                             group=LOSSES)
    multi_style: bool = option(False, "one network holding every STYLE (conditional instance norm)", group=NET)
    widths: tuple[int, ...] = option((32, 64, 128), "channels at full, half and quarter resolution", minimum=1,
                                     group=NET, metavar="C,C,C")
    residual_blocks: int = option(5, "residual blocks at quarter resolution", minimum=0, group=NET, metavar="N")
    widen: Optional[tuple[int, ...]] = option(None, "with --init: first grow the model to these widths, keeping what "
                                              "it does (each new channel a copy of an old one, Net2Net), so a slim "
                                              "trained network gains capacity without starting over", minimum=1,
                                              default_text="the model's own widths", group=NET, metavar="C,C,C")
    deepen: Optional[int] = option(None, "with --init: first grow the model to this many residual blocks, keeping "
                                   "what it does (each new block starts as the identity), so a trained network "
                                   "gains depth without starting over", minimum=1,
                                   default_text="the model's own count", group=NET, metavar="N")

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.widths) != 3:
            raise PainterlyError(f"widths needs 3 channel counts, got {len(self.widths)}")
        if self.widen is not None and len(self.widen) != 3:
            raise PainterlyError(f"widen needs 3 channel counts, got {len(self.widen)}")
        if self.style_set and self.multi_style:
            raise PainterlyError("style-set pools the images into one style; multi-style keeps them apart")
        for name in ("content_layers", "style_layers"):
            object.__setattr__(self, name, tuple(check_layers(getattr(self, name), name[:-1].replace("_", " "))))

    def content_weight_for(self, loss: str) -> float:
        return DEFAULT_WEIGHTS[loss][0] if self.content_weight is None else self.content_weight

    def style_weight_for(self, loss: str) -> float:
        return DEFAULT_WEIGHTS[loss][1] if self.style_weight is None else self.style_weight


PhotoFolders = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def config_with(config_class: type, config: Optional[MethodConfig], options: dict) -> MethodConfig:
    """`config` (default: the class's defaults) with `options` (field names) over it; a one-line error
    for a name that is not an option."""
    unknown = sorted(unknown_options(config_class, options))
    if unknown:
        fields = sorted(f.name for f in dataclasses.fields(config_class))
        near = difflib.get_close_matches(unknown[0], fields, n=1, cutoff=0.75)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise PainterlyError(f"unknown training option '{unknown[0]}'{hint}; see {config_class.__name__}")
    config = config_class() if config is None else config
    return dataclasses.replace(config, **options) if options else config


def photo_files(roots: Sequence[Path], folder: str = "photo folder") -> list[Path]:
    """Every image file under the folders, recursively, once each and in a fixed order; a one-line error
    naming a folder that is not one, as the `folder` it was given as (photos or style images)."""
    for root in roots:
        if not root.is_dir():
            raise PainterlyError(f"{folder} '{root}' does not exist or is not a folder")
    return sorted({p for root in roots for p in root.rglob("*")
                   if p.suffix.lower() in READ_SUFFIXES and p.is_file() and not _training_output(p)})


def _training_output(path: Path) -> bool:
    """A preview sheet or loss curve a training wrote beside its model (MODEL.preview.png beside
    MODEL.safetensors or MODEL.ckpt): with the model written inside a photo folder, the next training
    took them for photos."""
    for kind in (".preview.png", ".loss.png"):
        if path.name.endswith(kind):
            stem = path.name[: -len(kind)]
            return any((path.parent / f"{stem}{suffix}").exists() for suffix in (".safetensors", ".ckpt"))
    return False


def read_photo(path: Path) -> Optional[Image.Image]:
    """A training photo as training sees it (EXIF rotation honoured, alpha flattened onto white); None
    for a file that can't be read, which training skips and counts."""
    try:
        return split_alpha(open_image(path, "photo"))[0]
    except PainterlyError:
        return None


def find_photos(folders: PhotoFolders, min_side: int, what: str = "photos",
                folder: str = "photo folder") -> tuple[list[torch.Tensor], int]:
    """Every readable image under `folders` (one or several, recursively) as a tensor whose short side
    is at most 2 x min_side (decoded once); unreadable files are skipped and counted (`what` they are, for
    the error where none is readable; `folder`, how the folders were given, for one that is missing)."""
    roots = [Path(folders)] if isinstance(folders, (str, os.PathLike)) else [Path(f) for f in folders]
    photos, skipped = [], 0
    for path in photo_files(roots, folder):
        image = read_photo(path)
        if image is None:
            skipped += 1
            continue
        t = pil_to_tensor(image)
        h, w = t.shape[-2:]
        if min(h, w) > 2 * min_side:
            t = resize(t, fit_long_side(h, w, round(max(h, w) * 2 * min_side / min(h, w))))
        photos.append(t)
    if not photos:
        where = ", ".join(f"'{r}'" for r in roots)
        raise PainterlyError(f"no readable {what} under {where} ({skipped} unreadable)")
    return photos, skipped


def sample_batch(photos: Sequence[torch.Tensor], config: "LoopConfig", generator: torch.Generator) -> torch.Tensor:
    """`batch` random crops: a random photo, its short side scaled to `config.photo_side()` times the
    jitter, cropped, maybe flipped."""
    crops = []
    for _ in range(config.batch):
        photo = photos[int(torch.randint(len(photos), (1,), generator=generator))]
        h, w = photo.shape[-2:]
        jitter = 1 + config.scale_jitter * (2 * float(torch.rand(1, generator=generator)) - 1)
        scale = max(jitter * config.photo_side() / min(h, w), config.crop / min(h, w))
        size = (max(config.crop, round(h * scale)), max(config.crop, round(w * scale)))
        image = resize(photo, size)
        top = int(torch.randint(size[0] - config.crop + 1, (1,), generator=generator))
        left = int(torch.randint(size[1] - config.crop + 1, (1,), generator=generator))
        crop = image[..., top:top + config.crop, left:left + config.crop]
        if float(torch.rand(1, generator=generator)) < 0.5:
            crop = crop.flip(-1)
        crops.append(crop)
    return torch.cat(crops)


def extended(net: TransformerNet) -> TransformerNet:
    """`net` with one style more, its scale and shift starting from the mean of the existing ones."""
    bigger = TransformerNet(dataclasses.replace(net.arch, styles=net.arch.styles + 1))
    state = net.state_dict()
    for key, value in bigger.state_dict().items():
        old = state[key]
        value.copy_(torch.cat([old, old.mean(0, keepdim=True)]) if key.startswith("norms.") else old)
    return bigger


def widened(net: TransformerNet, widths: Sequence[int], generator: torch.Generator,
            spread: float = 0.2) -> TransformerNet:
    """`net` with more channels, computing the same image (Net2Net, nets.grow.widen_convs): each new
    channel copies an old one's convolution and its normalisation's scale and shift."""
    require_wider(widths, net.arch.widths, "model")
    bigger = TransformerNet(dataclasses.replace(net.arch, widths=tuple(int(w) for w in widths)))
    widen_convs([(small.conv, large.conv) for small, large in zip(net.convs, bigger.convs)], generator, spread)
    with torch.no_grad():
        for small, large in zip(net.norms, bigger.norms):
            out_map = copies(small.scale.shape[1], large.scale.shape[1])
            large.scale.copy_(small.scale[:, out_map])
            large.shift.copy_(small.shift[:, out_map])
    return bigger


def deepened(net: TransformerNet, blocks: int, generator: torch.Generator) -> TransformerNet:
    """`net` with `blocks` residual blocks, computing the same image: the new blocks follow the old
    ones, each with its last normalisation's scale and shift at zero, so it adds nothing (the identity)
    until training moves that scale ("zero-init residual", Goyal et al. 2017). Their convolutions start
    at PyTorch's default initialisation, drawn from `generator`."""
    old = net.arch.residual_blocks
    if blocks < old:
        raise PainterlyError(f"deepen {blocks} is fewer than the model's {old} residual blocks")
    deeper = TransformerNet(dataclasses.replace(net.arch, residual_blocks=blocks))
    first_new, first_after = 3 + 2 * old, 3 + 2 * blocks  # layer indices: new blocks, then the upsampling
    # each layer of the deeper network: the old layer it copies, or None for a new block's
    sources = list(range(first_new)) + [None] * (first_after - first_new) + \
        list(range(first_new, len(net.convs)))
    with torch.no_grad():
        for i, source in enumerate(sources):
            conv = deeper.convs[i].conv
            if source is not None:
                conv.load_state_dict(net.convs[source].conv.state_dict())
                if i < len(deeper.norms):
                    deeper.norms[i].load_state_dict(net.norms[source].state_dict())
                continue
            bound = 1 / math.sqrt(conv.weight[0].numel())  # PyTorch's default for a convolution
            conv.weight.copy_((2 * torch.rand(conv.weight.shape, generator=generator) - 1) * bound)
            conv.bias.copy_((2 * torch.rand(conv.bias.shape, generator=generator) - 1) * bound)
            if deeper.block_edges(i)[1]:  # a new block's second layer: its output starts at zero
                deeper.norms[i].scale.zero_()
                deeper.norms[i].shift.zero_()
    return deeper


def shown(value) -> str:
    """An option's value as its flag takes it: 8,16,32 for channel counts."""
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def refuse_other_architecture(name: str, asked, own, of: str, kept: str, grow: str = "") -> None:
    """A one-line error where an architecture option the caller named (`asked`; None: not named) is not
    the starting file's (`own`, the architecture of `of`): a network or decoder trained further keeps its
    own, and training another than the one asked for without a word would hide that. `grow`: the option
    that grows the file to what was asked, where one does."""
    if asked is None or shown(asked) == shown(own):
        return
    flag = flag_name(name)
    raise PainterlyError(f"--{flag} {shown(asked)} differs from the {shown(own)} of {of}: {kept} keeps its "
                         f"architecture; leave --{flag} out{f', or grow it with {grow}' if grow else ''}")


StepCallback = Callable[[int, int, dict[str, float], float], None]  # (step, steps, losses, images/s)
Preview = Callable[[int, torch.Tensor], None]


class Trainee:
    """What the loop trains: a module, which of its parameters move, its loss on a batch of photos
    at a step, and how it renders the validation photo."""

    module: torch.nn.Module
    trainable: list[torch.nn.Parameter]

    def loss(self, batch: torch.Tensor, step: int) -> LossTerms:
        raise NotImplementedError

    def render(self, photo: torch.Tensor, step: int) -> torch.Tensor:
        raise NotImplementedError


# Steps running whose gradients may overflow (each skipped, as automatic mixed precision skips them) before the
# training stops: an occasional flat crop passes, photos that are all flat are refused.
MAX_OVERFLOWED_STEPS = 20
PREVIEWS_KEPT = PREVIEWS_SHOWN  # validation renders a checkpoint holds: a resumed run's sheet shows them first


def _small_uint8(image: torch.Tensor, height: int = 384) -> torch.Tensor:
    """A render as the checkpoint keeps it: 8-bit, at most `height` px high (the sheet shows it 192 px
    high; a multi-style network's render is a row of its styles, so the width is not capped)."""
    h, w = image.shape[-2:]
    if h > height:
        image = resize(image, (height, max(1, round(w * height / h))))
    return (image * 255).round().to(torch.uint8)


def run_loop(trainee: Trainee, photos: Sequence[torch.Tensor], config: LoopConfig, device: torch.device,
             generator: torch.Generator, inputs: Sequence[torch.Tensor], options: dict,
             checkpoint: Optional[Checkpointer], callback: Optional[StepCallback], preview: Optional[Preview],
             validation: Optional[torch.Tensor]) -> tuple[int, float, list[dict]]:
    """Adam over the trainee's parameters on random crops of `photos`, `config.steps` steps or until
    `max_time`; checkpoints (module, Adam, the data generator, the log) keyed by `inputs` and
    `options`, so a resumed run continues exactly. Returns (steps done, seconds, loss log)."""
    from .distributed import any_rank, average_gradients, world

    rank, size = world()
    global_batch = dataclasses.replace(config, batch=config.batch * size) if size > 1 else config
    module = trainee.module
    optimizer = torch.optim.Adam(trainee.trainable, lr=config.learning_rate)
    log: list[dict] = []
    renders: list[dict] = []  # the latest validation renders (uint8), so a resumed run's preview sheet goes on
    shown = "" if validation is None else fingerprint([validation], {})  # which photo they are of
    step, elapsed = 0, 0.0
    if checkpoint is not None:
        # the photos too: a resume on another set would continue a run it was not (a checkpoint made before
        # they were fingerprinted goes on as it was made: by their count, for a decoder, or not at all)
        saved_options, digest = checkpoint.saved_options(), "photos" + DIGEST_SUFFIX
        if saved_options is not None and digest not in saved_options:
            options = {**options, **({"photos": len(photos)} if "photos" in saved_options else {})}
        else:
            options = {**options, "photos": len(photos), digest: fingerprint(photos, {})}
        saved = checkpoint.start(fingerprint(list(inputs), options), options["precision"],
                                 run_record(list(inputs), options), protect_others=True)
        if saved is not None:
            module.load_state_dict(saved["net"])
            optimizer.load_state_dict(saved["optimizer"])
            restore_rng(saved["rng"], generator)
            step, elapsed, log[:] = saved["step"], saved["elapsed"], saved["log"]
            renders[:] = saved.get("renders", []) if saved.get("validation") == shown else []
            if rank == 0 and preview is not None:
                for render in renders:
                    preview(render["step"], render["image"].float() / 255)
    start = time.monotonic() - elapsed

    def state() -> dict:
        return {"step": step, "elapsed": time.monotonic() - start, "net": module.state_dict(),
                "optimizer": optimizer.state_dict(), "rng": rng_state(generator), "log": log,
                "renders": renders, "validation": shown}

    def show_preview() -> None:
        """The validation photo through the network as it is now, kept for the sheet (once a step)."""
        if preview is None or validation is None or (renders and renders[-1]["step"] == step):
            return
        with torch.no_grad():
            module.eval()
            image = trainee.render(validation.to(device), step).clamp(0, 1).cpu()
            module.train()
        renders[:] = renders[-(PREVIEWS_KEPT - 1):] + [{"step": step, "image": _small_uint8(image)}]
        preview(step, image)

    overflowed = 0  # steps running whose gradients were not finite (skipped)
    # images a second over the wall time between steps, previews and checkpoints included, as the bar's s/step is
    # (the step's compute alone showed 6.3 img/s beside 1.11 step/s of 4 images)
    last_step_end = time.monotonic()
    while step < config.steps:
        if size == 1 and config.max_time is not None and time.monotonic() - start >= config.max_time:
            break
        for group in optimizer.param_groups:
            group["lr"] = config.rate_at(step)
        # every rank draws the same global batch and trains on its own slice of it
        batch = sample_batch(photos, global_batch, generator)[rank * config.batch:(rank + 1) * config.batch]
        batch = batch.to(device, memory_format=torch.channels_last)
        terms = trainee.loss(batch, step)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        average_gradients(trainee.trainable, size)  # the same on every rank, so is the choice below
        grads = [p.grad for p in trainee.trainable if p.grad is not None]
        if not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):  # one sync on a GPU
            optimizer.step()
            overflowed = 0
        else:  # a flat crop's instance norm divides by a variance near 0, which bf16 can overflow: skip the step
            overflowed += 1
            if overflowed >= MAX_OVERFLOWED_STEPS:
                raise PainterlyError(f"the gradients overflowed on {overflowed} steps running (flat photos in "
                                     f"{options['precision']}?); train with --precision fp32 or on other photos")
        step += 1
        losses = terms.floats()
        time_up = rank == 0 and config.max_time is not None and time.monotonic() - start >= config.max_time
        stop = checkpoint is not None and checkpoint.stop_signal is not None
        bad, time_up, stop = any_rank([not math.isfinite(losses["total"]), time_up, stop], size)
        if bad:
            raise PainterlyError("the training loss became NaN or infinite; lower the learning rate")
        log.append({"step": step, **losses})
        if callback is not None and rank == 0:
            callback(step, config.steps, losses, global_batch.batch / max(time.monotonic() - last_step_end, 1e-9))
        last_step_end = time.monotonic()
        if rank == 0 and (step % config.preview_every == 0 or step == config.steps or time_up):
            show_preview()
        if checkpoint is not None and size > 1 and stop:  # every rank stops here; rank 0 saves
            if rank == 0:
                checkpoint.save(state())
            raise Interrupted(0, 1, step, config.steps, checkpoint.path, unit="step")
        if checkpoint is not None and rank == 0:  # the state is the same on every rank
            checkpoint.after_step(step, state, (0, 1, step, config.steps), unit="step")
        if time_up and size > 1:
            break
    if rank == 0 and 0 < step < config.steps:  # cut short by max_time (here or at the loop's top): the last step's
        show_preview()                         # picture, as the summary says, and --resume goes on
    if checkpoint is not None and rank == 0 and step < config.steps:
        checkpoint.save(state())
    return step, time.monotonic() - start, log


def close_checkpoint(checkpoint: Optional[Checkpointer], steps_done: int, steps: int) -> None:
    """After the file is written: a finished run's checkpoint goes (or is marked finished); one that
    max_time cut short stays, so --resume can take the run on from where it stopped."""
    if checkpoint is not None and steps_done >= steps:
        checkpoint.finish()


def _unused_name(name: str, taken: Sequence[str]) -> str:
    """`name`, or `name 2`, `name 3`, ... where the model already holds a style called that."""
    candidates = (name if n == 1 else f"{name} {n}" for n in range(1, len(taken) + 2))
    return next(c for c in candidates if c not in taken)


def final_losses(log: list[dict]) -> dict[str, float]:
    return {k: v for k, v in log[-1].items() if k != "step"} if log else {}


class NetworkTrainee(Trainee):
    """A transformation network against a training objective, one style per batch (cycling)."""

    def __init__(self, net: TransformerNet, trainable: list, objective, first_style: int, precision: str,
                 device: torch.device, temporal_weight: float = 0.0, generator: Optional[torch.Generator] = None) -> None:
        self.module, self.trainable, self.objective = net, trainable, objective
        self.first_style, self.device = first_style, device
        self.temporal_weight, self.generator = temporal_weight, generator
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def weights(self, step: int) -> torch.Tensor:
        """The style a step trains: the run's styles in turn."""
        return self.style(self.first_style + step % self.objective.style_count)

    def style(self, index: int) -> torch.Tensor:
        """The one-hot weights of the model's style `index`."""
        return F.one_hot(torch.tensor(index), self.module.arch.styles).float().to(self.device)

    def loss(self, batch: torch.Tensor, step: int) -> LossTerms:
        with self.autocast:
            out = self.module(batch, self.weights(step)).float()
        terms = self.objective(out, batch, step % self.objective.style_count)
        if self.temporal_weight > 0:
            terms = LossTerms({**terms.terms, "temporal": self.temporal_loss(batch, out, step)})
        return terms

    def temporal_loss(self, batch: torch.Tensor, out: torch.Tensor, step: int) -> torch.Tensor:
        """weight · mean over pixels still in view of (net(moved photo) − moved output)², in 0..255 units:
        the short-term temporal loss of video training, on motion made from the still photo."""
        from .flow import move, random_motion

        grid = random_motion(batch.shape[0], tuple(batch.shape[-2:]), self.generator).to(batch.device)
        moved_photo, inside = move(batch, grid)
        moved_out, _ = move(out, grid)
        with self.autocast:
            out_of_moved = self.module(moved_photo.contiguous(memory_format=torch.channels_last),
                                       self.weights(step)).float()
        return self.temporal_weight * (inside * (255 * (out_of_moved - moved_out)) ** 2).mean()

    def render(self, photo: torch.Tensor, step: int) -> torch.Tensor:
        """The photo in each style this run trains, side by side in the model's order (one for a
        single-style network; the new one for --extend)."""
        styles = range(self.first_style, self.first_style + self.objective.style_count)
        return torch.cat([self.module(photo, self.style(k)) for k in styles], dim=-1)


# A training step's peak: process and VGG (the base) plus what a photo's pixel costs forward and back through
# the network or decoder and VGG. Measured (peak RSS, one step, a fresh process, the benchmarks' photos): the
# default network at crops 128-768 px and batches 1-4 took 4.8-5.4 KB a pixel in fp32 and 3.6 KB in bf16 over
# 530-770 MiB; AdaIN's decoder 4.1 KB (fp32), WCT's relu3_1 less. A step is refused only where even the floor
# (below every measurement) does not fit: a crop of 4000 px was killed at 24 GiB, taking a notebook with it.
# The crop it suggests instead is sized by the network's typical cost.
TRAINING_BASE_BYTES = 500 * 2**20
TRAINING_PIXEL_BYTES = {"fp32": (3500, 5200), "bf16": (2500, 3700)}  # (floor, typical) bytes a photo pixel


def check_training_memory(config: LoopConfig, precision: str, device: torch.device) -> None:
    """Refuse a crop and batch whose step cannot fit in the memory free, naming a crop that would. Every
    rank decides alike (one refusing alone would leave the others waiting on it); ranks sharing a CPU
    host share its memory."""
    from .distributed import any_rank, world

    _, size = world()
    floor, typical = TRAINING_PIXEL_BYTES.get(precision, TRAINING_PIXEL_BYTES["fp32"])
    sharing = size if device.type == "cpu" else 1  # torchrun's ranks here run on one host
    need = TRAINING_BASE_BYTES + floor * config.batch * config.crop ** 2  # a rank's
    free = free_memory_bytes(device)  # this rank's GPU, not the current one
    (refused,) = any_rank([sharing * need > free], size)
    if not refused:
        return
    share = free // sharing
    largest = int(max(0.0, (share - TRAINING_BASE_BYTES) / (typical * config.batch)) ** 0.5) // 16 * 16
    fits = f"a crop of about {largest} px fits" if largest >= 32 else "free some memory"
    ranks = f" for each of {sharing} ranks on this host" if sharing > 1 else ""
    raise PainterlyError(f"a training step at --crop {config.crop} and --batch {config.batch} needs at least "
                         f"{gib(need)} GiB{ranks} and {gib(free)} GiB is free: {fits}, or lower --batch")


def _prepare(config: LoopConfig, photos: PhotoFolders, validation: Optional[ImageLike],
             checkpoint: Optional[Checkpointer], check_memory: bool = True):
    from .distributed import any_rank, local_device, threads_per_rank, world

    device = local_device(resolve_device(config.device))
    share = threads_per_rank()
    threads = config.threads if checkpoint is None else checkpoint.pinned_threads(config.threads, share)
    set_threads(threads or share)  # first: precision auto times bf16 at these threads
    requested = config.precision if checkpoint is None else checkpoint.pinned_precision(config.precision)
    precision = resolve_precision(requested, device)
    # every rank in one precision: auto's timing may differ from rank to rank
    precision = "bf16" if any_rank([precision == "bf16"], world()[1])[0] else precision
    if check_memory:  # before the photos are read at the crop's scale
        check_training_memory(config, precision, device)
    photo_list, skipped = find_photos(photos, config.decode_side())
    if validation is not None:
        validation = as_tensor(validation, "validation photo")
        if min(validation.shape[-2:]) < 16:  # the network's and decoders' strides need that much
            h, w = validation.shape[-2:]
            raise PainterlyError(f"the validation photo is {w}x{h} px; each side must be at least 16 px")
    else:
        validation = resize(photo_list[0], fit_long_side(*photo_list[0].shape[-2:], 2 * config.crop))
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    return device, precision, photo_list, skipped, validation, generator


def _check_grown_architecture(asked: dict, arch: Architecture, config: TrainConfig, of: str) -> None:
    """Refuse an architecture option named that the --init model, grown by --widen or --deepen if given,
    does not have; where --widen or --deepen would grow it to that, say so."""
    widths, blocks = config.widen or arch.widths, config.deepen or arch.residual_blocks
    wider, deeper = asked.get("widths"), asked.get("residual_blocks")
    grows = [f"--{grow}" for grow in ("widen", "deepen") if getattr(config, grow) is not None]
    of = f"{of} grown by {' and '.join(grows)}" if grows else of
    kept = "a network trained further (--init)"
    can_widen = config.widen is None and wider is not None and all(a >= o for a, o in zip(wider, widths))
    refuse_other_architecture("widths", wider, tuple(widths), of, kept, f"--widen {shown(wider)}" if can_widen else "")
    can_deepen = config.deepen is None and deeper is not None and deeper > blocks
    refuse_other_architecture("residual_blocks", deeper, blocks, of, kept, f"--deepen {deeper}" if can_deepen else "")


def _start(styles: int, config: TrainConfig, asked: dict, extend: Union[None, str, os.PathLike],
           init: Union[None, str, os.PathLike]) -> tuple[Optional[TransformerNet], dict]:
    """The model `extend` or `init` names and its metadata (None, {}: a fresh network), checked against
    the run's `styles` (how many images) and the architecture options `asked` for by name."""
    if extend is not None:
        if styles != 1 and not config.style_set:
            raise PainterlyError("extend adds one style at a time (several images as one style: --style-set)")
        base, meta = starting_file(extend, KIND, "--extend takes painterly train's")
        for name, value in asked.items():
            refuse_other_architecture(name, value, getattr(base.arch, name), f"model '{extend}'",
                                      "a network --extend adds a style to")
        return base, meta
    if init is None:
        return None, {}
    net, meta = starting_file(init, KIND, "--init takes painterly train's")
    styles_in_net = styles if config.multi_style else 1
    if net.arch.styles != styles_in_net:
        hint = (f": give its {net.arch.styles} style images with --multi-style" if net.arch.styles > 1
                else ": give its one style image, without --multi-style")
        raise PainterlyError(f"model '{init}' holds {net.arch.styles} style(s); this run trains "
                             f"{styles_in_net}{hint}")
    _check_grown_architecture(asked, net.arch, config, f"model '{init}'")
    return net, meta


def train(styles: Union[ImageLike, Sequence[ImageLike]], photos: PhotoFolders, output: Union[str, os.PathLike],
          config: Optional[TrainConfig] = None, *, style_names: Optional[Sequence[str]] = None,
          validation: Optional[ImageLike] = None, extend: Union[None, str, os.PathLike] = None,
          init: Union[None, str, os.PathLike] = None,
          checkpoint: Union[None, str, os.PathLike, Checkpointer] = None,
          resume: Union[bool, str, os.PathLike] = False, callback: Optional[StepCallback] = None,
          extractor: Optional[FeatureExtractor] = None, preview: Optional[Preview] = None, **options) -> dict:
    """Train a network on `styles` (one or several paths, PIL images or tensors) and write it to
    `output`; returns the model file's metadata with the whole loss log.

        painterly.train("starry_night.jpg", "photos/", "starry.safetensors", steps=2000, crop=256)

    Several style images train one network of one blended style (each image's style loss, averaged;
    its name joins theirs with "+"), unless style_set pools them as one artist's works or multi_style
    gives each its own style in the network.
    config: a TrainConfig; options: its fields by name (over `config` where both are given).
    style_names: one per style image (default: file stems).
    validation: a photo rendered every `preview_every` steps and handed to `preview(step, image)`
    (default: the first readable training photo).
    extend: a multi-style model to add `styles[0]` to (only its normalisation parameters train).
    init: a model to start from (its architecture and weights) instead of random weights: more steps,
    photos or another weight on a trained network without starting over.
    With extend or init the model's architecture replaces the config's; `widths` or `residual_blocks`
    named among the options and not the model's is refused (the CLI names the flags it was given).
    checkpoint: a file (or a painterly.Checkpointer) the run's whole state is saved to every minute (the CLI's
    is MODEL.ckpt beside the model); resume=True continues that run exactly (a path for resume continues from
    that file), and a Checkpointer whose request_stop() is called (a signal handler: install_stop_handlers)
    saves and raises painterly.Interrupted at the next step. A run that config.max_time cuts short writes its
    model and keeps the checkpoint, so a resume takes it on. callback(step, steps, losses, images_per_s) after
    each step. Messages name the CLI's flags: `--steps` is `steps=` here.
    """
    config = config_with(TrainConfig, config, options)
    checkpoint = make_checkpointer(checkpoint, resume)
    asked = {name: getattr(config, name) for name in ("widths", "residual_blocks") if name in options}
    check_writable(output, (".safetensors",))  # before the training, not after it
    styles = image_list(styles)
    if not styles:
        raise PainterlyError("at least one style image is needed")
    files = [Path(s).resolve() for s in styles if isinstance(s, (str, os.PathLike))]
    twice = next((f for i, f in enumerate(files) if f in files[:i]), None)
    if twice is not None and config.multi_style:  # two of its styles would be one, under two names
        raise PainterlyError(f"style image '{twice.name}' is given twice; a multi-style network holds each style once")
    if extend is not None and init is not None:
        raise PainterlyError("extend and init both name the starting model; give one")
    for grow in ("widen", "deepen"):
        value = getattr(config, grow)
        if value is not None and extend is not None:  # not "give it with --init": init and extend exclude
            raise PainterlyError(f"--{grow} grows a model that then trains whole (--init); --extend trains only "
                                 f"the new style's scale and shift, on the model as it is: grow it first "
                                 f"(painterly train with its own style images, --init {extend} --{grow} "
                                 f"{shown(value)} -o GROWN.safetensors), then --extend GROWN.safetensors")
        if value is not None and init is None:
            raise PainterlyError(f"{grow} grows a trained model: give it with --init")
    if style_names is not None and (isinstance(style_names, str) or len(style_names) != len(styles)):
        count = 1 if isinstance(style_names, str) else len(style_names)
        raise PainterlyError(f"style_names names {count} style(s) for {len(styles)} style image(s); give one name "
                             "per image")
    if style_names is None:
        style_names = [Path(s).stem if isinstance(s, (str, os.PathLike)) else f"style {i + 1}"
                       for i, s in enumerate(styles)]
    styles = [as_tensor(s, "style image") for s in styles]
    base, meta = _start(len(styles), config, asked, extend, init)  # before any photo is read
    device, precision, photo_list, skipped, validation, generator = _prepare(config, photos, validation, checkpoint)
    objective_class = TRAINING_LOSSES[config.loss]
    if extractor is None:
        extractor = FeatureExtractor.vgg19(last_layer=objective_class.last_layer(config), precision=precision,
                                           device=device)
    names = list(style_names)
    one_name = ["+".join(names)] if not config.style_set else [f"set of {len(names)}: " + ", ".join(names)]
    if extend is not None:
        net = extended(base)
        config = dataclasses.replace(config, widths=net.arch.widths, residual_blocks=net.arch.residual_blocks)
        names = list(meta["styles"]) + [_unused_name(one_name[0], meta["styles"])]
        trainable = [p for n, p in net.named_parameters() if n.startswith("norms.")]
        keep = torch.ones(net.arch.styles, 1)
        keep[:-1] = 0  # the existing styles' rows get no gradient, so Adam never moves them
        for p in trainable:
            p.register_hook(lambda grad, keep=keep: grad * keep.to(grad))
    else:
        styles_in_net = len(styles) if config.multi_style else 1
        if init is not None:
            net = base
            if config.widen is not None:
                # its own generator: the photos and crops stay those of the same run without --widen
                net = widened(net, config.widen, torch.Generator().manual_seed(config.seed))
            if config.deepen is not None:
                net = deepened(net, config.deepen, torch.Generator().manual_seed(config.seed + 1))
            config = dataclasses.replace(config, widths=net.arch.widths, residual_blocks=net.arch.residual_blocks)
        else:
            net = TransformerNet(Architecture(tuple(config.widths), config.residual_blocks, styles_in_net))
        trainable = list(net.parameters())
        if not config.multi_style:
            names = one_name
    # channels-last and, where bf16 is native, bf16 autocast: the transformer's forward and backward
    # are most of a step (batch 4 at 256 px: 3.7 s fp32 -> 2.8 s channels-last -> 1.6 s bf16 on AMX)
    net = net.to(device, memory_format=torch.channels_last).train()
    for p in net.parameters():
        p.requires_grad_(any(p is q for q in trainable))
    objective = objective_class(extractor, [s.to(device) for s in styles], config, config.multi_style, generator)
    trainee = NetworkTrainee(net, trainable, objective, net.arch.styles - 1 if extend is not None else 0,
                             precision, device, config.temporal_weight, generator)
    options = {**dataclasses.asdict(config), "precision": precision, "extend": str(extend) if extend else None,
               "init": str(init) if init else None, "names": names}
    step, seconds, log = run_loop(trainee, photo_list, config, device, generator, styles, options, checkpoint,
                                  callback, preview, validation)
    info = {"styles": names, "training": {**dataclasses.asdict(config), "photos": len(photo_list),
                                          # the weights it trained at, not None for "the loss's default"
                                          "content_weight": config.content_weight_for(config.loss),
                                          "style_weight": config.style_weight_for(config.loss),
                                          "skipped": skipped, "steps_done": step, "wall_s": round(seconds, 1),
                                          "extended_from": str(extend) if extend else None,
                                          "initialised_from": str(init) if init else None},
            "losses": final_losses(log), "log": log[-1:]}
    from .distributed import world

    if world()[0] == 0:  # one writer
        save_model(output, net.eval(), info)
        close_checkpoint(checkpoint, step, config.steps)
    return {**info, "log": log}
