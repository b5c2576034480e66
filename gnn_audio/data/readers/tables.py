"""CSV reading shared by the readers: text files, rows with their line numbers, the
``index,mid,display_name`` class-list CSV and comma-separated label-id fields."""
from __future__ import annotations

import csv
import io
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from gnn_audio.data.readers.errors import DataError
from gnn_audio.labels import LabelSet
from gnn_audio.types import PathLike

__all__ = ["BadRow", "read_text", "csv_rows", "csv_header", "read_class_csv", "make_label_set",
           "parse_label_ids", "label_indices"]


class BadRow(Exception):
    """Raised by the row helpers with a one-line reason; the reader adds ``file:line`` and
    raises :class:`DataError` or skips the row."""


def read_text(path: PathLike) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark is dropped)."""
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise DataError(f"{p}: no such file")
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError as err:
        line = err.object[:err.start].count(b"\n") + 1
        raise DataError(f"{p}:{line}: not UTF-8 text ({err.reason})") from None


def csv_rows(path: str, text: str, **fmtparams) -> Iterator[Tuple[int, List[str]]]:
    """``(line number, fields)`` of every non-blank CSV record of ``text`` (read from
    ``path``, named in errors); the line number is where the record starts."""
    reader = csv.reader(io.StringIO(text), strict=True, **fmtparams)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"{path}:{start}: malformed CSV ({err})") from None
        if any(field.strip() for field in row):
            yield start, row
        start = reader.line_num + 1


def csv_header(path: str, rows: Iterator[Tuple[int, List[str]]],
            required: Sequence[str]) -> Tuple[List[str], Dict[str, int]]:
    """Read the header row of ``rows`` and check it names every ``required`` column.

    Returns:
        the stripped header and ``column name -> position``.
    """
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataError(f"{path}: empty file, expected a header {','.join(required)}") from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}:1: header {','.join(header)!r} lacks column(s) "
                        f"{', '.join(missing)} (expected {','.join(required)})")
    return header, {c: header.index(c) for c in header}


def read_class_csv(path: PathLike, name: Optional[str] = None) -> LabelSet:
    """Read a class list in the AudioSet / PSLA format: a header ``index,mid,display_name``,
    then one row per class (``display_name`` may be quoted and contain commas).

    The indices must run over ``0 .. N-1`` (in any order); ids must be unique. ``name`` defaults
    to the file's stem.
    """
    p = os.fspath(path)
    rows = csv_rows(p, read_text(p))
    header, col = csv_header(p, rows, ("index", "mid", "display_name"))
    by_index: Dict[int, Tuple[str, str]] = {}
    seen: Dict[str, int] = {}
    for line, row in rows:
        where = f"{p}:{line}"
        if len(row) != len(header):
            raise DataError(f"{where}: expected {len(header)} columns "
                            f"({','.join(header)}), found {len(row)}")
        index, mid, display = (row[col[c]].strip() for c in ("index", "mid", "display_name"))
        try:
            i = int(index)
        except ValueError:
            raise DataError(f"{where}: class index {index!r} is not an integer") from None
        if not mid:
            raise DataError(f"{where}: empty class id")
        if i in by_index:
            raise DataError(f"{where}: class index {i} appears twice")
        if mid in seen:
            raise DataError(f"{where}: class id {mid!r} appears twice (also line {seen[mid]})")
        by_index[i], seen[mid] = (mid, display), line
    return make_label_set(p, by_index, name or os.path.splitext(os.path.basename(p))[0])


def make_label_set(path: str, by_index: Dict[int, Tuple[str, str]], name: str) -> LabelSet:
    """A :class:`LabelSet` from ``class index -> (id, display name)`` read from ``path``;
    the indices must run over ``0 .. N-1``."""
    if not by_index:
        raise DataError(f"{path}: no classes listed")
    if sorted(by_index) != list(range(len(by_index))):
        gaps = sorted(set(range(len(by_index))) - set(by_index))[:3]
        raise DataError(f"{path}: class indices must run 0..{len(by_index) - 1}; "
                        f"missing {', '.join(map(str, gaps))}")
    order = [by_index[i] for i in range(len(by_index))]
    return LabelSet(name, tuple(m for m, _ in order), tuple(n for _, n in order))


def parse_label_ids(field: str, what: str = "label id") -> List[str]:
    """Split a comma-separated list (``"/m/09x0r,/t/dd00088"``) into stripped items.

    Raises:
        BadRow: for an empty list or an empty item.
    """
    items = [s.strip() for s in field.split(",")]
    if items == [""]:
        raise BadRow(f"empty {what} list")
    if "" in items:
        raise BadRow(f"empty {what} in {field!r}")
    return items


def label_indices(mids: Sequence[str], index: Dict[str, int]) -> Tuple[int, ...]:
    """Sorted unique class indices of ``mids``.

    Raises:
        BadRow: for an id not in the class list.
    """
    out = set()
    for mid in mids:
        if mid not in index:
            raise BadRow(f"unknown label id {mid!r}")
        out.add(index[mid])
    return tuple(sorted(out))
