"""Data-parallel training: 2 processes on gloo train the same replica, equal to one process with the
global batch, and every rank ends with identical weights; a NaN on one rank or rank 0's time limit
stops every rank at the same step (none is left waiting in an all-reduce)."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from painterly.distributed import finish
from painterly.errors import PainterlyError
from painterly.losses import LossTerms
from painterly.training import LoopConfig, Trainee, run_loop


class Toy(Trainee):
    """A 3x3 convolution learning to swap colour channels: a loss that is a mean over the batch."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.module = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.trainable = list(self.module.parameters())

    def loss(self, batch: torch.Tensor, step: int) -> LossTerms:
        return LossTerms({"fit": ((self.module(batch) - batch.flip(1)) ** 2).mean()})

    def render(self, photo, step):
        return self.module(photo)


class PoisonedOnRankOne(Toy):
    """The toy, whose loss turns NaN at step 3 on rank 1 only (a bad batch on one machine)."""

    def loss(self, batch: torch.Tensor, step: int) -> LossTerms:
        terms = super().loss(batch, step)
        if step == 2 and torch.distributed.get_rank() == 1:
            terms.terms["fit"] = terms.terms["fit"] * float("nan")
        return terms


def photos() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.rand(1, 3, 40, 48, generator=g) for _ in range(6)]


def save_weights(module: torch.nn.Module, path: str) -> None:
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, path)


def train_toy(batch: int, path: str) -> None:
    trainee = Toy()
    config = LoopConfig(steps=6, batch=batch, crop=32, seed=0, learning_rate=0.05, precision="fp32", device="cpu")
    run_loop(trainee, photos(), config, torch.device("cpu"), torch.Generator().manual_seed(0), [], {}, None, None,
             None, None)
    save_weights(trainee.module, path)


def _rank(rank: int, world: int, port: int, folder: str, case: str = "train") -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if case == "train":
        train_toy(2, os.path.join(folder, f"rank{rank}.safetensors"))
    else:  # "nan": rank 1's loss turns NaN; "time": rank 0's time limit (1 ns) is up after the first step
        trainee = PoisonedOnRankOne() if case == "nan" else Toy()
        config = LoopConfig(steps=6, batch=2, crop=32, seed=0, learning_rate=0.05, precision="fp32", device="cpu",
                            max_time=1e-9 if case == "time" else None)
        try:
            steps, _, log = run_loop(trainee, photos(), config, torch.device("cpu"), torch.Generator().manual_seed(0),
                                     [], {}, None, None, None, None)
            outcome = f"stopped after {steps} steps, logged {len(log)}"
        except PainterlyError as error:
            outcome = f"error: {error}"
        with open(os.path.join(folder, f"rank{rank}.txt"), "w") as fh:
            fh.write(outcome)
        save_weights(trainee.module, os.path.join(folder, f"rank{rank}.safetensors"))
    finish()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(folder, case: str = "train") -> None:
    context = mp.spawn(_rank, args=(2, free_port(), str(folder), case), nprocs=2, join=False)
    deadline = time.monotonic() + 180
    while not context.join(timeout=5):  # a hang fails the test instead of stalling the suite
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError("the 2-process run did not finish in 180 s")


def test_two_gloo_ranks_hold_identical_weights_equal_to_one_process_with_the_global_batch(tmp_path):
    run_two_ranks(tmp_path)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1)]
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key  # the replicas never drift apart
    single = tmp_path / "single.safetensors"
    train_toy(4, str(single))  # one process, the same global batch of 2 x 2 crops
    alone = load_file(str(single))
    initial = Toy().module.state_dict()
    for key in alone:
        assert torch.allclose(ranks[0][key], alone[key], atol=1e-6), key
        assert not torch.allclose(alone[key], initial[key])  # and it did train


@pytest.mark.parametrize("case, outcome", [
    ("nan", "error: the training loss became NaN or infinite"),
    ("time", "stopped after 1 steps, logged 1"),
])
def test_one_rank_stopping_stops_every_rank_at_the_same_step(tmp_path, case, outcome):
    run_two_ranks(tmp_path, case)
    said = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert said[0].startswith(outcome) and said[1].startswith(outcome), said
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1)]
    assert all(torch.allclose(ranks[0][k], ranks[1][k], rtol=0, atol=0, equal_nan=True) for k in ranks[0])
