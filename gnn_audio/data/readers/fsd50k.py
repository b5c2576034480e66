"""FSD50K as distributed on Zenodo, and any data set in the same layout.

::

    root/FSD50K.ground_truth/vocabulary.csv   index,name,mid     (no header)
    root/FSD50K.ground_truth/dev.csv          fname,labels,mids,split   (split: train / val)
    root/FSD50K.ground_truth/eval.csv         fname,labels,mids
    root/FSD50K.dev_audio/<fname>.wav
    root/FSD50K.eval_audio/<fname>.wav

or the same without the ``FSD50K.`` prefixes (``ground_truth/``, ``dev_audio/``,
``eval_audio/``). ``labels`` and ``mids`` are quoted comma-separated lists, e.g.
``64760,"Electric_guitar,Guitar","/m/02sgy,/m/0342h",train``. The class list is the data set's
own ``vocabulary.csv``: its size and ids are whatever that file says. Labels are mapped by id
(``mids``); the ``labels`` names must agree with the vocabulary.

**Names with a comma.** FSD50K writes AudioSet's "Narration, monologue" as
``Narration_and_monologue``; a data set in this layout may keep AudioSet's names instead. In
``vocabulary.csv`` such a name is quoted (``5,"Narration, monologue",/m/02qldy``); a row with
more than three fields is read as an unquoted one (first field the index, last the id, the
fields between the name). In ``labels`` the commas of the names and those between them look
alike: ``"Narration, monologue,Speech"`` with ``"/m/02qldy,/m/09x0r"``. The ids decide: each
one takes as many comma-separated items of ``labels`` as its vocabulary name has, and these
must spell that name, as written in the vocabulary or in FSD50K's way (``", "`` and
``", and "`` as ``_and_``, spaces as ``_``).

**Skipped rows.** With ``skip_bad=True`` a class whose every row of the split was skipped has
no clip in it: :attr:`ClipList.warnings` then says so, naming the classes.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.readers.errors import BadInput, DataError
from gnn_audio.data.readers.tables import (BadRow, csv_header, csv_rows, label_indices,
                                           make_label_set, parse_label_ids, read_text)
from gnn_audio.labels import LabelSet
from gnn_audio.types import PathLike

__all__ = ["FSD50K_SPLITS", "FSD50KLayout", "find_fsd50k_layout", "read_fsd50k_vocabulary",
           "read_fsd50k"]

FSD50K_SPLITS = ("train", "val", "eval")
_DEV_SPLITS = ("train", "val")
_LAYOUTS = (("FSD50K.ground_truth", "FSD50K.dev_audio", "FSD50K.eval_audio"),
            ("ground_truth", "dev_audio", "eval_audio"))


@dataclass(frozen=True)
class FSD50KLayout:
    """The folders of an FSD50K-format data set (absolute paths)."""

    ground_truth: str
    dev_audio: str
    eval_audio: str

    @property
    def vocabulary(self) -> str:
        return os.path.join(self.ground_truth, "vocabulary.csv")

    def listing(self, split: str) -> str:
        """The ground-truth CSV that lists ``split``."""
        return os.path.join(self.ground_truth, "eval.csv" if split == "eval" else "dev.csv")

    def audio_dir(self, split: str) -> str:
        return self.eval_audio if split == "eval" else self.dev_audio


def find_fsd50k_layout(root: PathLike) -> FSD50KLayout:
    """Locate ``FSD50K.ground_truth/`` (or ``ground_truth/``) and the audio folders under
    ``root``; the ``FSD50K.`` layout wins when both are present."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise DataError(f"{root}: no such directory")
    for names in _LAYOUTS:
        if os.path.isdir(os.path.join(root, names[0])):
            return FSD50KLayout(*(os.path.join(root, n) for n in names))
    raise DataError(f"{root}: neither FSD50K.ground_truth/ nor ground_truth/ found; "
                    "expected the FSD50K layout")


def read_fsd50k_vocabulary(path: PathLike, name: Optional[str] = None) -> LabelSet:
    """Read FSD50K's ``vocabulary.csv``: rows ``index,name,mid`` without a header (a header
    row ``index,name,mid`` is tolerated). A name with a comma should be quoted; a row of more
    than three fields is taken as such a name left unquoted (``12,Narration, monologue,
    /m/02qldy``: the fields between the index and the id are the name). Indices must run over
    ``0 .. N-1``; names and ids must be unique. ``name`` (the label set's) defaults to
    ``"fsd50k"``."""
    p = os.fspath(path)
    by_index: Dict[int, Tuple[str, str]] = {}
    seen: Dict[Tuple[str, str], int] = {}
    for line, row in csv_rows(p, read_text(p)):
        where = f"{p}:{line}"
        if line == 1 and row and row[0].strip().lower() == "index":
            continue
        if len(row) < 3:
            raise DataError(f"{where}: expected 3 columns (index,name,mid), found {len(row)}")
        index, label, mid = row[0].strip(), ",".join(row[1:-1]).strip(), row[-1].strip()
        try:
            i = int(index)
        except ValueError:
            raise DataError(f"{where}: class index {index!r} is not an integer") from None
        if not label or not mid:
            raise DataError(f"{where}: empty class {'name' if not label else 'id'}")
        if i in by_index:
            raise DataError(f"{where}: class index {i} appears twice")
        for kind, key in (("id", mid), ("name", label)):
            if (kind, key) in seen:
                raise DataError(f"{where}: class {kind} {key!r} appears twice "
                                f"(also line {seen[kind, key]})")
            seen[kind, key] = line
        by_index[i] = (mid, label)
    return make_label_set(p, by_index, name or "fsd50k")


