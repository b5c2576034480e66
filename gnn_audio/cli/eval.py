"""``gnn-audio eval --checkpoint CK [--data SOURCE] SOURCE OPTIONS``: the tagging metrics of a
trained checkpoint on one split of any data source training reads
(:func:`gnn_audio.train.evaluate.evaluate_checkpoint`), on the same waveform stores as
training. Embedding checkpoints are scored on TFRecords in crop mode.

``--out`` and ``--scores`` are checked before the checkpoint is loaded (a folder that is
missing or takes no file, a target that is a folder, a scores file that is neither ``.npz``
nor ``.json``); an ``OSError`` met while writing them is one line naming the file."""
from __future__ import annotations

import argparse
import json
import os

from gnn_audio.cli.common import (add_source_options, add_store_options, check_writable,
                                  data_paths, device, int_at_least, no_such_model, positive_float,
                                  say, write_error)

__all__ = ["add_parser", "run"]

COMMAND = "eval"
HELP = "score a trained checkpoint on a data split"


def run(args: argparse.Namespace) -> int:
    from gnn_audio.data.readers.sources import get_source, infer_source

    extra = {}
    if args.datafile:  # the older spelling of --SPLIT-datafile
        extra[f"{args.split}_datafile"] = args.datafile
    try:  # options that do not name a data split: a usage error, before any work
        paths = data_paths(args, **extra)
        name = args.data or ("audioset" if args.datafile else None)
        source = get_source(name) if name else infer_source(paths.options)
        source.check(paths.options, (args.split,))
    except ValueError as err:
        say(COMMAND, err)
        return 2
    if args.scores and os.path.splitext(args.scores)[1].lower() not in (".npz", ".json"):
        say(COMMAND, f"--scores {args.scores}: the scores are written as .npz or .json")
        return 2
    missing = no_such_model(args.checkpoint)
    if missing is not None:  # before the models and the evaluation are loaded
        say(COMMAND, missing)
        return 1
    for target, what in ((args.out, "the metrics"), (args.scores, "the scores")):
        problem = check_writable(target, what) if target else None
        if problem is not None:  # before the evaluation, not after it
            say(COMMAND, problem)
            return 1
    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.dataset import ItemError
    from gnn_audio.data.readers import DataError
    from gnn_audio.data.store import StoreError
    from gnn_audio.files import atomic_write_text
    from gnn_audio.train.evaluate import evaluate_checkpoint
    from gnn_audio.zoo.checkpoints import CheckpointMismatch

    modes = None if args.eval_mode is None else (
        ("crop", "windows") if args.eval_mode == "both" else (args.eval_mode,))
    def log(message: str) -> None:
        if not args.quiet:
            say(COMMAND, message)
    try:
        result = evaluate_checkpoint(
            args.checkpoint, paths, source=source.name, split=args.split, modes=modes,
            window_hop=args.window_hop, batch_size=args.batch_size, num_workers=args.workers,
            device=args.device, use_store=not args.no_store, progress=not args.quiet, log=log)
    except OSError as err:  # without a file name: a full disk while a store is written
        say(COMMAND, _os_error(err, paths, source, use_store=not args.no_store))
        return 1
    except (DataError, StoreError, AudioError, ItemError, CheckpointMismatch,
            ValueError) as err:
        say(COMMAND, err)
        return 1
    if result.is_main:
        summary = result.to_dict()
        for mode, m in summary["metrics"].items():
            print(f"{mode:8s} mAP {m['mAP']:.4f}  mAUC {m['mAUC']:.4f}  d' {m['d_prime']:.3f}"
                  f"  lwlrap {m['lwlrap']:.4f}  ({summary['clips']} clips)")
        writes = []
        if args.out:
            text = json.dumps(summary, indent=2) + "\n"
            writes.append((args.out, "the metrics", lambda: atomic_write_text(args.out, text)))
        if args.scores:
            writes.append((args.scores, "the scores",
                           lambda: result.predictions.save(args.scores)))
        for target, what, write in writes:
            try:
                write()
            except OSError as err:  # a full disk: one line naming the file
                say(COMMAND, write_error(err, target, what))
                return 1
    return 0


def _os_error(err: OSError, paths, source, use_store: bool) -> str:
    """The one line for an ``OSError`` of the evaluation: the only files it writes are the
    waveform stores, so a system error without a file name (a full disk) while they are used
    names their folder; others name their file, or are their own one line."""
    from gnn_audio.errors import one_line
    from gnn_audio.train.data import store_root

    if err.filename is None and err.strerror and use_store and source.reads == "logmel":
        try:
            return write_error(err, store_root(paths, source), "the waveform stores")
        except ValueError:  # no store folder to name
            pass
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return one_line(err)


def add_parser(sub) -> None:
    from gnn_audio.data.readers.sources import SPLITS, list_sources

    p = sub.add_parser(
        COMMAND, help=HELP,
        description="Score a trained checkpoint on one split of a data source, read as "
        "training reads it: audio is decoded into the same waveform stores "
        "(STORE_DIR/SPLIT_RATE, built when missing or stale) and scored in crop and / or "
        "sliding-window mode; embedding checkpoints are scored on TFRecords in crop mode. "
        "Metrics go to stdout (and --out), progress and errors to stderr.")
    p.add_argument("--checkpoint", required=True, help="a gnn_audio checkpoint (best.pt)")
    p.add_argument("--data", default=None, choices=list_sources(),
                   help="the data source (default: the one whose options are given)")
    p.add_argument("--split", default="eval", choices=list(SPLITS),
                   help="the split to score (default eval)")
    p.add_argument("--datafile", default=None,
                   help="a JSON datafile of the split (the same as --SPLIT-datafile)")
    p.add_argument("--eval-mode", default=None, choices=["crop", "windows", "both"],
                   help="crop: the first window of each clip (the papers' protocol); "
                   "windows: max over sliding windows; both (default for log-mel models; "
                   "embedding models: crop)")
    p.add_argument("--window-hop", type=positive_float, default=0.5,
                   help="hop between windows as a fraction of the window (default 0.5)")
    p.add_argument("--batch-size", type=int_at_least(1), default=32,
                   help="windows per forward pass (default 32)")
    p.add_argument("--workers", type=int_at_least(0), default=0,
                   help="DataLoader processes (default 0)")
    p.add_argument("--device", type=device, default=None,
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-store", action="store_true", help="decode the audio files directly")
    p.add_argument("--out", default=None, help="write the metrics as JSON")
    p.add_argument("--scores", default=None, help="write every clip's scores (.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    add_store_options(p.add_argument_group("waveform stores (shared with training)"))
    add_source_options(p)
    p.set_defaults(func=run)
