"""Matching two label sets: which label of a new class list is which label of an old one, by
label id (AudioSet MID) and else by display name; what fine-tuning to a new label set
(:mod:`gnn_audio.train.finetune`) copies per-label entries by."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["LabelMatch", "match_labels", "normalized_name"]


def normalized_name(name: str) -> str:
    """Case-folded, with underscores as spaces and runs of white space as one space (FSD50K
    writes ``Accelerating_and_revving_and_vroom``)."""
    return " ".join(name.replace("_", " ").split()).casefold()


@dataclass(frozen=True)
class LabelMatch:
    """Which label of the new set is which label of the old one.

    ``new_index[i]`` (a position in the new set) is ``old_index[i]`` (a position in the old
    set), matched as ``how[i]``: ``"id"``, ``"name"`` or ``"position"`` (no ids or names to
    match by, same size). ``unmatched_new`` / ``unmatched_old``: labels of one set only.
    """

    new_index: Tuple[int, ...]
    old_index: Tuple[int, ...]
    how: Tuple[str, ...]
    unmatched_new: Tuple[int, ...]
    unmatched_old: Tuple[int, ...]
    num_new: int
    num_old: int

    @property
    def pairs(self) -> Dict[int, int]:
        """``new position -> old position``."""
        return dict(zip(self.new_index, self.old_index))

    @property
    def by_id(self) -> int:
        return self.how.count("id")

    @property
    def by_name(self) -> int:
        return self.how.count("name")

    @property
    def by_position(self) -> bool:
        return "position" in self.how

    @property
    def is_identity(self) -> bool:
        """The same labels in the same order."""
        n = self.num_new
        return self.num_old == n and self.new_index == self.old_index == tuple(range(n))

    @classmethod
    def positional(cls, num_classes: int) -> "LabelMatch":
        """Label ``i`` is label ``i`` (for label sets with nothing to match them by)."""
        index = tuple(range(num_classes))
        return cls(index, index, ("position",) * num_classes, (), (), num_classes, num_classes)


def _side(ids: Optional[Sequence[str]], names: Optional[Sequence[str]], what: str) -> int:
    if ids is None and names is None:
        raise ValueError(f"the {what} label set has neither ids nor names to match by")
    if ids is not None and names is not None and len(ids) != len(names):
        raise ValueError(f"the {what} label set has {len(ids)} ids but {len(names)} names")
    return len(ids) if ids is not None else len(names)


def match_labels(old_ids: Optional[Sequence[str]], old_names: Optional[Sequence[str]],
                 new_ids: Optional[Sequence[str]],
                 new_names: Optional[Sequence[str]]) -> LabelMatch:
    """Match the new label set to the old one: first by id (where both sets have ids; empty
    ids count as none), then the rest by display name (case-insensitive, ``_`` as space,
    white space normalised), each old label used once. Ids from different namespaces thus
    still match by name; :class:`FinetuneReport` lists the labels matched by name.
    ``new_index`` is in new-set order."""
    num_old = _side(old_ids, old_names, "old")
    num_new = _side(new_ids, new_names, "new")
    found: Dict[int, Tuple[int, str]] = {}
    used = set()
    if old_ids is not None and new_ids is not None:
        by_id: Dict[str, int] = {}
        for j, mid in enumerate(old_ids):
            if mid:
                by_id.setdefault(mid, j)
        for i, mid in enumerate(new_ids):
            j = by_id.get(mid) if mid else None
            if j is not None and j not in used:
                found[i] = (j, "id")
                used.add(j)
    if old_names is not None and new_names is not None:
        by_name: Dict[str, List[int]] = {}
        for j, name in enumerate(old_names):
            if name and j not in used:
                by_name.setdefault(normalized_name(name), []).append(j)
        for i, name in enumerate(new_names):
            if i in found or not name:
                continue
            free = [j for j in by_name.get(normalized_name(name), []) if j not in used]
            if free:
                found[i] = (free[0], "name")
                used.add(free[0])
    order = sorted(found)
    return LabelMatch(new_index=tuple(order), old_index=tuple(found[i][0] for i in order),
                      how=tuple(found[i][1] for i in order),
                      unmatched_new=tuple(i for i in range(num_new) if i not in found),
                      unmatched_old=tuple(j for j in range(num_old) if j not in used),
                      num_new=num_new, num_old=num_old)
