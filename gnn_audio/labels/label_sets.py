"""The class lists shipped with the package, FSD50K (200) and AudioSet (527), and the AudioSet
ontology (for label enhancement and for reading FSD50K's vocabulary).

The CSV / JSON files are package data of :mod:`gnn_audio.labels`."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["LabelSet", "load_label_set", "load_ontology", "ontology_parents", "LABEL_SETS",
           "display_names"]

_PACKAGE = "gnn_audio.labels"  # where the CSV / JSON files live

LABEL_SETS = {"fsd50k": "fsd50k_class_labels_indices.csv",
              "audioset": "audioset_class_labels_indices.csv"}


@dataclass(frozen=True)
class LabelSet:
    """An ordered class list: ``mids[i]`` / ``names[i]`` are the id and display name of
    output ``i``."""

    name: str
    mids: Tuple[str, ...]
    names: Tuple[str, ...]

    def __len__(self) -> int:
        return len(self.mids)

    def index(self) -> Dict[str, int]:
        """``mid -> class index``."""
        return {m: i for i, m in enumerate(self.mids)}


def display_names(names: Optional[Sequence[str]], num_classes: int) -> Tuple[str, ...]:
    """``names`` as a tuple, or ``class_<i>`` for each of ``num_classes`` classes without
    names (the one fallback for models and checkpoints that carry no label names)."""
    if names:
        return tuple(names)
    return tuple(f"class_{i}" for i in range(num_classes))


@lru_cache(maxsize=None)
def load_label_set(name: str) -> LabelSet:
    """``"fsd50k"`` or ``"audioset"`` (a ``index,mid,display_name`` CSV shipped as package
    data)."""
    if name not in LABEL_SETS:
        raise ValueError(f"unknown label set {name!r}; choose from {sorted(LABEL_SETS)}")
    text = resources.files(_PACKAGE).joinpath(LABEL_SETS[name]).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    rows.sort(key=lambda r: int(r["index"]))
    return LabelSet(name, tuple(r["mid"] for r in rows), tuple(r["display_name"] for r in rows))


@lru_cache(maxsize=None)
def load_ontology() -> Dict[str, dict]:
    """The AudioSet ontology as ``mid -> entry`` (``name``, ``child_ids``, ...)."""
    text = resources.files(_PACKAGE).joinpath("audioset_ontology.json").read_text(
        encoding="utf-8")
    return {entry["id"]: entry for entry in json.loads(text)}


def ontology_parents() -> Dict[str, List[str]]:
    """``mid -> parent mids`` derived from ``child_ids``."""
    parents: Dict[str, List[str]] = {}
    for mid, entry in load_ontology().items():
        for child in entry.get("child_ids", []):
            parents.setdefault(child, []).append(mid)
    return parents
