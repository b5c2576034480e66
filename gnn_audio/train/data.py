"""The data sets of a training run: where the files are (:class:`DataPaths`), read into
train / validation / evaluation splits (:class:`DataSplits`) for a recipe.

* ``fsd50k``: an FSD50K-layout folder (``FSD50K.ground_truth/``, ``FSD50K.dev_audio/``,
  ``FSD50K.eval_audio/``, any vocabulary); each split is decoded once into a
  :class:`~gnn_audio.data.store.WaveformStore` under ``store_dir`` (default
  ``DATA_DIR/gnn_audio_stores``) at the front-end's rate and reused while current.
* ``audioset``: AudioSet segment CSVs (``--train-csv``, ``--eval-csv``, ``--audio-dir``) or
  PSLA / AST JSON datafiles (``--train-datafile``, ...), stored the same way.
* ``embeddings``: AudioSet embedding TFRecords (``--train-records``, ...), read into memory.

AudioSet has no validation split: without ``--val-csv`` / ``--val-datafile`` /
``--val-records`` the evaluation split validates (PSLA and AST do the same), and the run log
says so, because choosing the best epoch on it then favours the reported figure.

Under DDP, rank 0 builds the stores while the others wait; every rank then maps them.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from gnn_audio.data.clips import ClipList
from gnn_audio.data.features import FbankConfig
from gnn_audio.labels.label_sets import LabelSet

__all__ = ["DataPaths", "DataSplits", "load_splits", "label_frequency_baseline",
           "build_split_store"]

SPLITS = ("train", "val", "eval")


@dataclass(frozen=True)
class DataPaths:
    """Where a run's data lives (machine-specific, so not part of the recipe)."""

    data_dir: Optional[str] = None
    store_dir: Optional[str] = None
    audio_dir: Optional[str] = None
    class_csv: Optional[str] = None
    train_csv: Optional[str] = None
    val_csv: Optional[str] = None
    eval_csv: Optional[str] = None
    train_datafile: Optional[str] = None
    val_datafile: Optional[str] = None
    eval_datafile: Optional[str] = None
    train_records: Optional[str] = None
    val_records: Optional[str] = None
    eval_records: Optional[str] = None
    skip_bad: bool = False
    store_workers: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self, data: str) -> None:
        """Raise ``ValueError`` (one line) when the paths do not fit the data kind."""
        if data == "fsd50k":
            if not self.data_dir:
                raise ValueError("--data-dir (an FSD50K-layout folder) is required")
        elif data == "audioset":
            for split in ("train", "eval"):
                csv, datafile = getattr(self, f"{split}_csv"), getattr(self, f"{split}_datafile")
                if not csv and not datafile:
                    raise ValueError(f"AudioSet data needs --{split}-csv (with --audio-dir) or "
                                     f"--{split}-datafile")
                if csv and not self.audio_dir:
                    raise ValueError("--audio-dir is required with AudioSet segment CSVs")
        elif data == "embeddings":
            for split in ("train", "eval"):
                if not getattr(self, f"{split}_records"):
                    raise ValueError(f"embedding data needs --{split}-records (TFRecord files "
                                     "or a glob)")


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


def label_frequency_baseline(train_targets: np.ndarray, eval_targets: np.ndarray) -> float:
    """mAP of scoring every clip with the training split's label frequencies (the floor a
    model must beat)."""
    from gnn_audio.metrics import tagging_metrics

    freq = np.asarray(train_targets, dtype=np.float64).mean(0, keepdims=True)
    scores = np.broadcast_to(freq, np.asarray(eval_targets).shape)
    return float(tagging_metrics(scores, eval_targets)["mAP"])


def _store_root(paths: DataPaths) -> Path:
    if paths.store_dir:
        return Path(paths.store_dir)
    root = Path(paths.data_dir or paths.audio_dir or ".") / "gnn_audio_stores"
    parent = root if root.exists() else root.parent
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{parent} is not writable: pass --store-dir for the waveform stores")
    return root


def build_split_store(clips: ClipList, split: str, paths: DataPaths, sample_rate: int, *,
                      progress: bool = True, log: Callable[[str], None] = print):
    """The waveform store of one split under the store folder (``store_dir``, default
    ``DATA_DIR/gnn_audio_stores``), built or brought up to date (reused while current)."""
    from gnn_audio.data.store import WaveformStore

    folder = store_folder(paths, split, sample_rate)
    store = WaveformStore.build(clips, folder, sample_rate=sample_rate, skip_bad=paths.skip_bad,
                                num_workers=paths.store_workers, progress=progress)
    log(f"{split}: {len(store)} clips -> {folder} ({store.report.summary()})")
    return store


