"""AudioSet segment CSVs (``balanced_train_segments.csv``, ``eval_segments.csv``, ...) with a
folder of downloaded audio::

    # Segments csv created Sun Mar  5 10:54:31 2017
    # YTID, start_seconds, end_seconds, positive_labels
    --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"

Downloaders name the audio files differently, so the file name is a :meth:`str.format`
``pattern`` over the fields ``ytid``, ``start`` / ``end`` (floats: ``{start:.3f}`` gives
``30.000``), ``start_int`` / ``end_int`` (whole seconds) and ``start_ms`` / ``end_ms``, e.g.
``"Y{ytid}.wav"`` (the default), ``"{ytid}_{start_int}.wav"``,
``"{ytid}_{start_ms}_{end_ms}.flac"``.

Downloads of AudioSet are never complete (videos get deleted), so ``skip_bad=True`` is the
normal way to read these files: the missing clips are left out and listed in
:attr:`ClipList.skipped`.
"""
from __future__ import annotations

import csv
import math
import os
import string
from typing import Dict, List, Optional, Tuple

from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.readers.errors import BadInput, DataError
from gnn_audio.data.readers.tables import (BadRow, label_indices, parse_label_ids,
                                           read_class_csv, read_text)
from gnn_audio.labels import load_label_set
from gnn_audio.types import PathLike

__all__ = ["AUDIOSET_PATTERN_FIELDS", "read_audioset_csv", "audioset_file_name"]

AUDIOSET_PATTERN_FIELDS = ("ytid", "start", "end", "start_int", "end_int", "start_ms", "end_ms")


def audioset_file_name(pattern: str, ytid: str, start: float, end: float) -> str:
    """The audio file name of a segment under ``pattern`` (see the module docstring)."""
    return pattern.format(ytid=ytid, start=start, end=end, start_int=int(start),
                          end_int=int(end), start_ms=int(round(start * 1000)),
                          end_ms=int(round(end * 1000)))


def _check_pattern(pattern: str) -> None:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
        audioset_file_name(pattern, "--PJHxphWEs", 30.0, 40.0)
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(f"audio file name pattern {pattern!r} is invalid ({err!r}); "
                         f"fields: {', '.join(AUDIOSET_PATTERN_FIELDS)}") from None
    if "ytid" not in fields:
        raise ValueError(f"audio file name pattern {pattern!r} must use {{ytid}}")


def read_audioset_csv(csv_path: PathLike, audio_dir: PathLike,
                      class_csv: Optional[PathLike] = None, *, pattern: str = "Y{ytid}.wav",
                      skip_bad: bool = False) -> ClipList:
    """Read an AudioSet segment CSV into a :class:`ClipList` named after the CSV's stem.

    Args:
        csv_path: ``YTID, start_seconds, end_seconds, "positive_labels"`` rows after ``#``
            comment lines.
        audio_dir: the folder of downloaded audio.
        class_csv: the class list (``index,mid,display_name``); ``None`` takes the AudioSet
            list shipped with the package.
        pattern: the audio file name of a segment, relative to ``audio_dir``.
        skip_bad: leave out (and list in :attr:`ClipList.skipped`) segments whose audio file
            is missing or whose row is malformed, instead of raising :class:`DataError`. The
            normal setting for AudioSet, whose downloads are always incomplete.

    Clip ids are ``YTID_start`` (``--PJHxphWEs_30``).
    """
    _check_pattern(pattern)
    p, folder = os.fspath(csv_path), os.path.abspath(os.fspath(audio_dir))
    label_set = read_class_csv(class_csv) if class_csv is not None else load_label_set(
        "audioset")
    text = read_text(p)
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such directory (audio for {p})")
    index = label_set.index()
    bad = BadInput(skip_bad)
    clips: List[Clip] = []
    first: Dict[Tuple[str, float], int] = {}
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        where = f"{p}:{line}"
        labels: Tuple[int, ...] = ()
        try:
            try:
                row = next(csv.reader([raw], skipinitialspace=True, strict=True))
            except csv.Error as err:
                raise BadRow(f"malformed CSV ({err})") from None
            if not clips and not first and row and row[0].strip().upper() == "YTID":
                continue  # a header row outside a comment
            if len(row) != 4:
                raise BadRow(f"expected 4 columns (YTID, start_seconds, end_seconds, "
                             f"positive_labels), found {len(row)}")
            ytid = row[0].strip()
            if not ytid:
                raise BadRow("empty YTID")
            start, end = _seconds(row[1], "start_seconds"), _seconds(row[2], "end_seconds")
            if end <= start:
                raise BadRow(f"end_seconds {end:g} is not after start_seconds {start:g}")
            labels = label_indices(parse_label_ids(row[3]), index)
            if (ytid, start) in first:
                raise BadRow(f"segment {ytid} at {start:g} s listed twice "
                             f"(first at line {first[ytid, start]})")
            first[ytid, start] = line
            wav = os.path.join(folder, audioset_file_name(pattern, ytid, start, end))
            if not os.path.exists(wav):
                raise BadRow(f"audio file not found: {wav}")
        except BadRow as err:
            bad(where, str(err), labels)
            continue
        clips.append(Clip(f"{ytid}_{start:g}", wav, labels, where))
    name = os.path.splitext(os.path.basename(p))[0]
    return ClipList(name, label_set, clips, bad.skipped,
                    bad.lost_classes(label_set, clips, p))


def _seconds(field: str, column: str) -> float:
    try:
        value = float(field)
    except ValueError:
        raise BadRow(f"{column} {field.strip()!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise BadRow(f"{column} {field.strip()!r} is not a time >= 0")
    return value
