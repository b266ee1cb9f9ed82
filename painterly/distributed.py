"""Data-parallel training with torch.distributed (under torchrun, or `painterly train --nproc N`).

Every rank holds the same data generator, so all draw the same global batch of `batch x world`
crops, and each computes its own slice of it (its share of the photos); gradients are averaged with
one all-reduce per step, as DDP does, so the replicas stay identical. The state a checkpoint needs is
then the same on every rank: rank 0 writes it, every rank reads it on resume. gloo on CPUs, NCCL on
GPUs.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size), joining the process group torchrun describes in the environment."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and os.environ.get("PAINTERLY_DEVICE") != "cpu"
                                else "gloo")
    return dist.get_rank(), size


def local_device(device: torch.device) -> torch.device:
    """This rank's GPU (LOCAL_RANK) when training on CUDA; the device as it is otherwise."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def average_gradients(parameters: Sequence[torch.nn.Parameter], size: int) -> None:
    """Every rank's gradients replaced by their mean over the ranks, in one flat all-reduce."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if size <= 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def rank0_says(flag: bool, size: int) -> bool:
    """Rank 0's decision (e.g. to stop at max_time) on every rank, so all stop at the same step."""
    if size <= 1:
        return flag
    value = torch.tensor([1 if flag else 0])
    dist.broadcast(value, 0)
    return bool(value.item())