def read_fsd50k(root: PathLike, split: str, *, skip_bad: bool = False) -> ClipList:
    """Read one split (``"train"``, ``"val"`` or ``"eval"``) of an FSD50K-format data set.

    Every row of the listing is checked (column count, ``fname``, ``split`` value, known ids,
    names agreeing with the vocabulary, no fname listed twice), whichever split is read; the
    audio file ``<fname>.wav`` of each clip of ``split`` must exist. A problem raises
    :class:`DataError` naming ``file:line``; with ``skip_bad=True`` the clip is left out and
    listed in :attr:`ClipList.skipped` instead (rows of the other dev split are then left out
    without a record, rows whose split cannot be told are recorded in both), and a class that
    loses every clip of ``split`` that way is named in :attr:`ClipList.warnings`.

    Returns:
        a :class:`ClipList` named ``split`` over the vocabulary's classes, in listing order.
    """
    if split not in FSD50K_SPLITS:
        raise ValueError(f"unknown FSD50K split {split!r}; choose from {FSD50K_SPLITS}")
    layout = find_fsd50k_layout(root)
    audio_dir = layout.audio_dir(split)
    if not os.path.isdir(audio_dir):
        raise DataError(f"{audio_dir}: no such directory (audio of the {split} split)")
    vocab = read_fsd50k_vocabulary(layout.vocabulary,
                                   name=os.path.basename(os.path.abspath(os.fspath(root))))
    index, names = vocab.index(), dict(zip(vocab.mids, vocab.names))

    path = layout.listing(split)
    required = ("fname", "labels", "mids") + (("split",) if split != "eval" else ())
    rows = csv_rows(path, read_text(path))
    header, col = csv_header(path, rows, required)

    bad = BadInput(skip_bad)
    clips: List[Clip] = []
    first_line: Dict[str, int] = {}
    for line, row in rows:
        where = f"{path}:{line}"
        row_split: Optional[str] = "eval" if split == "eval" else None
        try:
            if len(row) != len(header):
                raise BadRow(f"expected {len(header)} columns ({','.join(header)}), "
                             f"found {len(row)}")
            if split != "eval":
                value = row[col["split"]].strip()
                if not value:
                    raise BadRow("missing split value (expected train or val)")
                if value not in _DEV_SPLITS:
                    raise BadRow(f"split {value!r} is neither train nor val")
                row_split = value
            fname = row[col["fname"]].strip()
            if not fname:
                raise BadRow("empty fname")
            if fname in first_line:
                raise BadRow(f"fname {fname!r} listed twice (first at line {first_line[fname]})")
            first_line[fname] = line
            mids = parse_label_ids(row[col["mids"]], "label id")
            labels = label_indices(mids, index)
            _check_names(row[col["labels"]], mids, names, os.path.basename(layout.vocabulary))
            if row_split != split:
                continue
            wav = os.path.join(audio_dir, fname + ".wav")
            if not os.path.exists(wav):
                raise BadRow(f"audio file not found: {wav}")
        except BadRow as err:
            if not skip_bad or row_split in (None, split):
                bad(where, str(err), _row_classes(row, col, index), unsure=row_split is None)
            continue
        clips.append(Clip(fname, wav, labels, where))
    return ClipList(split, vocab, clips, bad.skipped,
                    bad.lost_classes(vocab, clips, path, split))


def _row_classes(row: Sequence[str], col: Dict[str, int],
                 index: Dict[str, int]) -> Tuple[int, ...]:
    """The known class ids of a bad row's ``mids`` field, as far as it can be read (for the
    warning about classes that lost all their clips)."""
    k = col["mids"]
    if k >= len(row):
        return ()
    return tuple(sorted({index[m] for m in (s.strip() for s in row[k].split(","))
                         if m in index}))


@functools.lru_cache(maxsize=4096)
def _name_key(name: str) -> str:
    """``name`` in one spelling for AudioSet's and FSD50K's: ``", "`` and ``", and "`` as
    `` and ``, ``_`` as a space, runs of white space as one space."""
    return " ".join(re.sub(r"\s*,\s*(?:and\s+)?", " and ", name).replace("_", " ").split())


def _name_span(items: Sequence[str], start: int, name: str) -> Optional[int]:
    """How many items of ``items`` from ``start`` on, joined by ``", "``, spell ``name``
    (:func:`_name_key`); ``None`` when no number of them does."""
    key = _name_key(name)
    for end in range(start + 1, len(items) + 1):
        joined = _name_key(", ".join(items[start:end]))
        if joined == key:
            return end - start
        if len(joined) >= len(key):  # one more item only makes it longer
            return None
    return None


def _check_names(field: str, mids: List[str], names: Dict[str, str], vocab_file: str) -> None:
    """Check the ``labels`` field of a row against the vocabulary's names of its ids
    ``mids``, in order: each id takes the items its name spells (:func:`_name_span`), and no
    item may be left over."""
    items = parse_label_ids(field, "label name")
    expected = [names[mid] for mid in mids]
    at = 0
    for name in expected:
        span = _name_span(items, at, name)
        if span is None:
            break
        at += span
    else:
        if at == len(items):
            return
    if not any("," in name for name in expected):  # one item per id
        if len(items) != len(mids):
            raise BadRow(f"{len(items)} label names for {len(mids)} label ids")
        for label, mid in zip(items, mids):  # name the one that differs
            if _name_span([label], 0, names[mid]) is None:
                raise BadRow(f"label {label!r} does not match id {mid!r} "
                             f"({vocab_file} names it {names[mid]!r})")
    raise BadRow(f"label names {field.strip()!r} do not match ids {','.join(mids)!r} "
                 f"({vocab_file} names them {', '.join(map(repr, expected))})")
