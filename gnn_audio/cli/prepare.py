"""``gnn-audio prepare [--data SOURCE] SOURCE OPTIONS``: decode a data source's splits once
into the waveform stores that training and ``gnn-audio eval`` read
(:func:`gnn_audio.train.data.prepare_split`): ``STORE_DIR/SPLIT_RATE``, ``STORE_DIR``
defaulting to ``DATA_DIR/gnn_audio_stores``. Embedding sources have nothing to decode: their
splits are read and reported.

A store folder that cannot be written (read-only, a file, under a file) is reported in one line
before anything is read; an ``OSError`` met while writing (a full disk) in one line naming the
store or file."""
from __future__ import annotations

import argparse
import os
from typing import Optional

from gnn_audio.cli.common import (add_source_options, add_store_options, check_writable_dir,
                                  data_paths, int_at_least, say, write_error)

__all__ = ["add_parser", "run"]

COMMAND = "prepare"
HELP = "decode a data set into the waveform stores training reads"


def run(args: argparse.Namespace) -> int:
    if args.stats and args.splits is not None and "train" not in args.splits:
        say(COMMAND, "--stats needs the train split in --splits")  # before any work
        return 2
    from gnn_audio.data.readers.sources import get_source, infer_source

    try:
        paths = data_paths(args, store_workers=args.workers)
        source = get_source(args.data) if args.data else infer_source(paths.options)
        splits = args.splits or source.splits(paths.options)
        source.check(paths.options, splits)
    except ValueError as err:  # options that do not name a data set: a usage error
        say(COMMAND, err)
        return 2
    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.features import FSD50K_FBANK
    from gnn_audio.data.readers import DataError
    from gnn_audio.data.store import StoreError
    from gnn_audio.train.data import (NORM_STATS_FILE, prepare_split, store_folder,
                                      store_root, write_norm_stats)

    if source.reads != "logmel":
        say(COMMAND, f"{source.name}: {source.reads} data has nothing to decode; training "
            "and eval read it as it is")
    else:
        problem = _store_dir_problem(paths, source)
        if problem is not None:  # before anything is read or decoded
            say(COMMAND, problem)
            return 1
    stores = {}
    for split in splits:
        try:
            data, store = prepare_split(source, paths, split, sample_rate=args.sample_rate,
                                        dtype=args.dtype, progress=not args.quiet)
        except OSError as err:  # a full disk while the store is written: name the store
            target = (store_folder(paths, source, split, args.sample_rate)
                      if source.reads == "logmel" else source.where(paths.options, split))
            say(COMMAND, write_error(err, target, f"the {split} store"))
            return 1
        except (DataError, StoreError, AudioError, ValueError) as err:
            say(COMMAND, err)  # one line naming the file
            return 1
        for warning in getattr(data, "warnings", ()):  # e.g. a class --skip-bad emptied
            say(COMMAND, f"warning: {warning}")
        if store is None:
            labels = source.label_set(paths.options, data)
            print(f"{split}: {len(data)} clips, {len(labels)} classes <- "
                  f"{source.where(paths.options, split)}", flush=True)
            continue
        stores[split] = store
        hours = float(store.lengths.sum()) / store.sample_rate / 3600
        print(f"{split}: {len(store)} clips, {store.num_classes} classes, {hours:.2f} h -> "
              f"{store.path} ({store.report.summary()})", flush=True)
    if args.stats and source.reads == "logmel":
        fb = FSD50K_FBANK.replace(sample_rate=args.sample_rate)
        path = store_root(paths, source) / NORM_STATS_FILE
        try:
            stats = write_norm_stats(stores["train"], fb, path, progress=not args.quiet)
        except OSError as err:
            say(COMMAND, write_error(err, path, "the log-mel statistics"))
            return 1
        print(f"train log-mel: norm_mean {stats['norm_mean']:.4f}, norm_std "
              f"{stats['norm_std']:.4f} -> {path}")
    elif args.stats:
        say(COMMAND, f"--stats: {source.name} data has no log-mel to normalise")
    return 0


def _store_dir_problem(paths, source) -> Optional[str]:
    """One line when the folder of the waveform stores cannot be written
    (:func:`~gnn_audio.cli.common.check_writable_dir`), else ``None``. A default folder
    (``gnn_audio_stores/`` in the data folder) is not checked when the data folder is not
    there: reading the split reports that."""
    from gnn_audio.train.data import store_root

    if not paths.store_dir:
        base = paths.options.get(source.store_base) if source.store_base else None
        if base and not os.path.isdir(base):
            return None
    try:
        root = store_root(paths, source)
    except ValueError as err:  # a default folder that is not writable
        return str(err)
    return check_writable_dir(str(root), "the waveform stores")


def add_parser(sub) -> None:
    from gnn_audio.data.readers.sources import SPLITS, list_sources

    p = sub.add_parser(
        COMMAND, help=HELP,
        description="Decode every split of a data source once into the waveform stores "
        "that `gnn-audio train` and `gnn-audio eval` read: STORE_DIR/SPLIT_RATE (e.g. "
        "DATA_DIR/gnn_audio_stores/train_16000), STORE_DIR defaulting to training's. A store "
        "that is current is reused; training then starts without decoding. Embedding "
        "sources have nothing to decode: their splits are read and reported.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, choices=list_sources(),
                   help="the data source (default: the one whose options are given)")
    p.add_argument("--splits", nargs="+", default=None, choices=list(SPLITS),
                   help="splits to store (default: every split the options give)")
    p.add_argument("--workers", type=int_at_least(0), default=0,
                   help="decoding processes (default 0: in the main process)")
    p.add_argument("--sample-rate", type=int_at_least(1), default=16000,
                   help="sample rate of the stored waveforms: the front-end's (default 16000; "
                   "training reads the stores of its recipe's rate)")
    p.add_argument("--dtype", default="int16", choices=["int16", "float16"],
                   help="sample type of the stores (default int16, the one training builds; a "
                   "float16 store is rebuilt by training)")
    p.add_argument("--stats", action="store_true",
                   help="also compute the train split's log-mel mean and std "
                   "(STORE_DIR/norm_stats.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("waveform stores")
    g.add_argument("--store-dir", "--out", dest="store_dir", default=argparse.SUPPRESS,
                   metavar="STORE_DIR", help="folder of the stores, one STORE_DIR/SPLIT_RATE "
                   "per split (default: training's, DATA_DIR/gnn_audio_stores)")
    add_store_options(g, names=("skip_bad",))
    add_source_options(p)
    p.set_defaults(func=run)
