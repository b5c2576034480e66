"""The ``gnn-audio`` command line: ``demo``, ``tag``, ``models``, ``summary``, ``prepare``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from gnn_audio import __version__


def _cmd_models(args: argparse.Namespace) -> int:
    from gnn_audio.zoo import get_model_config, list_models

    for name in list_models(args.pattern):
        cfg = get_model_config(name)
        print(f"{name:22s} {cfg.family:10s} {cfg.input:9s} {cfg.num_classes:4d} classes  "
              f"{cfg.description}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from gnn_audio.zoo import list_models
    from gnn_audio.zoo.summary import summary_table

    print(summary_table(args.names or list_models(family="atgnn"), args.num_classes))
    return 0


def _cmd_tag(args: argparse.Namespace) -> int:
    from gnn_audio.inference import AudioTagger, format_tags

    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    tagger = AudioTagger(args.model, args.checkpoint, args.device, **kwargs)
    probs = tagger.predict(args.files, args.batch_size, progress=len(args.files) > args.batch_size)
    for path, tags in zip(args.files, tagger.rank(probs, args.top)):
        print(format_tags(Path(path).name, tags))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gnn_audio.demo import run_demo

    run_demo(args.model, steps=args.steps, out=args.out, top=args.top)
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    import json
    import os

    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.features import FSD50K_FBANK
    from gnn_audio.data.readers import DataError, read_fsd50k
    from gnn_audio.data.stats import compute_norm_stats
    from gnn_audio.data.store import StoreError, WaveformStore

    if args.stats and "train" not in args.splits:  # a usage mistake: before any work
        print("gnn-audio prepare: --stats needs the train split in --splits", file=sys.stderr)
        return 2
    out = Path(args.out)
    stores = {}
    for split in args.splits:
        try:
            clips = read_fsd50k(args.data_dir, split, skip_bad=args.skip_bad)
            store = WaveformStore.build(clips, out / split, sample_rate=args.sample_rate,
                                        dtype=args.dtype, skip_bad=args.skip_bad,
                                        num_workers=args.workers, progress=not args.quiet)
        except (DataError, StoreError, AudioError) as err:  # one line naming the file
            print(f"gnn-audio prepare: {err}", file=sys.stderr)
            return 1
        stores[split] = store
        hours = float(store.lengths.sum()) / store.sample_rate / 3600
        print(f"{split}: {len(store)} clips, {store.num_classes} classes, {hours:.2f} h -> "
              f"{store.path} ({store.report.summary()})")
    if args.stats:
        fb = FSD50K_FBANK.replace(sample_rate=args.sample_rate)
        mean, std = compute_norm_stats(stores["train"], fb, progress=not args.quiet)
        stats = {"norm_mean": mean, "norm_std": std, "split": "train",
                 "clips": len(stores["train"])}
        tmp = out / "norm_stats.json.tmp"
        tmp.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, out / "norm_stats.json")
        print(f"train log-mel: norm_mean {mean:.4f}, norm_std {std:.4f} -> "
              f"{out / 'norm_stats.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnn-audio",
                                     description="Audio tagging with graph neural networks.")
    parser.add_argument("--version", action="version", version=f"gnn-audio {__version__}")
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(title="commands")

    p = sub.add_parser("demo", help="train a small zoo model on generated audio, tag clips")
    p.add_argument("--model", default="atgnn_pyr_t")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--out", default=None, help="folder for the generated wav files")
    p.add_argument("--top", type=int, default=3)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("tag", help="tag audio files with a zoo model")
    p.add_argument("files", nargs="+")
    p.add_argument("--model", default="atgnn_pyr_s")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=_cmd_tag)

    p = sub.add_parser("prepare", help="decode an FSD50K-layout data set into waveform stores")
    p.add_argument("--data-dir", required=True, help="FSD50K root (FSD50K.ground_truth/, ...)")
    p.add_argument("--out", required=True, help="folder for the stores, one per split")
    p.add_argument("--splits", nargs="+", default=["train", "val", "eval"],
                   choices=["train", "val", "eval"])
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unusable rows / files, listed in OUT/SPLIT/skipped.txt")
    p.add_argument("--workers", type=int, default=0, help="decoding processes")
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--dtype", default="int16", choices=["int16", "float16"])
    p.add_argument("--stats", action="store_true",
                   help="also compute the train split's log-mel mean and std")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("models", help="list the zoo")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("summary", help="parameters and MACs of zoo models (Markdown)")
    p.add_argument("names", nargs="*")
    p.add_argument("--num-classes", type=int, default=200)
    p.set_defaults(func=_cmd_summary)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
