"""Checkpoints: a run's whole state, saved atomically every N iterations or S seconds, resumed exactly.

Method-agnostic. A method's run() loop asks `Checkpointer.start(fingerprint)` for saved state (None
for a fresh run), rebuilds its parameterisation and optimiser, loads their state_dicts, and calls
`Checkpointer.after_step(...)` from its per-iteration hook with a function that builds the state.
A signal handler (the CLI's) calls `request_stop()`; the next iteration boundary then saves a
checkpoint and raises `Interrupted`, so the saved state is always between two whole iterations.

What a checkpoint holds: format version, a sha256 fingerprint of the inputs' pixels and the
result-changing options, and the run's state: scale index, iteration within the scale, global step,
elapsed seconds, parameterisation and optimiser state_dicts (L-BFGS's includes its curvature
history), RNG states, plus `extra` lists (e.g. the CLI's loss log). A sha256 over all of it
(`state_checksum`) refuses a damaged file instead of resuming from it.

The file is safetensors: every tensor of the state stored as a tensor, and the rest (numbers,
strings, the nesting of dicts and lists) as JSON in the file's metadata, with each tensor's place
marked by its key. Reading it runs no code: nothing is unpickled, so a crafted file can at worst be
refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import torch

from .errors import PainterlyError
from .hardware import resumed_threads
from .image import atomic_save

FORMAT = 2
# Config fields a resume may alter freely: they do not change what the run computes, only how fast.
NOT_IN_FINGERPRINT = frozenset({"max_time", "device", "threads"})  # threads: pinned instead (pinned_threads)
METADATA_KEY = "painterly"
CHECKSUM_KEY = "painterly_sha256"  # over the JSON and every tensor's bytes: a damaged file is refused, not resumed


class Interrupted(KeyboardInterrupt):
    """A stop requested by a signal, honoured at an iteration boundary after saving a checkpoint."""

    def __init__(self, scale: int, scales: int, iteration: int, iterations: int, checkpoint: Optional[Path],
                 image: Any = None, signum: int = signal.SIGINT, unit: str = "iteration") -> None:
        at = f"scale {scale + 1}/{scales} " if unit == "iteration" else ""  # a training has steps, no scales
        super().__init__(f"interrupted at {at}{unit} {iteration}/{iterations}")
        self.scale, self.scales, self.iteration, self.iterations = scale, scales, iteration, iterations
        self.checkpoint = checkpoint
        self.image = image  # the current image (a tensor from the method; the API makes it a PIL image)
        self.signum = signum

    @property
    def where(self) -> str:
        return str(self.args[0]).replace("interrupted at ", "")


DIGEST_SUFFIX = "_sha256"  # an option holding a digest of images (a training's photos), named so


def fingerprint(tensors: Iterable[Optional[torch.Tensor]], options: Mapping[str, Any],
                ignore: Iterable[str] = NOT_IN_FINGERPRINT) -> str:
    """sha256 over the input pixel tensors (shape, dtype and bytes) and the options' JSON."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none;")
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype};".encode())
        h.update(t.numpy() if t.dtype != torch.bfloat16 else t.float().numpy())  # read in place, not copied
    skip = set(ignore)
    kept = {k: v for k, v in options.items() if k not in skip}
    h.update(json.dumps(kept, sort_keys=True, default=str).encode())
    return h.hexdigest()


def run_record(tensors: Iterable[Optional[torch.Tensor]], options: Mapping[str, Any],
               ignore: Iterable[str] = NOT_IN_FINGERPRINT) -> dict:
    """What a fingerprint covers, readably: each input's sha256 and the options as JSON values. A
    checkpoint keeps it, so a resume it refuses can say what differs (`what_differs`)."""
    def digest(t: Optional[torch.Tensor]) -> Optional[str]:
        return None if t is None else fingerprint([t], {})

    skip = set(ignore)
    kept = {k: v for k, v in options.items() if k not in skip}
    return {"inputs": [digest(t) for t in tensors], "options": json.loads(json.dumps(kept, default=str))}


