"""What every data-set reader returns: a list of clips with their labels over the data set's
own class list, plus what was skipped and why.

Readers (:mod:`gnn_audio.data.readers`) produce a :class:`ClipList`; the waveform store
(:mod:`gnn_audio.data.store`) and the data sets consume one. Nothing here decodes audio.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np

from gnn_audio.labels import LabelSet

__all__ = ["Clip", "ClipList", "Skipped"]


@dataclass(frozen=True)
class Clip:
    """One audio clip of a split.

    Attributes:
        clip_id: unique within its split (FSD50K ``fname``, AudioSet ``YTID_start``, ...).
        path: absolute path of the audio file.
        labels: sorted, unique class indices into the split's :class:`LabelSet`.
        source: where the clip was listed, ``"file:line"`` (for error messages).
    """

    clip_id: str
    path: str
    labels: Tuple[int, ...]
    source: str = ""


@dataclass(frozen=True)
class Skipped:
    """A listed clip left out under an explicit skip option: ``where`` is ``"file:line"`` or
    the audio file, ``reason`` one line."""

    where: str
    reason: str


@dataclass
class ClipList:
    """A split: its name, its class list and its clips (in listing order); ``skipped``: the
    clips a skip option left out; ``warnings``: one line each that the caller must show the
    user (e.g. a class whose every clip was skipped, so that the split has none of it)."""

    name: str
    label_set: LabelSet
    clips: List[Clip]
    skipped: List[Skipped] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def num_classes(self) -> int:
        return len(self.label_set)

    def targets(self) -> np.ndarray:
        """``[num_clips, num_classes]`` float32 multi-hot targets."""
        y = np.zeros((len(self.clips), self.num_classes), dtype=np.float32)
        for i, clip in enumerate(self.clips):
            y[i, list(clip.labels)] = 1.0
        return y
