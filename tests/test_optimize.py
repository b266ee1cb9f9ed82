"""The optimisation loop: optimiser choice, exact step counts, no early stops, deadline, NaN guard."""

import time

import pytest
import torch
from torch import nn

from painterly.errors import PainterlyError
from painterly.losses import LossTerms
from painterly.optimize import DEFAULT_LEARNING_RATES, make_optimizer, optimize
from painterly.param import PixelImage

from helpers import use_fake_clock


class Vector(nn.Module):
    """The simplest parameterisation: forward() returns the parameter itself."""

    def __init__(self, values):
        super().__init__()
        self.x = nn.Parameter(torch.tensor(values, dtype=torch.float32))

    def forward(self):
        return self.x


TARGET = torch.tensor([1.0, -2.0, 0.5, 3.0])
SCALES = torch.tensor([1.0, 2.0, 0.5, 4.0])


class Quadratic:
    """sum(s * (x - t)^2), counting evaluations."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return LossTerms({"quad": (SCALES * (x - TARGET) ** 2).sum()})


def _run(name, steps, lr=None, start=(0.0, 0.0, 0.0, 0.0), **kwargs):
    param = Vector(list(start))
    loss = Quadratic()
    seen = []
    opt = make_optimizer(name, param.parameters(), lr)
    last = optimize(param, loss, steps, opt, on_step=lambda i, t: seen.append((i, t.floats()["total"])), **kwargs)
    return param, loss, seen, last


# --- make_optimizer ----------------------------------------------------------------------------


def test_make_optimizer_lbfgs():
    p = nn.Parameter(torch.zeros(3))
    opt = make_optimizer("lbfgs", [p])
    assert isinstance(opt, torch.optim.LBFGS)
    group = opt.param_groups[0]
    assert group["lr"] == DEFAULT_LEARNING_RATES["lbfgs"]
    assert group["max_iter"] == 1 and group["max_eval"] == 1
    assert group["line_search_fn"] is None
    assert group["history_size"] == 100
    assert make_optimizer("lbfgs", [p], lbfgs_history=7).param_groups[0]["history_size"] == 7


def test_make_optimizer_adam_and_learning_rate():
    p = nn.Parameter(torch.zeros(3))
    opt = make_optimizer("adam", [p])
    assert isinstance(opt, torch.optim.Adam)
    assert opt.param_groups[0]["lr"] == DEFAULT_LEARNING_RATES["adam"]
    assert make_optimizer("adam", [p], learning_rate=0.5).param_groups[0]["lr"] == 0.5
    assert make_optimizer("lbfgs", [p], learning_rate=0.25).param_groups[0]["lr"] == 0.25


@pytest.mark.parametrize("name", ["sgd", "LBFGS", ""])
def test_make_optimizer_unknown_raises(name):
    with pytest.raises(PainterlyError, match="optimizer"):
        make_optimizer(name, [nn.Parameter(torch.zeros(1))])


def test_make_optimizer_accepts_generator_of_parameters():
    param = Vector([1.0, 2.0])
    opt = make_optimizer("lbfgs", param.parameters())
    assert opt.param_groups[0]["params"][0] is param.x


# --- step counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lbfgs", "adam"])
def test_optimize_runs_exactly_n_steps(name):
    _, loss, seen, last = _run(name, 12)
    assert [i for i, _ in seen] == list(range(1, 13))
    assert loss.calls == 12  # one evaluation per iteration, L-BFGS included
    assert isinstance(last, LossTerms)


def test_lbfgs_does_not_stop_when_converged():
    # A quadratic: L-BFGS reaches the minimum within a few steps and the gradient becomes tiny
    # or exactly zero; torch's own tolerances would stop there, painterly's loop must not.
    param, loss, seen, _ = _run("lbfgs", 40)
    assert len(seen) == 40 and loss.calls == 40
    torch.testing.assert_close(param.x.detach(), TARGET, rtol=0, atol=1e-4)
    assert seen[-1][1] < 1e-8


def test_lbfgs_evaluation_count_at_exact_minimum():
    # Starting exactly at the minimum: gradient zero from the first step.
    param, loss, seen, _ = _run("lbfgs", 5, start=TARGET.tolist())
    assert loss.calls == 5 and len(seen) == 5
    assert all(v == 0.0 for _, v in seen)
    torch.testing.assert_close(param.x.detach(), TARGET)


def test_zero_steps_runs_nothing():
    param, loss, seen, last = _run("lbfgs", 0)
    assert last is None and seen == [] and loss.calls == 0
    assert torch.equal(param.x.detach(), torch.zeros(4))


# --- loss decreases ----------------------------------------------------------------------------


def test_lbfgs_loss_decreases_on_quadratic():
    _, _, seen, _ = _run("lbfgs", 20)
    losses = [v for _, v in seen]
    initial = (SCALES * TARGET**2).sum().item()
    assert losses[0] == pytest.approx(initial)  # step 1 reports the loss before the first update
    assert losses[-1] < 1e-3 * losses[0]


def test_adam_loss_decreases_on_quadratic():
    _, _, seen, _ = _run("adam", 60, lr=0.1)
    losses = [v for _, v in seen]
    assert losses[-1] < 0.1 * losses[0]
    assert sum(b < a for a, b in zip(losses, losses[1:])) > 0.8 * (len(losses) - 1)


def test_on_step_terms_are_evaluated_before_the_update():
    param = Vector([0.0, 0.0, 0.0, 0.0])
    opt = make_optimizer("adam", param.parameters(), 0.1)
    records = []

    def on_step(i, terms):
        records.append((terms.floats()["total"], Quadratic()(param.x.detach()).floats()["total"]))

    optimize(param, Quadratic(), 3, opt, on_step)
    initial = (SCALES * TARGET**2).sum().item()
    assert records[0][0] == pytest.approx(initial)
    # the value after step i is what step i + 1 reports
    assert records[1][0] == pytest.approx(records[0][1], rel=1e-5)
    assert records[2][0] == pytest.approx(records[1][1], rel=1e-5)


def test_optimize_pixel_image_towards_target():
    # PixelImage optimises in 0..255 units but hands the loss a [0, 1] image.
    target = torch.full((1, 3, 4, 4), 0.25)
    param = PixelImage(torch.full((1, 3, 4, 4), 0.75))
    opt = make_optimizer("lbfgs", param.parameters())
    last = optimize(param, lambda img: LossTerms({"sse": 1000 * ((img - target) ** 2).sum()}), 10, opt)
    assert last.floats()["total"] < 1e-3
    torch.testing.assert_close(param.image(), target, rtol=0, atol=1e-3)


def test_adam_default_rate_moves_pixel_image():
    target = torch.full((1, 3, 4, 4), 0.25)
    param = PixelImage(torch.full((1, 3, 4, 4), 0.75))
    optimize(param, lambda img: LossTerms({"mse": ((img - target) ** 2).mean()}), 30,
             make_optimizer("adam", param.parameters()))
    assert (param.image() - target).abs().max() < 0.1


# --- deadline and NaN --------------------------------------------------------------------------


def test_deadline_in_the_past_runs_no_step():
    param, loss, seen, last = _run("lbfgs", 10, deadline=time.monotonic() - 1.0)
    assert loss.calls == 0 and seen == [] and last is None
    assert torch.equal(param.x.detach(), torch.zeros(4))


def test_deadline_stops_early(monkeypatch):
    """Each step takes one (fake) second: a deadline 5.5 s away lets exactly 6 steps start."""
    clock = use_fake_clock(monkeypatch, "painterly.optimize")
    param = Vector([0.0])

    def slow(x):
        clock.advance(1.0)
        return LossTerms({"q": (x**2).sum()})

    count = []
    optimize(param, slow, 10_000, make_optimizer("adam", param.parameters()),
             on_step=lambda i, t: count.append(i), deadline=clock.now + 5.5)
    assert count == [1, 2, 3, 4, 5, 6]


def test_deadline_in_the_future_runs_all_steps():
    _, loss, seen, _ = _run("adam", 5, deadline=time.monotonic() + 60.0)
    assert loss.calls == 5 and len(seen) == 5


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_raises(bad):
    param = Vector([1.0])
    seen = []
    with pytest.raises(PainterlyError, match="NaN"):
        optimize(param, lambda x: LossTerms({"q": x.sum() * bad}), 5,
                 make_optimizer("adam", param.parameters()), on_step=lambda i, t: seen.append(i))
    assert seen == []


def test_loss_becoming_nan_later_raises_at_that_step():
    param = Vector([1.0])
    calls = []

    def loss_fn(x):
        calls.append(1)
        value = (x**2).sum()
        return LossTerms({"q": value * float("nan") if len(calls) == 3 else value})

    seen = []
    with pytest.raises(PainterlyError):
        optimize(param, loss_fn, 10, make_optimizer("adam", param.parameters(), 0.01), on_step=lambda i, t: seen.append(i))
    assert seen == [1, 2]


# --- WarmStartLBFGS -------------------------------------------------------------------------------

def _quadratic(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return 0.5 * (scale * x**2).sum()


def test_warm_start_first_step_is_minus_h0_times_gradient():
    from painterly.optimize import WarmStartLBFGS

    a = 4.0
    x = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = WarmStartLBFGS([x], h0=1 / a, lr=1.0, max_iter=1, max_eval=1, tolerance_grad=-1, tolerance_change=-1)

    def closure():
        opt.zero_grad()
        loss = _quadratic(x, torch.full((3,), a))
        loss.backward()
        return loss

    opt.step(closure)
    # for f = a/2 |x|^2 the inverse Hessian is 1/a: the warm first step lands on the minimum
    assert torch.allclose(x.detach(), torch.zeros(3), atol=1e-7)


def test_warm_start_without_h0_is_torch_lbfgs_exactly():
    from painterly.optimize import WarmStartLBFGS

    scale = torch.tensor([1.0, 3.0, 10.0, 0.5])
    runs = []
    for cls, kwargs in ((torch.optim.LBFGS, {}), (WarmStartLBFGS, {"h0": None})):
        x = torch.nn.Parameter(torch.tensor([1.0, -1.0, 2.0, 0.5]))
        opt = cls([x], lr=1.0, max_iter=1, max_eval=1, tolerance_grad=-1, tolerance_change=-1, **kwargs)

        def closure():
            opt.zero_grad()
            loss = _quadratic(x, scale) + (x**4).sum() * 0.1
            loss.backward()
            return loss

        for _ in range(6):
            opt.step(closure)
        runs.append(x.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_warm_start_continues_as_lbfgs_and_reports_its_curvature():
    from painterly.optimize import WarmStartLBFGS

    scale = torch.tensor([1.0, 3.0, 10.0, 0.5])
    x = torch.nn.Parameter(torch.tensor([1.0, -1.0, 2.0, 0.5]))
    opt = WarmStartLBFGS([x], h0=0.05, lr=1.0, max_iter=1, max_eval=1, tolerance_grad=-1, tolerance_change=-1)
    assert opt.h_diag is None

    def closure():
        opt.zero_grad()
        loss = _quadratic(x, scale)
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(12)]
    assert losses[-1] < 1e-6 * losses[0]
    assert 1 / 10 <= opt.h_diag <= 1 / 0.5  # H_diag = s.y / y.y lies within the inverse eigenvalues
