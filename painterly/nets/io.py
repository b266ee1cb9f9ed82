"""Model files: safetensors weights (fp16 where that measures the same) with the architecture, style
names, training options and final losses as JSON in the file's metadata. Nothing is unpickled; a
wrong, truncated or hostile file is refused in one line."""

from __future__ import annotations

import functools
import json
import os
import shlex
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..checkpoint import CHECKSUM_KEY, state_checksum
from ..errors import PainterlyError
from ..image import atomic_save
from .decoder import Decoder, DecoderArch
from .transformer import Architecture, TransformerNet

FORMAT = 1
METADATA_KEY = "painterly"
KIND = "transformer"
DECODER_KIND = "decoder"
# how messages name a file of each kind, and what such a file holds
NOUNS = {KIND: ("model", "style network"), DECODER_KIND: ("decoder", "decoder")}
# where each kind of file is used, for the message when one is given where the other belongs
USES = {KIND: "--model", DECODER_KIND: "--decoder (adain) or --decoders (wct)"}
# each method's decoder in words, and whether its training takes --level (WCT's: one decoder per level)
TRAINED_DECODERS = {"adain": ("an AdaIN decoder", False), "wct": ("a WCT decoder", True)}
MODELS = Path(__file__).resolve().parent.parent / "models"  # the bundled style networks
DECODERS = MODELS / "decoders"  # the bundled decoders of AdaIN and the WCT levels


def bundled_models() -> list[Path]:
    """The bundled style networks' files (painterly models), by name."""
    return sorted(MODELS.glob("*.safetensors")) if MODELS.is_dir() else []


def bundled_decoders() -> list[Path]:
    """The decoder files shipped in the package (AdaIN's and the WCT levels'), by name."""
    return sorted(DECODERS.glob("*.safetensors")) if DECODERS.is_dir() else []


def _named(name: str, kind: str) -> Path:
    """The bundled file of `kind` called `name`, else the file `name` names; a bare name that is
    neither gets a one-line error listing the bundled names."""
    noun = NOUNS[kind][0]
    if not name:
        raise PainterlyError(f"no {noun} given; name a bundled one (painterly models) or a .safetensors file")
    bundled = (MODELS if kind == KIND else DECODERS) / f"{name}.safetensors"
    if bundled.is_file():
        return bundled
    path = Path(name)
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        names = [p.stem for p in (bundled_models() if kind == KIND else bundled_decoders())]
        raise PainterlyError(f"no bundled {noun} '{name}' (bundled: {', '.join(names) or 'none'}) and no such file")
    return path


def model_path(name: Union[str, os.PathLike]) -> Path:
    """A bundled style network's file by name (painterly models), or the file a path names."""
    return _named(os.fspath(name), KIND)


def decoder_path(name: Union[str, os.PathLike]) -> Path:
    """A bundled decoder's file by name (painterly models), or the file a path names."""
    return _named(os.fspath(name), DECODER_KIND)


def bundled_file(name: str) -> Optional[Path]:
    """The bundled network or decoder called `name`, if there is one."""
    found = [folder / f"{name}.safetensors" for folder in (MODELS, DECODERS)]
    return next((p for p in found if p.is_file()), None)


