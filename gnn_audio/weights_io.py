"""Weight files: read safely (``torch.load(weights_only=True)`` with one-line errors that name
the file; torch's own errors for a text, empty or truncated file are an ``IndexError``,
``EOFError``, ``KeyError`` or a page-long ``UnpicklingError``) and written atomically."""
from __future__ import annotations

import os
import pickle
from typing import Any

import torch

from gnn_audio.files import atomic_open
from gnn_audio.types import PathLike

__all__ = ["load_weights_file", "save_weights_file"]


def _detail(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for i, line in enumerate(lines):  # the weights-only unpickler's reason, where it gives one
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].strip()
            reason = reason or (lines[i + 1] if i + 1 < len(lines) else "")
            return reason.split(". ")[0]
    first = lines[0].split(". ")[0] if lines else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def load_weights_file(path: PathLike, kind: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``; ``kind`` names what the
    file should be (``"gnn_audio checkpoint"``) in the messages.

    Raises:
        FileNotFoundError: no such file.
        pickle.UnpicklingError: the file holds objects (classes, functions) that
            ``weights_only`` loading refuses to create.
        ValueError: anything else torch cannot read (text, empty or truncated files).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch fails on non-checkpoint files in many ways
        detail = _detail(e)
        if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in detail:
            raise pickle.UnpicklingError(f"{path} is not a {kind}: it holds objects that "
                                         f"weights_only loading refuses ({detail})") from None
        raise ValueError(f"{path} is not a {kind}: torch.load cannot read it "
                         f"({detail})") from None


def save_weights_file(obj: Any, path: PathLike) -> None:
    """``torch.save(obj)`` to a temporary name in the same folder, then rename over ``path``:
    a reader (or a run killed while writing) never sees a partial file."""
    with atomic_open(path) as f:
        torch.save(obj, f)
