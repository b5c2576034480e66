"""Finding a label by the name a user typed: exact, then ignoring case, spaces and
underscores; otherwise one line that lists the closest names."""
from __future__ import annotations

import difflib
from typing import Sequence, Union

__all__ = ["resolve_label"]


def _normal(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


def resolve_label(label: Union[str, int], label_names: Sequence[str], where: str = "") -> int:
    """The index of ``label`` in ``label_names``.

    ``label`` is a name (``"Deep_tone"``; ``"deep tone"`` matches too: case, spaces and
    underscores are ignored when no name matches exactly) or an index. Raises
    ``ValueError`` with one line naming ``where`` (e.g. the checkpoint) and the closest label
    names for an unknown name, ``IndexError``-like ``ValueError`` for an index out of range.
    """
    prefix = f"{where}: " if where else ""
    names = list(label_names)
    if isinstance(label, int) and not isinstance(label, bool):
        if not 0 <= label < len(names):
            raise ValueError(f"{prefix}label index {label} out of range (0-{len(names) - 1})")
        return label
    if not isinstance(label, str):
        raise TypeError(f"label must be a name or an index (got {type(label).__name__})")
    if label in names:
        return names.index(label)
    normal = [_normal(n) for n in names]
    hits = [i for i, n in enumerate(normal) if n == _normal(label)]
    if len(hits) == 1:
        return hits[0]
    close = difflib.get_close_matches(_normal(label), normal, n=5, cutoff=0.5)
    if not close:  # a fragment of a name ("tone") is a hint too
        close = [n for n in normal if _normal(label) in n][:5]
    if close:
        hint = "closest: " + ", ".join(names[normal.index(c)] for c in close)
    else:
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} labels)" if len(names) > 8 else "")
        hint = f"labels: {shown}"
    raise ValueError(f"{prefix}unknown label {label!r} ({hint})")