def _write(path: Union[str, os.PathLike], module: torch.nn.Module, meta: dict[str, Any], dtype: torch.dtype) -> Path:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in module.state_dict().items()}
    text = json.dumps(meta)
    metadata = {METADATA_KEY: text, CHECKSUM_KEY: state_checksum(text, tensors)}
    atomic_save(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return Path(path)


def _read(path: Union[str, os.PathLike], kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata of a painterly file of `kind`; one-line errors for anything else."""
    from safetensors import safe_open

    path = Path(path)
    noun, what = NOUNS[kind]
    if not path.is_file():
        problem = "does not exist" if not path.exists() else "is not a file"
        raise PainterlyError(f"{noun} '{path}' {problem}")
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = f.metadata() or {}
            if METADATA_KEY not in stored:
                raise PainterlyError(f"{noun} '{path}' is a safetensors file without painterly's metadata: not a "
                                     f"painterly {what} (painterly train writes those)")
            meta = json.loads(stored[METADATA_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except PainterlyError:
        raise
    except Exception:  # noqa: BLE001 - not safetensors, truncated, damaged: all refused the same way
        raise PainterlyError(f"{noun} '{path}' is not a painterly {what} file (not safetensors, or truncated or "
                             f"damaged)") from None
    expected = stored.get(CHECKSUM_KEY)  # absent in files written before checksums (the bundled ones among them)
    if expected is not None and expected != state_checksum(stored[METADATA_KEY], tensors):
        raise PainterlyError(f"{noun} '{path}' is damaged: its checksum does not match its contents")
    saved = _checkpoint_state(meta)
    if saved is not None:  # OUT.ckpt for OUT.safetensors: a near miss that is no model file at all
        raise PainterlyError(f"'{path}' is {_checkpoint_advice(path, saved, noun)}")
    other = next((k for k in NOUNS if k != kind), None)
    if isinstance(meta, dict) and meta.get("kind") == other:
        raise PainterlyError(f"'{path}' is a painterly {NOUNS[other][1]}, not a {what}: give it with {USES[other]}")
    if not isinstance(meta, dict) or meta.get("kind") != kind or meta.get("format") != FORMAT:
        raise PainterlyError(f"{noun} '{path}' is not a painterly {what} of this version")
    broken = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken is not None:
        raise PainterlyError(f"{noun} '{path}' holds non-finite weights (NaN or infinity in {broken}): a damaged file "
                             f"or a training run that diverged")
    return tensors, meta


def _checkpoint_state(meta: Any) -> Optional[dict]:
    """The state entry of a checkpoint's metadata (checkpoint.split_state's skeleton: everything under one
    "$dict"), {} where it has none; None for metadata that is not a checkpoint's."""
    if not isinstance(meta, dict) or set(meta) != {"$dict"} or not isinstance(meta["$dict"], dict):
        return None
    state = meta["$dict"].get("state")
    return state.get("$dict", {}) if isinstance(state, dict) else {}


def _checkpoint_advice(path: Path, state: dict, noun: str) -> str:
    """What a checkpoint file is and what continues its run, for where a `noun` (model, decoder) file was
    wanted."""
    if "net" in state:  # a training's: painterly train and train-decoder save OUT.safetensors's as OUT.ckpt
        return (f"a training checkpoint, not a {noun} file: its training goes on with the same command plus "
                f"--resume (-o {path.with_suffix('.safetensors').name}), and writes the {noun} when it ends")
    return f"a checkpoint (a run's saved state), not a {noun} file: --resume continues the run that saved it"


def checkpoint_advice(path: Union[str, os.PathLike], noun: str = "model") -> Optional[str]:
    """For a checkpoint given where a `noun` file was wanted: what it is and what continues its run, in one
    line; None for any other file."""
    saved = _checkpoint_state(_metadata(path)) if Path(path).is_file() else None
    return None if saved is None else f"'{path}' is {_checkpoint_advice(Path(path), saved, noun)}"


def further_training(path: Union[str, os.PathLike]) -> Optional[tuple[str, str]]:
    """What a network or decoder file holds, in words, and the command that trains it further ('an AdaIN
    decoder', 'painterly train-decoder --method adain --init FILE'): for the message where it was given
    to the other kind's training. None for a file that is neither."""
    meta, name = _metadata(path), shlex.quote(os.fspath(path))
    if meta.get("kind") == KIND:
        return "a style network", f"painterly train --init {name} (or --extend {name})"
    if meta.get("kind") != DECODER_KIND:
        return None
    method, level = meta.get("method"), getattr(decoder_architecture(path), "level", None)
    if method not in TRAINED_DECODERS:
        return "a decoder", f"painterly train-decoder --init {name}"
    what, levelled = TRAINED_DECODERS[method]
    at = f" --level {level}" if levelled and level else ""
    return (f"{what} (level {level})" if at else what), f"painterly train-decoder --method {method}{at} --init {name}"


def _load_into(path: Union[str, os.PathLike], module: torch.nn.Module, tensors: dict[str, torch.Tensor],
               kind: str) -> None:
    """The file's weights into `module`; a one-line error naming the first weight that does not fit."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or extra or wrong:
        if wrong:
            k = wrong[0]
            first = f"{k} is {'x'.join(map(str, tensors[k].shape))}, the architecture needs " \
                    f"{'x'.join(map(str, expected[k].shape))}"
        else:
            first = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        count = len(missing) + len(extra) + len(wrong)
        raise PainterlyError(f"{NOUNS[kind][0]} '{path}' does not match the architecture its metadata states: {first}"
                             f"{f' (and {count - 1} more)' if count > 1 else ''}")
    module.load_state_dict({k: v.float() for k, v in tensors.items()})


def save_model(path: Union[str, os.PathLike], net: TransformerNet, info: dict[str, Any],
               dtype: torch.dtype = torch.float16) -> Path:
    """Write `net` and `info` (style names, training options, losses, ...) atomically."""
    return _write(path, net, {"format": FORMAT, "kind": KIND, "architecture": net.arch.to_json(), **info}, dtype)


def load_model(path: Union[str, os.PathLike]) -> tuple[TransformerNet, dict[str, Any]]:
    """The network in a model file (float32, eval mode) and its metadata: to look into or build on. To
    stylise, give stylize() the file (model=path), which loads it once a process and keeps it."""
    tensors, meta = _read(path, KIND)
    net = TransformerNet(Architecture.from_json(meta.get("architecture", {})))
    _load_into(path, net, tensors, KIND)
    if len(meta.get("styles", [])) != net.arch.styles:
        raise PainterlyError(f"model '{path}' names {len(meta.get('styles', []))} styles for {net.arch.styles}")
    return net.eval().requires_grad_(False), meta


def _metadata(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """A painterly file's metadata alone (no weights read); {} for a file that is not one: the loaders
    give the one-line error."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[METADATA_KEY])
    except Exception:  # noqa: BLE001 - unreadable, not safetensors, or no painterly metadata
        return {}
    return meta if isinstance(meta, dict) else {}


def model_architecture(path: Union[str, os.PathLike]) -> Architecture:
    """A model file's architecture from its metadata alone (no weights read): what plans need."""
    try:
        return Architecture.from_json(_metadata(path)["architecture"])
    except Exception:  # noqa: BLE001 - unreadable here; load_model gives the one-line error at run time
        return Architecture()


def decoder_architecture(path: Union[str, os.PathLike]) -> Optional[DecoderArch]:
    """A decoder file's architecture from its metadata alone (no weights read): what plans need. None
    where it is not readable (load_decoder gives the one-line error at run time)."""
    try:
        return DecoderArch.from_json(_metadata(path)["architecture"])
    except Exception:  # noqa: BLE001
        return None


def is_decoder_file(path: Union[str, os.PathLike]) -> bool:
    """Whether the file says it holds a decoder (AdaIN's or a WCT level's) rather than a style network."""
    return _metadata(path).get("kind") == DECODER_KIND


def is_network_file(path: Union[str, os.PathLike]) -> bool:
    """Whether the file says it holds a style network (painterly train's) rather than a decoder."""
    return _metadata(path).get("kind") == KIND


def save_decoder(path: Union[str, os.PathLike], decoder: Decoder, info: dict[str, Any],
                 dtype: torch.dtype = torch.float16) -> Path:
    """Write a decoder (AdaIN's or one WCT level's) and `info` atomically."""
    return _write(path, decoder, {"format": FORMAT, "kind": DECODER_KIND, "architecture": decoder.arch.to_json(),
                                  **info}, dtype)


def load_decoder(path: Union[str, os.PathLike]) -> tuple[Decoder, dict[str, Any]]:
    """The decoder in a decoder file (float32, eval mode) and its metadata."""
    tensors, meta = _read(path, DECODER_KIND)
    decoder = Decoder(DecoderArch.from_json(meta.get("architecture", {})))
    _load_into(path, decoder, tensors, DECODER_KIND)
    return decoder.eval().requires_grad_(False), meta


def weights_dtype(precision: str) -> torch.dtype:
    """The dtype a network's weights are stored in for a run in `precision`: bf16 where the run computes
    in bf16 (casting them at every call, as autocast does, was a sixth of a pass), else fp32 (int8 runs
    keep fp32 weights beside their packed int8 layers)."""
    return torch.bfloat16 if precision == "bf16" else torch.float32


def prepared_model(path: Union[str, os.PathLike], device: torch.device, precision: str
                   ) -> tuple[TransformerNet, dict[str, Any]]:
    """load_model's network on `device` with its weights in `precision`'s dtype, channels-last, and a copy
    of its metadata, loaded once per process for the same file unchanged (its inode, size and
    modification time), as the VGG19 encoder is: repeated runs (the web app, a batch, an API loop) skip
    reading and preparing it, 7% of a 1024 px pass. The network is shared: runs only read it and must
    not change it."""
    return _shared(KIND, path, device, weights_dtype(precision))


def prepared_decoder(path: Union[str, os.PathLike], device: torch.device, precision: str
                     ) -> tuple[Decoder, dict[str, Any]]:
    """load_decoder's decoder, shared as prepared_model's network is."""
    return _shared(DECODER_KIND, path, device, weights_dtype(precision))


def _shared(kind: str, path: Union[str, os.PathLike], device: torch.device, dtype: torch.dtype) -> tuple[Any, dict]:
    try:
        path = Path(path).resolve()
        st = path.stat()
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None  # the loader gives the one-line error
    module, meta = _prepared(kind, str(path), stamp, str(torch.device(device)), dtype)
    return module, json.loads(json.dumps(meta))


@functools.lru_cache(maxsize=16)  # WCT alone reads five decoders
def _prepared(kind: str, path: str, stamp: Any, device: str, dtype: torch.dtype) -> tuple[torch.nn.Module, dict]:
    module, meta = (load_model if kind == KIND else load_decoder)(path)
    return module.to(torch.device(device), dtype, memory_format=torch.channels_last), meta


def starting_file(name: Union[str, os.PathLike], kind: str, takes: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The style network or decoder (`kind`) a training starts from; a file of the other kind is told what it
    is and the command that trains it further (`takes`: what the flag takes instead), not the stylise flag
    that would take it."""
    path = _named(os.fspath(name), kind)
    if _metadata(path).get("kind") == next(k for k in NOUNS if k != kind):
        what, command = further_training(path)
        raise PainterlyError(f"'{path}' is {what}, not a {NOUNS[kind][1]} ({takes}): {command} trains it further")
    return load_model(path) if kind == KIND else load_decoder(path)
