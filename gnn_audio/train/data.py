"""The data sets of a training run: where the files are (:class:`DataPaths`: the options of the
recipe's data source and where its waveform stores go), read into train / validation /
evaluation splits (:class:`DataSplits`) for a recipe.

The sources are those of :mod:`gnn_audio.data.readers.sources` (``recipe.data.source``):

* ``fsd50k``: an FSD50K-layout folder (``--data-dir``);
* ``audioset``: AudioSet segment CSVs (``--train-csv``, ``--eval-csv``, ``--audio-dir``) or
  PSLA / AST JSON datafiles (``--train-datafile``, ...);
* ``embeddings``: AudioSet embedding TFRecords (``--train-records``, ...), read into memory.

Audio sources are decoded once per split into a :class:`~gnn_audio.data.store.WaveformStore`
at the front-end's rate, ``STORE_DIR/SPLIT_RATE`` (:func:`store_folder`; ``STORE_DIR``
defaults to ``DATA_DIR/gnn_audio_stores``, or ``AUDIO_DIR/gnn_audio_stores``), and reused
while current. ``gnn-audio prepare`` and ``gnn-audio eval`` build and read the same folders
(:func:`prepare_split`, :func:`open_split_store`).

AudioSet has no validation split: without ``--val-csv`` / ``--val-datafile`` /
``--val-records`` the evaluation split validates (PSLA and AST do the same), and the run log
says so, because choosing the best epoch on it then favours the reported figure.

Under DDP, rank 0 builds the stores while the others wait; every rank then maps them.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from gnn_audio.data.clips import ClipList
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.readers.sources import SPLITS, Source, get_source, source_options
from gnn_audio.data.stats import compute_norm_stats
from gnn_audio.data.store import WaveformStore
from gnn_audio.files import atomic_write_text
from gnn_audio.labels.label_sets import LABEL_SETS, LabelSet, load_label_set
from gnn_audio.metrics import tagging_metrics

__all__ = ["DataPaths", "DataSplits", "load_splits", "label_frequency_baseline",
           "split_fingerprint",
           "build_split_store", "open_split_store", "prepare_split", "store_folder",
           "store_root", "write_norm_stats", "STORE_OPTIONS"]

#: the options of the stores, with their help texts (the source options come from the source)
STORE_OPTIONS: Dict[str, str] = {
    "store_dir": "folder of the waveform stores, one STORE_DIR/SPLIT_RATE per split (default "
                 "DATA_DIR/gnn_audio_stores)",
    "skip_bad": "skip unusable rows and files (listed in the store's skipped.txt)",
    "store_workers": "processes decoding audio into the stores"}


class DataPaths:
    """Where a run's data lives (machine-specific, so not part of the recipe): the options of
    its data source (``data_dir``, ``train_csv``, ... :func:`~gnn_audio.data.readers.sources.
    source_options`) and the stores' (``store_dir``, ``skip_bad``, ``store_workers``).

    >>> DataPaths(data_dir="/data/FSD50K")
    >>> DataPaths(train_datafile="train.json", eval_datafile="eval.json", store_dir="stores")
    """

    __slots__ = ("options", "store_dir", "skip_bad", "store_workers")

    def __init__(self, *, store_dir: Optional[str] = None, skip_bad: bool = False,
                 store_workers: int = 0, **options: Any) -> None:
        known = source_options()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown data options {unknown}; the sources' options: "
                             f"{', '.join(known)}")
        self.options: Dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        self.store_dir = store_dir
        self.skip_bad = bool(skip_bad)
        self.store_workers = int(store_workers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataPaths) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return "DataPaths(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    def to_dict(self) -> dict:
        """Plain values (``config.json``'s ``data_paths``): the stores' options and the source
        options that are set, paths made absolute (a relative ``--data-dir`` would name
        another folder when the run is resumed from elsewhere)."""
        declared = source_options()
        options = {k: (_absolute(v) if declared[k].path and isinstance(v, str) else v)
                   for k, v in self.options.items()}
        return {"store_dir": None if self.store_dir is None else _absolute(self.store_dir),
                "skip_bad": self.skip_bad, "store_workers": self.store_workers, **options}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DataPaths":
        """The paths of :meth:`to_dict`'s form (also the 15 flat fields of older run
        directories, unset ones as ``None``)."""
        values = dict(values)
        return cls(store_dir=values.pop("store_dir", None),
                   skip_bad=values.pop("skip_bad", False) or False,
                   store_workers=values.pop("store_workers", 0) or 0,
                   **{k: v for k, v in values.items() if v is not None})

    def check(self, source: str, splits=("train", "eval")) -> None:
        """Raise ``ValueError`` (one line naming the flag) when the options do not give the
        splits ``splits`` of the source named ``source``."""
        get_source(source).check(self.options, splits)


@dataclass
class DataSplits:
    """The three splits as map-style data sets, their class list and the training targets."""

    train: object
    val: object
    eval: object
    label_set: LabelSet
    train_targets: np.ndarray
    fbank: Optional[FbankConfig]
    notes: List[str]
    #: where ``fbank``'s mean / std come from (one line; ``None`` without a front-end)
    norm_from: Optional[str] = None


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def label_frequency_baseline(train_targets: np.ndarray, eval_targets: np.ndarray) -> float:
    """mAP of scoring every clip with the training split's label frequencies (the floor a
    model must beat)."""
    freq = np.asarray(train_targets, dtype=np.float64).mean(0, keepdims=True)
    scores = np.broadcast_to(freq, np.asarray(eval_targets).shape)
    return float(tagging_metrics(scores, eval_targets)["mAP"])


def split_fingerprint(dataset) -> str:
    """A digest of what a split holds: its class list, its clips (ids, in order) and each
    clip's labels; the paths of the audio files are left out (a data set moved to another
    folder keeps its fingerprint). A resumed run compares it with its state's, so a data set
    whose clips or labels changed is not trained on as if it were the same."""
    digest = hashlib.blake2b(digest_size=16)
    labels = getattr(dataset, "label_set", None)
    if labels is not None:
        digest.update("\n".join(labels.mids).encode() + b"\0")
    if hasattr(dataset, "clip_id"):
        digest.update("\n".join(dataset.clip_id(i) for i in range(len(dataset))).encode())
    targets = dataset.targets
    targets = targets.numpy() if hasattr(targets, "numpy") else np.asarray(targets)
    digest.update(f"{targets.shape}".encode())
    digest.update(np.packbits(targets > 0.5, axis=None).tobytes())
    return digest.hexdigest()


def store_root(paths: DataPaths, source: Source) -> Path:
    """The folder of the waveform stores: ``store_dir``, else ``gnn_audio_stores/`` in the
    source's data folder (``--data-dir``, ``--audio-dir``; the working directory for
    datafiles)."""
    if paths.store_dir:
        return Path(paths.store_dir)
    base = paths.options.get(source.store_base) if source.store_base else None
    root = Path(base or ".") / "gnn_audio_stores"
    parent = root if root.exists() else root.parent
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{parent} is not writable: pass --store-dir for the waveform stores")
    return root


def store_folder(paths: DataPaths, source: Source, split: str, sample_rate: int) -> Path:
    """The store of one split: ``STORE_DIR/SPLIT_RATE`` (e.g. ``.../gnn_audio_stores/
    train_16000``)."""
    return store_root(paths, source) / f"{split}_{sample_rate}"


def build_split_store(clips: ClipList, split: str, paths: DataPaths, source: Source,
                      sample_rate: int, *, dtype: str = "int16", progress: bool = True,
                      log: Optional[Callable[[str], None]] = print) -> WaveformStore:
    """The waveform store of one split (:func:`store_folder`), built or brought up to date
    (reused while current)."""
    folder = store_folder(paths, source, split, sample_rate)
    store = WaveformStore.build(clips, folder, sample_rate=sample_rate, dtype=dtype,
                                skip_bad=paths.skip_bad, num_workers=paths.store_workers,
                                progress=progress)
    if log is not None:
        log(f"{split}: {len(store)} clips -> {folder} ({store.report.summary()})")
    return store


def open_split_store(clips: ClipList, split: str, paths: DataPaths, source: Source,
                     sample_rate: int, *, is_main: bool = True,
                     barrier: Callable[[], None] = lambda: None, progress: bool = True,
                     log: Optional[Callable[[str], None]] = print) -> WaveformStore:
    """The store of one split as every rank of a run (training or ``gnn-audio eval``) sees
    it: the main rank builds it or finds it current while the others wait, then every rank
    maps it."""
    store = build_split_store(clips, split, paths, source, sample_rate, progress=progress,
                              log=log) if is_main else None
    barrier()
    return store if store is not None else WaveformStore(
        store_folder(paths, source, split, sample_rate))


def prepare_split(source: Source, paths: DataPaths, split: str, *, sample_rate: int = 16000,
                  dtype: str = "int16", progress: bool = True) -> Tuple[Any, Any]:
    """``gnn-audio prepare`` of one split: ``(what was read, store)``: for an audio source the
    split's :class:`~gnn_audio.data.clips.ClipList` and its waveform store, built where
    training and evaluation read it (:func:`store_folder`); for an embedding source the data
    set and ``None`` (nothing to decode)."""
    data = source.read(paths.options, split, skip_bad=paths.skip_bad)
    if source.reads != "logmel":
        return data, None
    return data, build_split_store(data, split, paths, source, sample_rate, dtype=dtype,
                                   progress=progress, log=None)


#: the file of the training split's log-mel statistics in ``STORE_DIR`` (``gnn-audio prepare
#: --stats``), read by training runs whose normalisation is computed (:func:`_normalisation`)
NORM_STATS_FILE = "norm_stats.json"


def _stats_key(fbank: FbankConfig) -> Dict[str, Any]:
    """The front-end settings log-mel statistics depend on (not the crop length, nor the
    normalisation itself)."""
    return {k: v for k, v in fbank.to_dict().items()
            if k not in ("target_length", "norm_mean", "norm_std")}


def write_norm_stats(store: WaveformStore, fbank: FbankConfig, path, *,
                     split: str = "train", progress: bool = True) -> Dict[str, Any]:
    """The log-mel mean and std of ``store`` under ``fbank``, written as JSON to ``path``
    with what they were computed on (the store's data file and clip count, the front-end)."""
    mean, std = compute_norm_stats(store, fbank, progress=progress)
    stats = {"norm_mean": mean, "norm_std": std, "split": split, "clips": len(store),
             "store": store.data_path.name, "fbank": _stats_key(fbank)}
    atomic_write_text(path, json.dumps(stats, indent=2) + "\n")
    return stats


def _prepared_stats(path: Path, store: WaveformStore,
                    fbank: FbankConfig) -> Optional[Tuple[float, float]]:
    """The mean and std of :func:`write_norm_stats`'s file ``path`` when they were computed
    on ``store`` as it is now under ``fbank``'s settings; ``None`` otherwise (no file, another
    build of the store, another front-end, a damaged file)."""
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
        if (stats["store"] == store.data_path.name and stats["clips"] == len(store) and
                stats["fbank"] == json.loads(json.dumps(_stats_key(fbank)))):
            return float(stats["norm_mean"]), float(stats["norm_std"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _check_vocabularies(lists: dict) -> None:
    first = next(iter(lists.values()))
    for split, clips in lists.items():
        if clips.label_set.mids != first.label_set.mids:
            raise ValueError(f"the {split} split has another class list than the "
                             f"{next(iter(lists))} split")
        if len(clips) == 0:
            raise ValueError(f"the {split} split has no usable clips")


def load_splits(recipe, paths: DataPaths, *, is_main: bool = True,
                barrier: Callable[[], None] = lambda: None,
                log: Callable[[str], None] = print, progress: bool = True,
                before_decoding: Optional[Callable[[LabelSet], None]] = None) -> DataSplits:
    """Read the splits of the source ``recipe.data.source`` from ``paths`` (see the module
    docstring). ``before_decoding(label_set)`` is called once the clip lists are read, before
    any audio is decoded (the trainer checks its run directory's free space there).

    ``recipe.data.fbank`` is returned with the training split's mean / std when
    ``recipe.data.norm_stats == "compute"``. Data errors raise one-line exceptions naming the
    file (:class:`~gnn_audio.data.readers.DataError`, :class:`~gnn_audio.data.store.StoreError`).
    """
    source = get_source(recipe.data.source)
    paths.check(source.name)
    notes: List[str] = []
    given = source.splits(paths.options)
    if source.reads == "embedding":
        return _embedding_splits(source, paths, given, notes, log, before_decoding)

    lists = {split: source.read(paths.options, split, skip_bad=paths.skip_bad)
             for split in given}
    notes += [f"warning: {w}" for clips in lists.values() for w in clips.warnings]
    if "val" not in lists:
        lists["val"] = lists["eval"]
        notes.append("no validation split given: the evaluation split validates (as PSLA / "
                     "AST); the best epoch is then chosen on it")
    _check_vocabularies(lists)
    if before_decoding is not None:
        before_decoding(lists["train"].label_set)
    fb = recipe.data.fbank
    stores: Dict[str, WaveformStore] = {}
    for split in SPLITS:
        if split == "val" and lists["val"] is lists["eval"]:
            continue
        stores[split] = open_split_store(lists[split], split, paths, source, fb.sample_rate,
                                         is_main=is_main, barrier=barrier, progress=progress,
                                         log=log)
    stores.setdefault("val", stores["eval"])
    fb, norm_from = _normalisation(recipe.data.norm_stats, fb, source, stores["train"],
                                   store_root(paths, source) / NORM_STATS_FILE)
    notes.append(f"log-mel normalisation: mean {fb.norm_mean}, std {fb.norm_std} ({norm_from})")
    train = TaggingDataset(stores["train"], fb, recipe.data.augment, train=True,
                           seed=recipe.seed)
    # evaluation items keep the whole clip when it is scored in sliding windows
    eval_fb = fb.replace(target_length=None) if "windows" in recipe.eval.modes else fb
    val = TaggingDataset(stores["val"], eval_fb, train=False)
    test = val if stores["eval"] is stores["val"] else TaggingDataset(stores["eval"], eval_fb,
                                                                       train=False)
    return DataSplits(train, val, test, stores["train"].label_set,
                      np.asarray(stores["train"].targets), fb, notes, norm_from)


#: clips of the training split the normalisation statistics are computed on, at most
NORM_CLIPS = 2000


def _normalisation(norm_stats: str, fb: FbankConfig, source: Source,
                   train: WaveformStore,
                   prepared: Optional[Path] = None) -> Tuple[FbankConfig, str]:
    """The front-end with the mean / std ``norm_stats`` asks for (see
    :class:`~gnn_audio.train.recipe.DataSection`), and a line saying where they come from.
    Statistics to compute are read from ``prepared`` (``gnn-audio prepare --stats``) when
    that file holds those of this training store under this front-end."""
    why = ""
    if norm_stats == "auto":
        if fb.norm_mean == 0.0 and fb.norm_std == 1.0:
            return fb, "the front-end's: no normalisation (mean 0, std 1)"
        if source.name in LABEL_SETS:
            if tuple(train.label_set.mids) == load_label_set(source.name).mids:
                return fb, (f"the recipe's, computed on {source.name}, whose "
                            f"{len(train.label_set)}-class list the training split has")
            why = (f"the training split's class list is not {source.name}'s published one, "
                   "so ")
        norm_stats = "compute"
    if norm_stats == "recipe":
        return fb, "the recipe's (norm_stats=recipe)"
    known = None if prepared is None else _prepared_stats(prepared, train, fb)
    if known is not None:
        fb = fb.replace(norm_mean=round(known[0], 4), norm_std=round(known[1], 4))
        return fb, (f"{why}those of all {len(train)} clips of the training split in "
                    f"{prepared} (gnn-audio prepare --stats)")
    used = min(len(train), NORM_CLIPS)
    mean, std = compute_norm_stats(train, fb, max_clips=NORM_CLIPS)
    fb = fb.replace(norm_mean=round(mean, 4), norm_std=round(std, 4))
    return fb, f"{why}computed from {used} of the training split's {len(train)} clips"


def _embedding_splits(source: Source, paths: DataPaths, given, notes: List[str],
                      log, before_decoding=None) -> DataSplits:
    sets = {}
    for split in given:
        sets[split] = source.read(paths.options, split, skip_bad=paths.skip_bad)
        log(f"{split}: {len(sets[split])} clips <- {source.where(paths.options, split)}")
    if "val" not in sets:
        sets["val"] = sets["eval"]
        notes.append("no validation records given: the evaluation split validates")
    labels = source.label_set(paths.options, sets["train"])
    if before_decoding is not None:
        before_decoding(labels)
    return DataSplits(sets["train"], sets["val"], sets["eval"], labels,
                      sets["train"].targets.numpy(), None, notes)
