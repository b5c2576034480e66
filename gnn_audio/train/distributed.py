"""One training script for one CPU, one GPU and N GPUs on M nodes: the process group and the
few collectives the trainer and the evaluation need, each a thin wrapper that also works in a
single process (no process group).

:func:`init_distributed` reads the environment that ``torchrun`` sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Without it, or with
``WORLD_SIZE=1``, the script runs as a single process and no process group is made. With
several processes it joins the process group with NCCL when the processes use GPUs (one GPU
per process, ``cuda:LOCAL_RANK``) and Gloo on the CPU. The same script is launched as::

    # one process: the first GPU if there is one, else the CPU
    python examples/train_fsd50k.py ...

    # one node, 8 GPUs (one process each, NCCL)
    torchrun --nproc_per_node 8 examples/train_fsd50k.py ...

    # two nodes of 8 GPUs: run this on every node (c10d rendezvous at HOST, a node of the job)
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d \\
        --rdzv_endpoint HOST:29400 --rdzv_id JOB examples/train_fsd50k.py ...

    # two CPU processes on one machine (Gloo), e.g. to test a multi-process run without GPUs
    torchrun --nproc_per_node 2 examples/train_fsd50k.py ... --device cpu

Call :func:`cleanup` when the run ends (also after an error) to leave the process group.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Union

import torch
import torch.distributed as dist
from torch import Tensor

from gnn_audio.devices import resolve_device

__all__ = ["DistContext", "init_distributed", "cleanup", "barrier", "all_gather_objects",
           "all_reduce_mean", "any_rank"]



@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run.

    Args:
        rank: global rank, ``0 .. world_size - 1``.
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        device: the device this process computes on.
        backend: ``"nccl"`` or ``"gloo"`` when a process group is joined, ``None`` for a
            single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ValueError(f"need 0 <= rank < world_size and local_rank >= 0, got rank="
                             f"{self.rank}, world_size={self.world_size}, "
                             f"local_rank={self.local_rank}")
        object.__setattr__(self, "device", torch.device(self.device))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, writes files and shows progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process (the collectives then talk to the others)."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device: Optional[Union[str, torch.device]] = None, *,
                     timeout: Optional[datetime.timedelta] = None) -> DistContext:
    """Join the process group ``torchrun`` describes, or set up a single process.

    Args:
        device: ``None``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU;
            ``"cpu"`` forces the CPU (and Gloo); ``"cuda"`` takes ``cuda:LOCAL_RANK``
            (``"cuda:N"``: that GPU). A CUDA device becomes the current device.
        timeout: how long collectives wait for the other ranks (torch's default if ``None``).

    Returns:
        The :class:`DistContext`. With ``WORLD_SIZE`` unset or 1 no process group is made.
        If a process group already exists it is used as it is.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, "
                         f"WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}")
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size == 1:
        return DistContext(0, 1, local_rank, dev, None)
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size} but this torch build has no "
                           "torch.distributed")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dist.is_initialized():
        backend = str(dist.get_backend())
        rank, world_size = dist.get_rank(), dist.get_world_size()
    else:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
        if missing:
            raise ValueError(f"WORLD_SIZE={world_size} but {' and '.join(missing)} not set; "
                             "launch the script with torchrun")
        kwargs = {} if timeout is None else {"timeout": timeout}
        dist.init_process_group(backend, init_method="env://", rank=rank,
                                world_size=world_size, **kwargs)
    return DistContext(rank, world_size, local_rank, dev, backend)


def cleanup() -> None:
    """Leave the process group if one was joined (a no-op otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here."""
    if not ctx.distributed:
        return
    if ctx.backend == "nccl":
        dist.barrier(device_ids=[ctx.device.index])
    else:
        dist.barrier()


def all_gather_objects(obj: Any, ctx: DistContext) -> List[Any]:
    """Every rank's ``obj`` in rank order, on every rank (``[obj]`` for a single process)."""
    if not ctx.distributed:
        return [obj]
    out: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(value: Union[Tensor, float], ctx: DistContext) -> Union[Tensor, float]:
    """The mean of ``value`` over the ranks: a float for a number, a new tensor for a tensor
    (floating point, on ``value``'s device; integers become float64); the input is unchanged."""
    if isinstance(value, Tensor):
        t = value.detach().clone()
        if not t.is_floating_point():
            t = t.to(torch.float64)
        if ctx.distributed:
            work = t.to(ctx.device) if ctx.backend == "nccl" else t  # NCCL: GPU tensors only
            dist.all_reduce(work, op=dist.ReduceOp.SUM)
            t = work.to(t.device) / ctx.world_size
        return t
    if not ctx.distributed:
        return float(value)
    t = torch.tensor(float(value), dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t) / ctx.world_size


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when ``flag`` is true on at least one (``flag`` for a single
    process)."""
    if not ctx.distributed:
        return bool(flag)
    t = torch.tensor(int(bool(flag)), dtype=torch.int32,
                     device=ctx.device if ctx.backend == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
