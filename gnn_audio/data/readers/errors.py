"""How readers report bad input: :class:`DataError` (one line naming the file and line), or,
under ``skip_bad=True``, a :class:`~gnn_audio.data.clips.Skipped` entry per left-out clip, and
a warning line (:meth:`BadInput.lost_classes`) for every class the skipped rows took all the
clips of, so that a class never leaves a split unnoticed."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

from gnn_audio.data.clips import Clip, Skipped
from gnn_audio.labels import LabelSet

__all__ = ["DataError", "BadInput"]

#: class names a warning lists before ``and N more``
_SHOWN_CLASSES = 10


class DataError(ValueError):
    """A malformed data-set listing (class list, ground-truth CSV, JSON datafile) or a listed
    clip that cannot be used; the message is one line that starts with ``file:line``."""


class BadInput:
    """Collects the clips a reader leaves out: raises :class:`DataError` on the first one
    unless ``skip_bad``, else records a :class:`Skipped` for each, and counts the skipped rows
    of every class they name.

    Args:
        skip_bad: skip and record bad clips instead of raising.
    """

    def __init__(self, skip_bad: bool = False) -> None:
        self.skip_bad = skip_bad
        self.skipped: List[Skipped] = []
        self.dropped: Dict[int, int] = {}  # class index -> skipped rows that name it
        self.unsure: Dict[int, int] = {}  # ... of them not known to belong to what is read

    def __call__(self, where: str, reason: str, classes: Iterable[int] = (),
                 unsure: bool = False) -> None:
        """Report the clip listed at ``where`` (``"file:line"``) as unusable for ``reason``;
        ``classes``: the class indices the row names, as far as they could be read;
        ``unsure``: the row may belong to another split (its split could not be read)."""
        if not self.skip_bad:
            raise DataError(f"{where}: {reason}")
        self.skipped.append(Skipped(where, reason))
        for c in set(classes):
            self.dropped[c] = self.dropped.get(c, 0) + 1
            if unsure:
                self.unsure[c] = self.unsure.get(c, 0) + 1

    def lost_classes(self, label_set: LabelSet, clips: Sequence[Clip], listing: str,
                     split: Optional[str] = None) -> List[str]:
        """The warning (a list of one line, or empty) for the classes that skipped rows of
        ``listing`` named and that no clip of ``clips`` (what was kept) has: the split read
        has no clip of them at all. ``split`` names the split in the line."""
        kept = {c for clip in clips for c in clip.labels}
        lost = sorted(c for c in self.dropped if c not in kept)
        if not lost:
            return []

        def rows(c: int) -> str:
            n, unsure = self.dropped[c], self.unsure.get(c, 0)
            text = f"{n} row{'s' if n != 1 else ''} skipped"
            if unsure:
                text += (", of unknown split" if unsure == n
                         else f", {unsure} of them of unknown split")
            return text

        shown = [f"{label_set.names[c]!r} ({rows(c)})" for c in lost[:_SHOWN_CLASSES]]
        if len(lost) > _SHOWN_CLASSES:
            shown.append(f"and {len(lost) - _SHOWN_CLASSES} more")
        what = f"the {split} split has" if split else "there is"
        if len(lost) == 1:
            return [f"{listing}: after skip_bad {what} no clip of class {shown[0]}"]
        return [f"{listing}: after skip_bad {what} no clip of {len(lost)} classes: "
                f"{', '.join(shown)}"]