def store_folder(paths: DataPaths, split: str, sample_rate: int) -> Path:
    return _store_root(paths) / f"{split}_{sample_rate}"


def _clip_lists(recipe, paths: DataPaths) -> dict:
    from gnn_audio.data.readers import read_audioset_csv, read_datafile, read_fsd50k

    lists = {}
    for split in SPLITS:
        if recipe.data == "fsd50k":
            lists[split] = read_fsd50k(paths.data_dir, split, skip_bad=paths.skip_bad)
            continue
        csv, datafile = getattr(paths, f"{split}_csv"), getattr(paths, f"{split}_datafile")
        if datafile:
            lists[split] = read_datafile(datafile, paths.class_csv, skip_bad=paths.skip_bad)
        elif csv:
            lists[split] = read_audioset_csv(csv, paths.audio_dir, paths.class_csv,
                                             skip_bad=paths.skip_bad)
    return lists


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
                log: Callable[[str], None] = print, progress: bool = True) -> DataSplits:
    """Read the splits of ``recipe.data`` from ``paths`` (see the module docstring).

    ``recipe.fbank`` is returned with the training split's mean / std when
    ``recipe.norm_stats == "compute"``. Data errors raise one-line exceptions naming the file
    (:class:`~gnn_audio.data.readers.DataError`, :class:`~gnn_audio.data.store.StoreError`).
    """
    paths.check(recipe.data)
    notes: List[str] = []
    if recipe.data == "embeddings":
        return _embedding_splits(recipe, paths, notes, log)

    from gnn_audio.data.dataset import TaggingDataset
    from gnn_audio.data.store import WaveformStore

    lists = _clip_lists(recipe, paths)
    if "val" not in lists:
        lists["val"] = lists["eval"]
        notes.append("no validation split given: the evaluation split validates (as PSLA / "
                     "AST); the best epoch is then chosen on it")
    _check_vocabularies(lists)
    fb = recipe.fbank
    stores = {}
    for split in SPLITS:
        if split == "val" and lists["val"] is lists["eval"]:
            stores[split] = stores.get("eval")
            continue
        if is_main:
            stores[split] = build_split_store(lists[split], split, paths, fb.sample_rate,
                                              progress=progress, log=log)
        barrier()
        stores[split] = stores.get(split) or WaveformStore(
            store_folder(paths, split, fb.sample_rate))
    stores["val"] = stores["val"] or stores["eval"]
    if recipe.norm_stats == "compute":
        from gnn_audio.data.stats import compute_norm_stats

        mean, std = compute_norm_stats(stores["train"], fb, max_clips=2000)
        fb = fb.replace(norm_mean=round(mean, 4), norm_std=round(std, 4))
        notes.append(f"log-mel normalisation from the training split: mean {fb.norm_mean}, "
                     f"std {fb.norm_std}")
    train = TaggingDataset(stores["train"], fb, recipe.augment, train=True, seed=recipe.seed)
    # evaluation items keep the whole clip when it is scored in sliding windows
    eval_fb = fb.replace(target_length=None) if "windows" in recipe.eval_modes else fb
    val = TaggingDataset(stores["val"], eval_fb, train=False)
    test = val if stores["eval"] is stores["val"] else TaggingDataset(stores["eval"], eval_fb,
                                                                       train=False)
    return DataSplits(train, val, test, stores["train"].label_set,
                      np.asarray(stores["train"].targets), fb, notes)


def _embedding_splits(recipe, paths: DataPaths, notes: List[str], log) -> DataSplits:
    from gnn_audio.data.audioset_embeddings import AudioSetEmbeddings
    from gnn_audio.data.readers import read_class_csv
    from gnn_audio.labels import load_label_set

    labels = read_class_csv(paths.class_csv) if paths.class_csv else load_label_set("audioset")
    sets = {}
    for split in SPLITS:
        records = getattr(paths, f"{split}_records")
        if records:
            sets[split] = AudioSetEmbeddings(records, num_classes=len(labels))
            log(f"{split}: {len(sets[split])} clips <- {records}")
    if "val" not in sets:
        sets["val"] = sets["eval"]
        notes.append("no validation records given: the evaluation split validates")
    return DataSplits(sets["train"], sets["val"], sets["eval"], labels,
                      sets["train"].targets.numpy(), None, notes)
