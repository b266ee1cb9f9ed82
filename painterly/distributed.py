"""Data-parallel training with torch.distributed (under torchrun, or `painterly train --nproc N`).

Every rank holds the same data generator, so all draw the same global batch of `batch x world`
crops, and each computes its own slice of it (its share of the photos); gradients are averaged with
one all-reduce per step, as DDP does, so the replicas stay identical. The state a checkpoint needs is
then the same on every rank: rank 0 writes it, every rank reads it on resume. gloo on CPUs, NCCL on
GPUs.
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Sequence

import torch
import torch.distributed as dist


LEFT_KEY = "painterly/ranks-left"


def world() -> tuple[int, int]:
    """(rank, world size), joining the process group torchrun describes in the environment."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return 0, 1
    if not dist.is_initialized():
        if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        # gloo for CPU tensors (the step's flags, CPU training), NCCL for CUDA ones
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(finish)
    return dist.get_rank(), size


def finish() -> None:
    """Leave the process group together, rank 0 last. Without the barrier a rank that ends first can
    abort the others in gloo's teardown ("terminate called without an active exception"), and torchrun
    reports the run as failed. Rank 0 holds the rendezvous store, so it also waits, on a counter in that
    store, until every other rank has torn its group down before it tears down its own (30 s at most: a
    rank that died never counts itself)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    rank, size = dist.get_rank(), dist.get_world_size()
    store = dist.distributed_c10d._get_default_store()  # kept: it outlives the group's teardown
    try:
        dist.barrier()
    finally:
        if rank != 0:
            dist.destroy_process_group()
            store.add(LEFT_KEY, 1)
        else:
            deadline = time.monotonic() + 30
            while store.add(LEFT_KEY, 0) < size - 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            dist.destroy_process_group()


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


def any_rank(flags: Sequence[bool], size: int) -> list[bool]:
    """Each flag true on every rank if it is true on any (one all-reduce): a stop request, a NaN loss
    or rank 0's time limit then ends every rank at the same step, so none waits on a dead peer."""
    if size <= 1:
        return list(flags)
    value = torch.tensor([1 if f else 0 for f in flags])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return [bool(v) for v in value.tolist()]


def threads_per_rank() -> int | None:
    """This machine's CPUs shared out among the ranks on it (torchrun's LOCAL_WORLD_SIZE); None alone."""
    ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if ranks <= 1:
        return None
    from .hardware import usable_cpus

    return max(1, usable_cpus() // ranks)