def what_differs(then: Any, now: dict) -> str:
    """The options whose values differ between two run records (`run_record`), and whether the input
    images do, in words: "steps 30 then, 40 now; the input images differ". "" where `then` is no record
    (a file from before records were kept) or nothing readable differs."""
    if not isinstance(then, dict) or not isinstance(then.get("options"), dict):
        return ""
    old, new = then["options"], now["options"]
    keys = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    # a digest's value says nothing to a reader: "the photos differ" for photos_sha256
    words = [f"the {key.removesuffix(DIGEST_SUFFIX).replace('_', ' ')} differ" if key.endswith(DIGEST_SUFFIX)
             else f"{key} {json.dumps(old.get(key))} then, {json.dumps(new.get(key))} now" for key in keys]
    if then.get("inputs") != now["inputs"]:
        words.append("the input images differ")
    return "; ".join(words)


def rng_state(generator: Optional[torch.Generator] = None) -> dict:
    state = {"torch": torch.get_rng_state()}
    if generator is not None:
        state["generator"] = generator.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: Optional[torch.Generator] = None) -> None:
    torch.set_rng_state(state["torch"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def default_path(output: Union[str, os.PathLike]) -> Path:
    """OUT.png -> OUT.ckpt beside it."""
    return Path(output).with_suffix(".ckpt")


class Checkpointer:
    """Where and how often to save; loads and verifies on resume; honours stop requests.

    every: save every N global steps (None: off). seconds: save when this long has passed since the
    last save (None or 0: off); the interval is stretched to at least 10x the last save's duration so
    that writing a large L-BFGS history never costs more than ~10% of the run. resume: load `path`
    at start (it must exist and match). keep: leave the file after a successful run (default: removed).
    extra: named lists saved with every checkpoint and refilled in place on resume (e.g. a loss log).
    """

    def __init__(self, path: Union[str, os.PathLike], every: Optional[int] = None, seconds: Optional[float] = 60.0,
                 resume: bool = False, keep: bool = False) -> None:
        if every is not None and every < 1:
            raise PainterlyError(f"checkpoint-every must be at least 1, got {every}")
        if seconds is not None and seconds < 0:
            raise PainterlyError(f"checkpoint-seconds must not be negative, got {seconds}")
        self.path = Path(path)
        self.every = every
        self.seconds = seconds or None
        self.resume = resume
        self.keep = keep
        self.extra: dict[str, list] = {}
        self.stop_signal: Optional[int] = None
        self.saved = 0             # checkpoints written by this run
        self.save_failed = False   # a periodic save failed (e.g. disk full); the run went on
        self._fingerprint: Optional[str] = None
        self._precision: Optional[str] = None  # what the run computes in, kept for its resume
        self._record: Optional[dict] = None     # the inputs' digests and the options, for a refusal to name
        self._last_save = time.monotonic()
        self._save_cost = 0.0
        self._latest: Optional[Callable[[], dict]] = None  # the last step's state, which a kept checkpoint ends on

    # --- used by signal handlers ---
    def request_stop(self, signum: int = signal.SIGINT) -> None:
        self.stop_signal = signum

    # --- used by a method's run() ---
    def _recorded(self, key: str) -> Any:
        """A top-level entry of the checkpoint this run resumes (None: a fresh run, or none readable)."""
        return self._saved(key) if self.resume else None

    def _saved(self, key: str) -> Any:
        """A top-level entry of the checkpoint file there is (None: none, or none readable)."""
        if not self.path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(self.path), framework="pt") as f:
                return json.loads((f.metadata() or {})[METADATA_KEY])["$dict"].get(key)
        except Exception:  # noqa: BLE001 - unreadable: start() gives the one-line error
            return None

    def saved_record(self) -> Optional[dict]:
        """The run record (run_record) of the checkpoint there (None: none, or none readable)."""
        try:
            record = _join(self._saved("record"), {})
        except (ValueError, KeyError, TypeError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("options"), dict) else None

    def saved_options(self) -> Optional[dict]:
        """The options the checkpoint there was made with (None: none, or none readable): how a run made by
        an older version is continued as it was made."""
        record = self.saved_record()
        return None if record is None else record["options"]

    def saved_extra(self, name: str) -> Optional[list]:
        """One of the `extra` lists of the checkpoint there (None: none, or none readable): what a run
        carried with it (the loss log) read without resuming it, as for a run cancelled and never resumed."""
        try:
            values = _join(self._saved("extra"), {}).get(name)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return values if isinstance(values, list) else None

    def saved_long_side(self) -> Optional[int]:
        """The output's long side in the checkpoint this run resumes (None: none): what size "max" chose."""
        try:
            final = self._recorded("state")["$dict"]["plan"][-1]["$dict"]
            return max(int(final["height"]), int(final["width"]))
        except (TypeError, KeyError, IndexError, ValueError):
            return None

    def pinned_precision(self, requested: str) -> str:
        """The precision a run asked for `requested` computes in: on resume, 'auto' becomes the precision
        the saved run computed in. auto times bf16 (and int8) in each process, and on a busy machine a
        later process may choose otherwise; another precision would not continue the run exactly."""
        if requested != "auto":
            return requested
        recorded = self._recorded("precision")
        return recorded if recorded in ("fp32", "bf16", "int8") else requested

    def pinned_threads(self, requested: Optional[int], default: Optional[int] = None) -> Optional[int]:
        """The CPU threads a resumed run uses: the saved run's unless others are asked for or forced
        (hardware.resumed_threads)."""
        return resumed_threads(self._recorded("threads"), requested, f"'{self.path}'", default)

    def start(self, fingerprint: str, precision: Optional[str] = None, record: Optional[dict] = None,
              protect_others: bool = False) -> Optional[dict]:
        """Remember the run's fingerprint, the precision it computes in and its `run_record` (what a
        refused resume names as differing); on resume return the saved state (else None).
        `protect_others`: a fresh run refuses to replace another unfinished run's checkpoint too (a
        training's hours), not only its own."""
        self._fingerprint, self._precision, self._record = fingerprint, precision, record
        self._last_save = time.monotonic()
        if not self.resume:
            saved = self._saved("fingerprint")
            if saved is None or self._saved("finished"):
                return None
            if saved == fingerprint:  # the same run started again: starting over would lose its progress
                raise PainterlyError(f"'{self.path}' holds this run's progress: resume it (--resume), or delete it "
                                     "to start afresh")
            if protect_others:
                differs = what_differs(self.saved_record(), record) if record is not None else ""
                raise PainterlyError(f"'{self.path}' holds the progress of another run"
                                     f"{f' ({differs})' if differs else ''}: resume that run with its own options, "
                                     "delete the file, or write this one elsewhere")
            return None
        if not self.path.exists():
            raise PainterlyError(f"no checkpoint '{self.path}' to resume from")
        data = read_checkpoint(self.path)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PainterlyError(f"'{self.path}' is not a painterly checkpoint of this version; delete it to start afresh")
        if data.get("fingerprint") != fingerprint:
            differs = what_differs(data.get("record"), record) if record is not None else ""
            raise PainterlyError(f"checkpoint '{self.path}' was made with other input images or options"
                                 f"{f' ({differs})' if differs else ''}; resume with exactly the same ones, or "
                                 "delete it to start afresh")
        for key, values in data.get("extra", {}).items():
            self.extra.setdefault(key, [])[:] = values
        return data["state"]

    def due(self, step: int) -> bool:
        if self.every is not None and step % self.every == 0:
            return True
        if self.seconds is not None:
            return time.monotonic() - self._last_save >= max(self.seconds, 10 * self._save_cost)
        return False

    def save(self, state: dict, finished: bool = False) -> Path:
        """Write atomically: a temporary file in the same folder, then os.replace."""
        t0 = time.monotonic()
        data = {"format": FORMAT, "fingerprint": self._fingerprint, "precision": self._precision,
                "threads": torch.get_num_threads(), "record": self._record, "state": state, "extra": self.extra}
        if finished:
            data["finished"] = True
        write_checkpoint(self.path, data)
        self.saved += 1
        self._last_save = time.monotonic()
        self._save_cost = self._last_save - t0
        return self.path

    def after_step(self, step: int, state: Callable[[], dict], where: tuple[int, int, int, int],
                   render: Optional[Callable[[], Any]] = None, unit: str = "iteration") -> None:
        """Call once per finished iteration. where = (scale, scales, iteration, iterations); unit: what
        the run counts ("step" for a training, which has no scales).

        Saves when due; if a stop was requested, saves and raises Interrupted (with render()'s image).
        """
        if self.keep:  # what finish() saves; else nothing of the run is held after it
            self._latest = state
        if self.stop_signal is not None:
            self._latest = None
            self.save(state())
            raise Interrupted(*where, checkpoint=self.path, image=render() if render else None,
                              signum=self.stop_signal, unit=unit)
        if self.due(step):
            try:
                self.save(state())
            except OSError as exc:  # a full disk must not end a long run; a stop request still raises
                self._last_save = time.monotonic()
                if not self.save_failed:
                    print(f"painterly: warning: could not save checkpoint '{self.path}' ({exc.strerror or exc}); "
                          "the run goes on", file=sys.stderr)
                self.save_failed = True

    def finish(self) -> None:
        """After a successful run: remove the checkpoint, or where asked to keep it mark it as a finished
        run's, which the same run started again may replace (an unfinished one it may not: see start)."""
        if not self.keep:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            return
        if self._latest is not None:  # the run's end, also where it ended before the first save was due
            latest, self._latest = self._latest, None  # the state holds the run's tensors: let them go
            self.save(latest(), finished=True)
        elif self.path.is_file():
            write_checkpoint(self.path, {**read_checkpoint(self.path), "finished": True})


def make_checkpointer(checkpoint: Union[None, str, os.PathLike, Checkpointer] = None,
                      resume: Union[bool, str, os.PathLike] = False, every: Optional[int] = None,
                      seconds: Optional[float] = 60.0, keep: bool = False) -> Optional[Checkpointer]:
    """The Checkpointer for stylize()'s and train()'s checkpoint/resume arguments: a ready one, a path, or
    None (no checkpoints); resume True continues from `checkpoint`, a path continues from that file."""
    if isinstance(checkpoint, Checkpointer):
        if resume:
            checkpoint.resume = True
        return checkpoint
    if resume is not False and resume is not None and not isinstance(resume, bool):
        checkpoint = resume
    if checkpoint is None:
        if resume:
            raise PainterlyError("resume=True needs checkpoint=PATH (or pass the checkpoint's path as resume)")
        if every is not None or keep:  # asked for checkpoints, with nowhere to write them
            raise PainterlyError(f"{'checkpoint_every' if every is not None else 'keep_checkpoint'} needs "
                                 "checkpoint=PATH")
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise PainterlyError(f"checkpoint must be a file path or a painterly.Checkpointer, got "
                             f"{type(checkpoint).__name__}")
    return Checkpointer(checkpoint, every=every, seconds=seconds, resume=bool(resume), keep=keep)


# --- the file format -------------------------------------------------------------------------------

def _split(value: Any, tensors: dict[str, torch.Tensor], seen: dict[int, str]) -> Any:
    """`value` as JSON-ready data with each tensor replaced by {"$tensor": key} (stored in `tensors`)."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:  # safetensors refuses shared storage: store a copy
            t = t.clone()
        key = f"t{len(tensors)}"
        tensors[key] = t.contiguous()
        if ptr is not None:
            seen[ptr] = key
        return {"$tensor": key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"$dict": {k: _split(v, tensors, seen) for k, v in value.items()}}
        return {"$items": [[_split(k, tensors, seen), _split(v, tensors, seen)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$tuple": [_split(v, tensors, seen) for v in value]}
    if isinstance(value, list):
        return [_split(v, tensors, seen) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a checkpoint cannot hold a {type(value).__name__}")


def _join(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of _split."""
    if isinstance(value, list):
        return [_join(v, tensors) for v in value]
    if isinstance(value, dict):
        (kind, inner), = value.items()
        if kind == "$tensor":
            return tensors[inner]
        if kind == "$dict":
            return {k: _join(v, tensors) for k, v in inner.items()}
        if kind == "$items":
            return {_join(k, tensors): _join(v, tensors) for k, v in inner}
        if kind == "$tuple":
            return tuple(_join(v, tensors) for v in inner)
        raise ValueError(f"unknown entry {kind}")
    return value


def state_checksum(skeleton: str, tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a safetensors file's JSON metadata and each tensor's name, dtype, shape and bytes, in name
    order: what checkpoints and model files store, so a few damaged bytes are refused, not used."""
    digest = hashlib.sha256(skeleton.encode())
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())  # hashed in place, not copied
    return digest.hexdigest()


def split_state(data: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A checkpoint's tensors and its safetensors metadata (the non-tensor structure as JSON, and a checksum
    over both)."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = json.dumps(_split(dict(data), tensors, {}))
    return tensors, {METADATA_KEY: skeleton, CHECKSUM_KEY: state_checksum(skeleton, tensors)}


def encode_state(data: Mapping[str, Any]) -> bytes:
    """A checkpoint's bytes: safetensors with the non-tensor structure as JSON metadata."""
    from safetensors.torch import save

    return save(*split_state(data))


def _assemble(metadata: Optional[Mapping[str, str]], tensors: Mapping[str, torch.Tensor]) -> dict:
    """The state split_state stored; ValueError where the checksum (absent in files written before it
    existed) does not match, so a few flipped bytes are refused instead of resumed."""
    text = (metadata or {})[METADATA_KEY]
    expected = (metadata or {}).get(CHECKSUM_KEY)
    if expected is not None and expected != state_checksum(text, tensors):
        raise ValueError("checksum mismatch")
    data = _join(json.loads(text), tensors)
    if not isinstance(data, dict):
        raise ValueError("not a state")
    return data


def decode_state(payload: bytes) -> dict:
    """The dict encode_state wrote; ValueError (or a safetensors error) for anything else."""
    from safetensors.torch import load

    if len(payload) < 8:
        raise ValueError("too short")
    header_length = int.from_bytes(payload[:8], "little")
    if header_length > len(payload) - 8:
        raise ValueError("truncated header")
    header = json.loads(payload[8:8 + header_length])
    return _assemble(header.get("__metadata__"), load(payload))


def write_checkpoint(path: Path, data: Mapping[str, Any]) -> None:
    """`data` (read_checkpoint's kind) written atomically and durably: a checkpoint must survive a power
    cut, not just a crash."""
    from safetensors.torch import save_file

    tensors, metadata = split_state(data)
    atomic_save(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), durable=True)


def read_checkpoint(path: Path) -> dict:
    """A checkpoint file's contents, or a one-line PainterlyError naming the file."""
    from safetensors import safe_open

    if not path.is_file():
        raise PainterlyError(f"checkpoint '{path}' cannot be read (not a file)")
    try:
        with safe_open(str(path), framework="pt") as f:  # validates the header and every tensor's extent
            return _assemble(f.metadata(), {key: f.get_tensor(key) for key in f.keys()})
    except OSError as exc:
        raise PainterlyError(f"checkpoint '{path}' cannot be read ({exc.strerror or exc})") from None
    except Exception as exc:  # truncated, damaged, not a checkpoint, hostile: all refused the same way
        why = "damaged: its checksum does not match" if str(exc) == "checksum mismatch" else type(exc).__name__
        raise PainterlyError(f"checkpoint '{path}' is not a readable painterly checkpoint ({why}); "
                             "delete it to start afresh") from None


def install_stop_handlers(checkpointer: Checkpointer, on_first: Optional[Callable[[int], None]] = None,
                          signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Callable[[], None]:
    """SIGINT/SIGTERM: the first asks for a checkpointed stop at the next iteration boundary, a
    second aborts at once (KeyboardInterrupt). Returns a function that restores the old handlers.
    Does nothing outside the main thread (where Python cannot install handlers)."""
    def handler(signum, frame):
        if checkpointer.stop_signal is not None:
            raise KeyboardInterrupt
        checkpointer.request_stop(signum)
        if on_first is not None:
            on_first(signum)

    return install_signal_handlers(handler, signals)


def install_signal_handlers(handler: Callable, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)
                            ) -> Callable[[], None]:
    """`handler` for each of `signals` (signal.default_int_handler: each a Ctrl-C, also where the shell
    started the process with SIGINT ignored); returns a function that puts back the handlers found. Does
    nothing outside the main thread (where Python cannot install handlers)."""
    previous = {}
    try:
        for s in signals:
            previous[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread
        pass

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    return restore


def restore_state(saved: dict, param: "torch.nn.Module", optimizer: "torch.optim.Optimizer",
                  generator: "torch.Generator") -> int:
    """Load a checkpoint's parameterisation, optimiser and RNG state; return the iterations already done."""
    param.load_state_dict(saved["param"])
    optimizer.load_state_dict(saved["optimizer"])
    restore_rng(saved["rng"], generator)
    return saved["iteration"]
