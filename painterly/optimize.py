"""The optimisation loop: step a parameterisation to lower an objective, report every step.

It knows nothing of which method, loss or parameterisation it runs.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional

import torch
from torch import nn

from .errors import PainterlyError
from .losses import LossTerms

LossFunction = Callable[[torch.Tensor], LossTerms]
StepHook = Callable[[int, LossTerms], None]

# In the 0..255 units PixelImage optimises in (neural-style uses the same Adam rate).
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 10.0}
# RMSprop is used by STROTSS on Laplacian-pyramid coefficients in [0, 1] image units (its rate).
DEFAULT_LEARNING_RATES_OTHER_UNITS = {"rmsprop": 2e-3}


class WarmStartLBFGS(torch.optim.LBFGS):
    """torch's L-BFGS whose first step can be -h0 * lr * g instead of a step normalised by |g|_1.

    A fresh L-BFGS takes a first step of lr / |g|_1 along -g, which for an image of a million
    pixels moves it by almost nothing: one wasted iteration. A tiled scale runs a fresh optimiser per
    tile for a few iterations each, so that waste is a large share; each tile starts instead with the
    inverse-Hessian scale (H_diag) an earlier optimiser on a similar problem learnt, which is the
    scale its own second step would use. From the second step on it is torch's L-BFGS unchanged.
    """

    def __init__(self, params: Iterable[torch.Tensor], h0: Optional[float] = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.h0 = h0

    @torch.no_grad()
    def step(self, closure):  # type: ignore[override]
        state = self.state[self._params[0]]
        if self.h0 is None or state.get("n_iter", 0) > 0:
            return super().step(closure)
        with torch.enable_grad():
            loss = closure()
        flat_grad = self._gather_flat_grad()
        d = flat_grad.neg()
        t = self.h0 * float(self.param_groups[0]["lr"])
        self._add_grad(t, d)
        # the state torch's step leaves after its first iteration, with this step in it
        state.update(func_evals=state.get("func_evals", 0) + 1, n_iter=1, d=d, t=t, old_dirs=[], old_stps=[], ro=[],
                     H_diag=1, prev_flat_grad=flat_grad.clone(memory_format=torch.contiguous_format),
                     prev_loss=float(loss))
        return loss

    @property
    def h_diag(self) -> Optional[float]:
        """The inverse-Hessian scale learnt so far (None before two steps have measured it)."""
        h = self.state[self._params[0]].get("H_diag")
        return float(h) if isinstance(h, torch.Tensor) else None


class BestIterate:
    """The lowest-loss image an L-BFGS run has evaluated, so the run can end on it.

    With one evaluation an iteration and no line search, L-BFGS now and then overshoots: a fresh
    optimiser's fourth step took a 160 px picture from a loss of 3.6e5 to 4.1e7 before the fifth came
    back to 2.9e5. The last update is never evaluated, so a run cut there (few iterations, a tile's
    share, --max-time) would end on such a spike, worse than the photo. `offer` keeps a copy of each
    new best image as it is evaluated (before its update); `settle` scores the final image as the run
    reads it out (`param.image()`, clamped to [0, 1]: a saturated overshoot may score well once
    clamped), keeps it where it is no worse than the best, and else scores the best so too and ends on
    the lower; a run stopped mid-way writes that same choice (`image`). Its state goes into checkpoints
    for exact resume."""

    def __init__(self) -> None:
        self.loss = math.inf
        self.saved: Optional[dict[str, torch.Tensor]] = None

    def offer(self, loss: float, param: nn.Module) -> None:
        if loss < self.loss:
            self.loss = loss
            self.saved = {k: v.detach().clone() for k, v in param.state_dict().items()}

    @torch.no_grad()
    def _better(self, param: nn.Module, loss_fn: LossFunction) -> bool:
        """Whether the saved best scores lower than `param`'s image as read out (decided in one
        evaluation where it does not, the usual case). `param` is left as it was."""
        if self.saved is None:
            return False
        final = float(loss_fn(param.image()).total)
        if final <= self.loss:
            return False
        with _holding(param, self.saved):
            return float(loss_fn(param.image()).total) < final

    def settle(self, param: nn.Module, loss_fn: LossFunction) -> None:
        """End on the better of `param` and the best evaluated image."""
        if self._better(param, loss_fn):
            param.load_state_dict(self.saved)

    @torch.no_grad()
    def image(self, param: nn.Module, loss_fn: LossFunction) -> torch.Tensor:
        """The image settle would end on, leaving `param` as it is: what a run stopped mid-way writes."""
        if not self._better(param, loss_fn):
            return param.image()
        with _holding(param, self.saved):
            return param.image()

    def state_dict(self) -> dict:
        return {"loss": self.loss, "saved": self.saved}

    def load_state_dict(self, state: dict) -> None:
        self.loss, self.saved = float(state["loss"]), state["saved"]


@contextmanager
def _holding(param: nn.Module, state: dict[str, torch.Tensor]) -> Iterator[None]:
    """`param` holding `state` within the block, and its own state again after."""
    own = {k: v.detach().clone() for k, v in param.state_dict().items()}
    param.load_state_dict(state)
    try:
        yield
    finally:
        param.load_state_dict(own)


def make_optimizer(name: str, params: Iterable[torch.Tensor], learning_rate: float | None = None,
                   lbfgs_history: int = 100, h0: Optional[float] = None) -> torch.optim.Optimizer:
    """L-BFGS (one function evaluation per iteration, no tolerance-based stop), Adam or RMSprop.

    h0: L-BFGS's first step is -h0 * g (see WarmStartLBFGS) instead of torch's normalised one."""
    defaults = {**DEFAULT_LEARNING_RATES, **DEFAULT_LEARNING_RATES_OTHER_UNITS}
    lr = defaults.get(name) if learning_rate is None else learning_rate
    if name == "lbfgs":
        # max_iter=1: each step() is one iteration with exactly one forward/backward pass, so the
        # caller controls the iteration count; negative tolerances disable the early exits.
        return WarmStartLBFGS(list(params), h0=h0, lr=lr, max_iter=1, max_eval=1, history_size=lbfgs_history,
                              tolerance_grad=-1.0, tolerance_change=-1.0)
    if name == "adam":
        return torch.optim.Adam(list(params), lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(list(params), lr=lr)
    raise PainterlyError(f"optimizer must be 'lbfgs', 'adam' or 'rmsprop', got '{name}'")


def optimize(
    param: nn.Module,
    loss_fn: LossFunction,
    steps: int,
    optimizer: torch.optim.Optimizer,
    on_step: Optional[StepHook] = None,
    deadline: Optional[float] = None,
    start: int = 0,
    best: Optional[BestIterate] = None,
    stop: Optional[Callable[[], bool]] = None,
) -> Optional[LossTerms]:
    """Run iterations start+1 .. `steps` (fewer only if `deadline`, a time.monotonic() value, passes, or
    `stop()` says so).

    `start` > 0 continues a resumed run whose optimiser state was loaded from a checkpoint.

    `on_step(i, terms)` gets the 1-based iteration and the loss terms evaluated in that iteration
    (at the image before its update). Returns the last terms, or None if no step ran. `best`, where
    given, is offered every image evaluated.
    """
    last: list[LossTerms] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        terms = loss_fn(param())
        total = terms.total
        if best is not None:
            best.offer(float(total.detach()), param)
        total.backward()
        last.append(terms)
        return total

    terms = None
    for i in range(start + 1, steps + 1):
        if (deadline is not None and time.monotonic() >= deadline) or (stop is not None and stop()):
            break
        optimizer.step(closure)
        terms = last.pop()
        last.clear()
        if not torch.isfinite(terms.total.detach()):
            raise PainterlyError("the loss became NaN or infinite; lower the learning rate or the weights")
        if on_step is not None:
            on_step(i, terms)
    return terms
