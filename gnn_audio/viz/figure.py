"""Matplotlib figures of :mod:`gnn_audio.viz`: made without pyplot (no global backend or
figure registry is touched; the Agg canvas renders them) and written atomically."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple

from gnn_audio.files import atomic_open
from gnn_audio.types import PathLike

__all__ = ["new_figure", "save_figure", "check_output_path"]


def new_figure(size: Tuple[float, float]):
    """A :class:`matplotlib.figure.Figure` of ``size`` inches, outside pyplot (it is freed
    like any object; nothing needs closing). Needs matplotlib (``pip install
    gnn-audio[plot]``)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a test dependency
        raise ImportError("gnn_audio.viz needs matplotlib: pip install gnn-audio[plot]") from None
    return Figure(figsize=size)


def check_output_path(path: PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` whose folder exists; one-line ``ValueError``
    naming it otherwise (checked before any work is done)."""
    path = Path(os.fspath(path))
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{path}: cannot write the picture, folder {folder} does not exist")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a picture file name")
    return path


def save_figure(fig, path: PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (PNG, or the format its extension names) through a
    temporary file in the same folder and :func:`os.replace`, so that a reader never sees a
    partial picture. Returns the path."""
    path = check_output_path(path)
    fmt = path.suffix[1:].lower() or "png"
    with atomic_open(path) as f:
        fig.savefig(f, dpi=dpi, format=fmt)
    return path
