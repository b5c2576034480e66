"""How readers report bad input: :class:`DataError` (one line naming the file and line), or,
under ``skip_bad=True``, a :class:`~gnn_audio.data.clips.Skipped` entry per left-out clip."""
from __future__ import annotations

from typing import List

from gnn_audio.data.clips import Skipped

__all__ = ["DataError", "BadInput"]


class DataError(ValueError):
    """A malformed data-set listing (class list, ground-truth CSV, JSON datafile) or a listed
    clip that cannot be used; the message is one line that starts with ``file:line``."""


class BadInput:
    """Collects the clips a reader leaves out: raises :class:`DataError` on the first one
    unless ``skip_bad``, else records a :class:`Skipped` for each.

    Args:
        skip_bad: skip and record bad clips instead of raising.
    """

    def __init__(self, skip_bad: bool = False) -> None:
        self.skip_bad = skip_bad
        self.skipped: List[Skipped] = []

    def __call__(self, where: str, reason: str) -> None:
        """Report the clip listed at ``where`` (``"file:line"``) as unusable for ``reason``."""
        if not self.skip_bad:
            raise DataError(f"{where}: {reason}")
        self.skipped.append(Skipped(where, reason))
