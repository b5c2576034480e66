"""The resumable state of a training run and its files in the run directory.

``RUN_DIR/last.pt`` holds everything an exact resume needs, written atomically (temporary
file, then rename) after every epoch, every ``save_every_steps`` optimiser steps and when a
signal stops the run: the model, optimiser, scheduler and gradient-scaler
states, the sampler's state, the epoch and step counters, the metric history, the best
validation mAP so far, the running sum of PSLA weight averaging, every random number
generator (Python, NumPy, torch CPU and every CUDA device; of every rank under DDP), the
fingerprints of the splits (:func:`~gnn_audio.train.data.split_fingerprint`) and, saved
within an epoch, how far into it the run is (``in_epoch``: steps, batches taken, the running
loss). It holds plain containers and tensors only, is read back with
``torch.load(weights_only=True)`` and carries a checksum verified on load
(:mod:`gnn_audio.weights_io`).

:func:`check_run_dir` runs before training, before any audio is decoded: an unwritable folder
or a disk without room for a few checkpoints is reported then, not after the first epoch.
"""
from __future__ import annotations

import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from gnn_audio.weights_io import load_weights_file, save_weights_file
from gnn_audio.types import PathLike

__all__ = ["capture_rng", "restore_rng", "save_state", "load_state", "check_run_dir",
           "claim_run_dir", "state_size_estimate", "STATE_FILE", "RUN_FILES",
           "CHECKPOINT_FILES"]

STATE_FILE = "last.pt"


def capture_rng() -> Dict[str, Any]:
    """Every generator's state as plain values and tensors (``weights_only``-loadable)."""
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: PathLike, state: Dict[str, Any]) -> None:
    """Write a training state atomically (temporary file in the same folder, then rename)."""
    save_weights_file(state, path)


def load_state(path: PathLike) -> Dict[str, Any]:
    """Read a state written by :func:`save_state` (``weights_only=True``); a missing or
    damaged file raises ``ValueError`` naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no training state to resume from (the run stopped before "
                         "its first save, at the end of an epoch or every --save-every-steps)")
    try:
        state = load_weights_file(path, "gnn_audio training state")
    except pickle.UnpicklingError as err:
        raise ValueError(str(err)) from None
    if not isinstance(state, dict) or state.get("format") != "gnn_audio.train_state":
        raise ValueError(f"{path} is not a gnn_audio training state")
    return state


#: the checkpoints a run writes and replaces (:func:`check_run_dir` counts them as its own)
CHECKPOINT_FILES = ("last.pt", "best.pt", "averaged.pt")
#: what a training run writes into its directory (see :mod:`gnn_audio.train.trainer`)
RUN_FILES = ("config.json", "train.log", "tensorboard", "curves.png", "last.pt", "best.pt",
             "averaged.pt", "history.json", "results.json")


def claim_run_dir(run_dir: PathLike, overwrite: bool = False) -> List[str]:
    """Make ``run_dir`` the directory of a new run: refused (``ValueError``, one line) when it
    holds another run's files, unless ``overwrite``, which removes them (and only them: other
    files in the folder are left alone). Returns notes for the log."""
    run_dir = Path(run_dir)
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not found:
        return []
    if not overwrite:
        raise ValueError(f"{run_dir}: already holds a training run ({', '.join(found)}); "
                         f"continue it with --resume {run_dir}, or pass --overwrite to start "
                         "a new run there")
    for name in found:
        path = run_dir / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as err:
            raise OSError(f"{path}: cannot remove it for --overwrite ({err.strerror or err})"
                          ) from None
    return [f"--overwrite: removed the earlier run's {', '.join(found)} from {run_dir}"]


def check_run_dir(run_dir: PathLike, needed_bytes: int) -> List[str]:
    """Create ``run_dir`` and make sure a file can be written there and that the disk has room
    for ``needed_bytes`` (a few checkpoints); returns notes, raises ``OSError`` (one line)
    otherwise."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write_probe{os.getpid()}"
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as err:
        raise OSError(f"{run_dir}: run directory is not writable ({err.strerror or err})"
                      ) from None
    free = shutil.disk_usage(run_dir).free
    # a resumed run replaces its own checkpoints: the space they take is the run's already
    kept = sum((run_dir / name).stat().st_size for name in CHECKPOINT_FILES
               if (run_dir / name).is_file())
    own = f" + {kept / 2**20:.0f} MiB of the run's own checkpoints" if kept else ""
    if free + kept < needed_bytes:
        raise OSError(f"{run_dir}: {free / 2**20:.0f} MiB free on its disk{own}, the run's "
                      f"checkpoints need about {needed_bytes / 2**20:.0f} MiB")
    return [f"run directory {run_dir}: {free / 2**30:.1f} GiB free{own} "
            f"(checkpoints need about {needed_bytes / 2**20:.0f} MiB)"]


def state_size_estimate(model: torch.nn.Module, copies: int = 5,
                        optimizer_slots: Optional[int] = 2) -> int:
    """Bytes of ``copies`` checkpoints: weights + buffers + Adam's two moments (fp32)."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    params = sum(p.numel() * 4 for p in model.parameters())
    return copies * (weights + (optimizer_slots or 0) * params) + (64 << 20)
