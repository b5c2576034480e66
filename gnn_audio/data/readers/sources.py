"""Data sources by name: the one place that knows which data sets a run, ``gnn-audio prepare``
and ``gnn-audio eval`` can read, what each one needs and how it gives its splits.

A :class:`Source` has a name (``--data NAME``), what it gives the model (``logmel``: audio,
decoded once into waveform stores and turned into log-mel features; ``embedding``: AudioSet
embeddings read as they are), its options (each one a command-line flag with its help text,
e.g. ``data_dir`` -> ``--data-dir``), a check of the options that fails in one line naming the
missing flag, and :meth:`Source.read`, which gives one split: a
:class:`~gnn_audio.data.clips.ClipList` for audio sources, a data set for embeddings.

>>> source = get_source("fsd50k")
>>> source.check({"data_dir": "FSD50K"})
>>> clips = source.read({"data_dir": "FSD50K"}, "train")      # a ClipList

===============  =========  ============================================================
source           reads      options
===============  =========  ============================================================
``fsd50k``       logmel     ``data_dir``: an FSD50K-layout folder (all three splits)
``audioset``     logmel     per split ``{split}_csv`` (segment CSVs, with ``audio_dir``) or
                            ``{split}_datafile`` (PSLA / AST JSON); ``class_csv``
``embeddings``   embedding  per split ``{split}_records`` (TFRecord files or a glob);
                            ``class_csv``
===============  =========  ============================================================

AudioSet has no validation split: a source gives ``val`` only when its options name one
(:meth:`Source.splits`). A new source is one :func:`register_source` call here (and its
reader); training, ``prepare`` and ``eval`` take its options from :attr:`Source.options`.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from gnn_audio.data.audioset_embeddings import AudioSetEmbeddings
from gnn_audio.data.clips import ClipList
from gnn_audio.data.readers.audioset_csv import read_audioset_csv
from gnn_audio.data.readers.datafile import read_datafile
from gnn_audio.data.readers.fsd50k import read_fsd50k
from gnn_audio.data.readers.tables import read_class_csv
from gnn_audio.labels import LabelSet, load_label_set

__all__ = ["SPLITS", "READS", "SourceOption", "Source", "register_source", "get_source",
           "list_sources", "source_options", "infer_source"]

#: the splits of a run: training, validation (choosing the best epoch) and evaluation
SPLITS = ("train", "val", "eval")
#: what a source gives the model (the values of ``ModelConfig.input``)
READS = ("logmel", "embedding")

Options = Mapping[str, Any]


@dataclass(frozen=True)
class SourceOption:
    """One option of a source: ``name`` is its key in the options mapping and, with hyphens,
    its command-line flag (``train_csv`` -> ``--train-csv``); ``type`` converts the text
    given on the command line; ``path``: the value names a file, folder or glob (a run
    directory's ``config.json`` stores it absolute, so that the run resumes from anywhere)."""

    name: str
    help: str
    type: Callable[[str], Any] = str
    path: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Source:
    """A data source (see the module docstring).

    Args:
        name: its name (``--data NAME``).
        reads: ``logmel`` (audio files: :meth:`read` gives a ``ClipList``) or ``embedding``
            (:meth:`read` gives a data set of ``(x, y)`` items).
        description: one line for ``--help``.
        options: what it is told (``data_dir``, ``train_csv``, ...).
        splits_given: ``options -> splits`` that the options give (without reading files).
        check_split: ``(options, split) -> None``, raising ``ValueError`` (one line naming
            the flag) when the options do not give ``split``.
        read_split: ``(options, split, skip_bad) -> ClipList or data set``.
        where: ``(options, split) -> str``: the file or folder a split is read from (for logs
            and messages).
        labels: ``options -> LabelSet`` for embedding sources (whose items carry no class
            list); audio sources' class lists come with their ``ClipList``.
        store_base: the option naming the folder whose ``gnn_audio_stores/`` holds the
            waveform stores by default (``None``: the working directory).
    """

    name: str
    reads: str
    description: str
    options: Tuple[SourceOption, ...]
    splits_given: Callable[[Options], Tuple[str, ...]]
    check_split: Callable[[Options, str], None]
    read_split: Callable[[Options, str, bool], Any]
    where: Callable[[Options, str], str]
    labels: Optional[Callable[[Options], LabelSet]] = None
    store_base: Optional[str] = None

    def __post_init__(self) -> None:
        if self.reads not in READS:
            raise ValueError(f"source {self.name}: reads must be one of {READS}, got "
                             f"{self.reads!r}")

    @property
    def option_names(self) -> Tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def splits(self, options: Options) -> Tuple[str, ...]:
        """The splits ``options`` give, in :data:`SPLITS` order."""
        return tuple(s for s in SPLITS if s in self.splits_given(options))

    def check(self, options: Options, splits: Sequence[str] = ("train", "eval")) -> None:
        """Raise ``ValueError`` (one line naming the flag to give) unless ``options`` give
        every split of ``splits``."""
        for split in splits:
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
            self.check_split(options, split)

    def read(self, options: Options, split: str, *, skip_bad: bool = False):
        """Split ``split``: a :class:`~gnn_audio.data.clips.ClipList` (``reads == "logmel"``)
        or a data set (``"embedding"``). Bad listings raise one-line errors naming the file
        (:class:`~gnn_audio.data.readers.DataError`)."""
        self.check(options, (split,))
        return self.read_split(options, split, skip_bad)

    def label_set(self, options: Options, data: Any) -> LabelSet:
        """The class list of a split read by :meth:`read`."""
        return self.labels(options) if self.labels is not None else data.label_set


_SOURCES: Dict[str, Source] = {}


def register_source(source: Source) -> Source:
    """Add ``source`` to the registry. An option another source also declares must be the
    same option (same help and type): the command line has one flag per name."""
    if source.name in _SOURCES:
        raise ValueError(f"source {source.name!r} is already registered")
    known = source_options()
    for option in source.options:
        if option.name in known and known[option.name] != option:
            raise ValueError(f"source {source.name}: option {option.name!r} differs from the "
                             "one another source declares")
    _SOURCES[source.name] = source
    return source


def list_sources(pattern: str = "*") -> List[str]:
    """The registered sources' names matching ``pattern``, in registration order."""
    return [n for n in _SOURCES if fnmatch.fnmatchcase(n, pattern)]


def get_source(name: str) -> Source:
    if name not in _SOURCES:
        raise ValueError(f"unknown data source {name!r}; sources: {', '.join(list_sources())}")
    return _SOURCES[name]


def source_options() -> Dict[str, SourceOption]:
    """Every source's options by name, in registration order (each name once)."""
    out: Dict[str, SourceOption] = {}
    for source in _SOURCES.values():
        for option in source.options:
            out.setdefault(option.name, option)
    return out


def infer_source(options: Options) -> Source:
    """The one source whose own options (those no other source declares) ``options`` set;
    ``ValueError`` (one line) when none or several do."""
    given = {k for k, v in options.items() if v not in (None, False, "")}
    owners: Dict[str, List[str]] = {}
    for source in _SOURCES.values():
        for name in source.option_names:
            owners.setdefault(name, []).append(source.name)
    found = sorted({owners[k][0] for k in given if len(owners.get(k, ())) == 1})
    if len(found) != 1:
        what = "the options of " + " and ".join(found) if found else "no source's options"
        raise ValueError(f"cannot tell the data source: {what} given; name it with --data "
                         f"({', '.join(list_sources())})")
    return _SOURCES[found[0]]


def _given(options: Options, name: str) -> Any:
    value = options.get(name)
    return None if value in (None, "") else value


# --------------------------------------------------------------------------------------------
# fsd50k: an FSD50K-layout folder


def _fsd50k_check(options: Options, split: str) -> None:
    if not _given(options, "data_dir"):
        raise ValueError("--data-dir (an FSD50K-layout folder) is required")


register_source(Source(
    name="fsd50k", reads="logmel",
    description="an FSD50K-layout folder (FSD50K.ground_truth/, FSD50K.dev_audio/, "
                "FSD50K.eval_audio/; any vocabulary)",
    options=(SourceOption("data_dir", "FSD50K-layout folder (FSD50K.ground_truth/, "
                                      "*_audio/)"),),
    splits_given=lambda options: SPLITS,
    check_split=_fsd50k_check,
    read_split=lambda options, split, skip_bad: read_fsd50k(options["data_dir"], split,
                                                            skip_bad=skip_bad),
    where=lambda options, split: str(options.get("data_dir")),
    store_base="data_dir"))


# --------------------------------------------------------------------------------------------
# audioset: segment CSVs with a folder of audio, or JSON datafiles


def _audioset_check(options: Options, split: str) -> None:
    csv, datafile = _given(options, f"{split}_csv"), _given(options, f"{split}_datafile")
    if not csv and not datafile:
        raise ValueError(f"AudioSet data needs --{split}-csv (with --audio-dir) or "
                         f"--{split}-datafile")
    if csv and not _given(options, "audio_dir"):
        raise ValueError("--audio-dir is required with AudioSet segment CSVs")


def _audioset_read(options: Options, split: str, skip_bad: bool) -> ClipList:
    datafile = _given(options, f"{split}_datafile")
    if datafile:
        return read_datafile(datafile, _given(options, "class_csv"), skip_bad=skip_bad)
    return read_audioset_csv(options[f"{split}_csv"], options["audio_dir"],
                             _given(options, "class_csv"), skip_bad=skip_bad)


_CLASS_CSV = SourceOption("class_csv", "class list index,mid,display_name (default: "
                                       "AudioSet's)")

register_source(Source(
    name="audioset", reads="logmel",
    description="AudioSet segment CSVs with their audio folder, or PSLA / AST JSON datafiles",
    options=(SourceOption("audio_dir", "folder of the AudioSet audio named in the segment "
                                       "CSVs"),
             _CLASS_CSV,
             *(SourceOption(f"{s}_csv", f"AudioSet segment CSV of the {s} split")
               for s in SPLITS),
             *(SourceOption(f"{s}_datafile", f"JSON datafile of the {s} split")
               for s in SPLITS)),
    splits_given=lambda options: tuple(s for s in SPLITS if _given(options, f"{s}_csv") or
                                       _given(options, f"{s}_datafile")),
    check_split=_audioset_check,
    read_split=_audioset_read,
    where=lambda options, split: str(_given(options, f"{split}_datafile") or
                                     _given(options, f"{split}_csv")),
    store_base="audio_dir"))


# --------------------------------------------------------------------------------------------
# embeddings: AudioSet's released embedding TFRecords


def _embedding_labels(options: Options) -> LabelSet:
    class_csv = _given(options, "class_csv")
    return read_class_csv(class_csv) if class_csv else load_label_set("audioset")


def _embeddings_check(options: Options, split: str) -> None:
    if not _given(options, f"{split}_records"):
        raise ValueError(f"embedding data needs --{split}-records (TFRecord files or a glob)")


def _embeddings_read(options: Options, split: str, skip_bad: bool) -> AudioSetEmbeddings:
    return AudioSetEmbeddings(options[f"{split}_records"],
                              num_classes=len(_embedding_labels(options)))


register_source(Source(
    name="embeddings", reads="embedding",
    description="AudioSet embedding TFRecords (10 x 128 per clip), read into memory",
    options=(_CLASS_CSV,
             *(SourceOption(f"{s}_records", f"embedding TFRecords (file or glob) of the {s} "
                                            "split") for s in SPLITS)),
    splits_given=lambda options: tuple(s for s in SPLITS if _given(options, f"{s}_records")),
    check_split=_embeddings_check,
    read_split=_embeddings_read,
    where=lambda options, split: str(_given(options, f"{split}_records")),
    labels=_embedding_labels))
