"""JSON datafiles of PSLA / AST / the ATGNN authors (label-enhanced PSLA files included)::

    {"data": [{"wav": "audio/Y--PJHxphWEs.wav", "labels": "/m/09x0r,/t/dd00088"}, ...]}

with a class list ``class_labels_indices.csv`` (``index,mid,display_name``). Relative ``wav``
paths are resolved against the JSON file's folder; other keys of an entry are ignored.
"""
from __future__ import annotations

import bisect
import json
import os
import re
from typing import Dict, List, Optional, Tuple

from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.readers.errors import BadInput, DataError
from gnn_audio.data.readers.tables import (BadRow, label_indices, parse_label_ids,
                                           read_class_csv, read_text)
from gnn_audio.labels import LabelSet, load_label_set
from gnn_audio.types import PathLike

__all__ = ["read_datafile"]

_WS = re.compile(r"[ \t\n\r]*")


def read_datafile(json_path: PathLike, class_csv: Optional[PathLike] = None, *,
                  skip_bad: bool = False) -> ClipList:
    """Read a JSON datafile into a :class:`ClipList` named after the file's stem.

    Args:
        json_path: ``{"data": [{"wav": path, "labels": "mid1,mid2"}, ...]}``.
        class_csv: the class list (``index,mid,display_name``); ``None`` takes the AudioSet
            list shipped with the package.
        skip_bad: leave out (and list in :attr:`ClipList.skipped`) entries without ``wav`` or
            ``labels``, with unknown ids, listing a wav twice or whose audio file is missing,
            instead of raising :class:`DataError`.

    A clip's id is its wav file's stem; where stems clash, the wav path relative to the JSON
    file's folder. Invalid JSON and a top level other than ``{"data": [...]}`` always raise,
    naming ``file:line:column`` / the file. Entry errors name ``file:line: data[i]``.
    """
    p = os.fspath(json_path)
    label_set = read_class_csv(class_csv) if class_csv is not None else load_label_set(
        "audioset")
    text = read_text(p)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{p}:{err.lineno}:{err.colno}: invalid JSON ({err.msg})") from None
    if not isinstance(doc, dict) or "data" not in doc:
        raise DataError(f"{p}: expected a JSON object {{\"data\": [...]}}, found "
                        f"{type(doc).__name__}" + (" without 'data'" if isinstance(doc, dict)
                                                   else ""))
    entries = doc["data"]
    if not isinstance(entries, list):
        raise DataError(f"{p}: 'data' must be a list of entries, found "
                        f"{type(entries).__name__}")
    lines = _EntryLines(text, len(entries))
    return _read_entries(p, entries, lines, label_set, BadInput(skip_bad))


def _read_entries(path: str, entries: list, lines: "_EntryLines", label_set: LabelSet,
                  bad: BadInput) -> ClipList:
    folder = os.path.dirname(os.path.abspath(path))
    index = label_set.index()
    listed: List[Clip] = []
    first: Dict[str, int] = {}
    for i, entry in enumerate(entries):
        line = lines(i)
        source = f"{path}:{line}" if line else path
        where = f"{source}: data[{i}]"
        targets: Tuple[int, ...] = ()
        try:
            if not isinstance(entry, dict):
                raise BadRow(f"entry is a {type(entry).__name__}, not an object")
            if "wav" not in entry:
                raise BadRow("entry has no 'wav'")
            wav = entry["wav"]
            if not isinstance(wav, str) or not wav.strip():
                raise BadRow(f"'wav' must be a non-empty path, found {wav!r}")
            if "labels" not in entry:
                raise BadRow("entry has no 'labels'")
            labels = entry["labels"]
            if isinstance(labels, list) and all(isinstance(s, str) for s in labels):
                labels = ",".join(labels)
            if not isinstance(labels, str):
                raise BadRow(f"'labels' must be a string \"mid1,mid2\", found {labels!r}")
            targets = label_indices(parse_label_ids(labels), index)
            full = os.path.normpath(os.path.join(folder, wav.strip()))
            if full in first:
                raise BadRow(f"wav {wav!r} listed twice (first as data[{first[full]}])")
            first[full] = i
            if not os.path.exists(full):
                raise BadRow(f"audio file not found: {full}")
        except BadRow as err:
            bad(where, str(err), targets)
            continue
        listed.append(Clip("", full, targets, source))
    stems: Dict[str, int] = {}
    for clip in listed:
        stem = _stem(clip.path)
        stems[stem] = stems.get(stem, 0) + 1
    clips = [Clip(_stem(c.path) if stems[_stem(c.path)] == 1
                  else os.path.relpath(c.path, folder).replace(os.sep, "/"),
                  c.path, c.labels, c.source) for c in listed]
    name = os.path.splitext(os.path.basename(path))[0]
    return ClipList(name, label_set, clips, bad.skipped,
                    bad.lost_classes(label_set, clips, path))


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


class _EntryLines:
    """Line numbers of the entries of the top-level ``"data"`` list, found by walking the
    JSON text with :meth:`json.JSONDecoder.raw_decode`; ``0`` where they cannot be found."""

    def __init__(self, text: str, count: int) -> None:
        self.text = text
        self.count = count
        self._offsets: Optional[List[int]] = None
        self._newlines: Optional[List[int]] = None

    def __call__(self, i: int) -> int:
        if self._offsets is None:
            try:
                offsets = _data_offsets(self.text)
            except (ValueError, IndexError):
                offsets = None
            self._offsets = offsets if offsets and len(offsets) == self.count else []
            self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        if i >= len(self._offsets):
            return 0
        return bisect.bisect_left(self._newlines, self._offsets[i]) + 1


def _data_offsets(text: str) -> Optional[List[int]]:
    """Character offsets of the elements of the top-level object's ``"data"`` list."""
    decode = json.JSONDecoder().raw_decode
    pos = _WS.match(text, 0).end()
    if text[pos] != "{":
        return None
    pos += 1
    offsets = None
    while True:
        pos = _WS.match(text, pos).end()
        if text[pos] == "}":
            return offsets
        key, pos = decode(text, pos)
        pos = _WS.match(text, pos).end()
        if text[pos] != ":":
            return None
        pos = _WS.match(text, pos + 1).end()
        if key == "data" and text[pos] == "[":
            offsets = []
            pos = _WS.match(text, pos + 1).end()
            while text[pos] != "]":
                offsets.append(pos)
                _, pos = decode(text, pos)
                pos = _WS.match(text, pos).end()
                if text[pos] == ",":
                    pos = _WS.match(text, pos + 1).end()
                elif text[pos] != "]":
                    return None
            pos += 1
        else:
            _, pos = decode(text, pos)
        pos = _WS.match(text, pos).end()
        if text[pos] == ",":
            pos += 1
