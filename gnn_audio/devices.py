"""Where a model runs: the one resolver of device names (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
``"mps"``, ``None`` for "CUDA when available") used by training, evaluation, tagging and the
command line."""
from __future__ import annotations

from typing import Optional, Union

import torch

__all__ = ["resolve_device"]


def resolve_device(device: Optional[Union[str, torch.device]] = None,
                   local_rank: Optional[int] = None) -> torch.device:
    """``device`` as a :class:`torch.device` that exists on this machine.

    Args:
        device: a device name or ``torch.device``; ``None`` takes CUDA when it is available,
            else the CPU.
        local_rank: this process's GPU under ``torchrun``: a CUDA device without an index
            becomes ``cuda:local_rank`` (``None``: left without an index).

    Raises:
        ValueError: one line, for a name torch does not know or a device this machine does
            not have (``cuda`` without CUDA, ``cuda:3`` on a one-GPU machine, ``mps`` off a
            Mac).
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {str(device)!r} ({' '.join(str(err).split())}); use "
                         "cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine; "
                             "use cpu")
        if dev.index is None and local_rank is not None:
            dev = torch.device("cuda", local_rank)
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            if local_rank is not None:
                raise ValueError(f"local rank {local_rank} needs GPU {dev.index} but only "
                                 f"{count} GPU(s) are visible; start at most {count} processes "
                                 "per node (torchrun --nproc_per_node)")
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA "
                             "device(s)")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and
                                    torch.backends.mps.is_available()):
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine")
    return dev
