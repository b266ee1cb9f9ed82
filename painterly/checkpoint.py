"""Checkpoints: a run's whole state, saved atomically every N iterations or S seconds, resumed exactly.

Method-agnostic. A method's run() loop asks `Checkpointer.start(fingerprint)` for saved state (None
for a fresh run), rebuilds its parameterisation and optimiser, loads their state_dicts, and calls
`Checkpointer.after_step(...)` from its per-iteration hook with a function that builds the state.
A signal handler (the CLI's) calls `request_stop()`; the next iteration boundary then saves a
checkpoint and raises `Interrupted`, so the saved state is always between two whole iterations.

What a checkpoint holds (torch.save of a dict): format version, a sha256 fingerprint of the inputs'
pixels and the result-changing options, and the method's state: scale index, iteration within the
scale, global step, elapsed seconds, parameterisation and optimiser state_dicts (L-BFGS's includes
its curvature history), RNG states, plus `extra` lists (e.g. the CLI's loss log).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import torch

from .errors import PainterlyError
from .image import atomic_write

FORMAT = 1
# Config fields that never change the resulting image, so a resume may alter them freely.
NOT_IN_FINGERPRINT = frozenset({"max_time", "device"})


class Interrupted(KeyboardInterrupt):
    """A stop requested by a signal, honoured at an iteration boundary after saving a checkpoint."""

    def __init__(self, scale: int, scales: int, iteration: int, iterations: int, checkpoint: Optional[Path],
                 image: Any = None, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted at scale {scale + 1}/{scales} iteration {iteration}/{iterations}")
        self.scale, self.scales, self.iteration, self.iterations = scale, scales, iteration, iterations
        self.checkpoint = checkpoint
        self.image = image  # the current image (a tensor from the method; the API makes it a PIL image)
        self.signum = signum

    @property
    def where(self) -> str:
        return str(self.args[0]).replace("interrupted at ", "")


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
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    skip = set(ignore)
    kept = {k: v for k, v in options.items() if k not in skip}
    h.update(json.dumps(kept, sort_keys=True, default=str).encode())
    return h.hexdigest()


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
        self._last_save = time.monotonic()
        self._save_cost = 0.0

    # --- used by signal handlers ---
    def request_stop(self, signum: int = signal.SIGINT) -> None:
        self.stop_signal = signum

    # --- used by a method's run() ---
    def start(self, fingerprint: str) -> Optional[dict]:
        """Remember the run's fingerprint; on resume return the saved state (else None)."""
        self._fingerprint = fingerprint
        self._last_save = time.monotonic()
        if not self.resume:
            return None
        if not self.path.exists():
            raise PainterlyError(f"no checkpoint '{self.path}' to resume from")
        try:
            data = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:  # truncated, not a checkpoint, ...
            raise PainterlyError(f"checkpoint '{self.path}' cannot be read ({type(exc).__name__}); "
                                 "delete it to start afresh") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PainterlyError(f"'{self.path}' is not a painterly checkpoint of this version; delete it to start afresh")
        if data.get("fingerprint") != fingerprint:
            raise PainterlyError(f"checkpoint '{self.path}' was made with other input images or options; "
                                 "resume with exactly the same ones, or delete it to start afresh")
        for key, values in data.get("extra", {}).items():
            self.extra.setdefault(key, [])[:] = values
        return data["state"]

    def due(self, step: int) -> bool:
        if self.every is not None and step % self.every == 0:
            return True
        if self.seconds is not None:
            return time.monotonic() - self._last_save >= max(self.seconds, 10 * self._save_cost)
        return False

    def save(self, state: dict) -> Path:
        """Write atomically: a temporary file in the same folder, then os.replace."""
        t0 = time.monotonic()
        data = {"format": FORMAT, "fingerprint": self._fingerprint, "state": state, "extra": self.extra}

        def write(fh) -> None:
            torch.save(data, fh)
            fh.flush()
            os.fsync(fh.fileno())  # a checkpoint must survive a power cut, not just a crash

        atomic_write(self.path, write)
        self.saved += 1
        self._last_save = time.monotonic()
        self._save_cost = self._last_save - t0
        return self.path

    def after_step(self, step: int, state: Callable[[], dict], where: tuple[int, int, int, int],
                   render: Optional[Callable[[], Any]] = None) -> None:
        """Call once per finished iteration. where = (scale, scales, iteration, iterations).

        Saves when due; if a stop was requested, saves and raises Interrupted (with render()'s image).
        """
        if self.stop_signal is not None:
            self.save(state())
            raise Interrupted(*where, checkpoint=self.path, image=render() if render else None,
                              signum=self.stop_signal)
        if self.due(step):
            try:
                self.save(state())
            except OSError as exc:  # a full disk must not end a long run; a stop request still raises
                self._last_save = time.monotonic()
                if not self.save_failed:
                    warnings.warn(f"painterly: could not save checkpoint '{self.path}' ({exc.strerror or exc}); "
                                  "the run goes on", RuntimeWarning, stacklevel=2)
                self.save_failed = True

    def finish(self) -> None:
        """After a successful run: remove the checkpoint unless asked to keep it."""
        if not self.keep:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


def install_stop_handlers(checkpointer: Checkpointer, on_first: Optional[Callable[[int], None]] = None,
                          signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Callable[[], None]:
    """SIGINT/SIGTERM: the first asks for a checkpointed stop at the next iteration boundary, a
    second aborts at once (KeyboardInterrupt). Returns a function that restores the old handlers.
    Does nothing outside the main thread (where Python cannot install handlers)."""
    previous = {}

    def handler(signum, frame):
        if checkpointer.stop_signal is not None:
            raise KeyboardInterrupt
        checkpointer.request_stop(signum)
        if on_first is not None:
            on_first(signum)

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
