"""The ``gnn-audio`` command line: ``train``, ``eval``, ``tag``, ``demo``, ``models``,
``summary``, ``prepare``."""
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


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.dataset import ItemError
    from gnn_audio.data.readers import DataError, read_datafile, read_fsd50k
    from gnn_audio.data.store import StoreError
    from gnn_audio.train.cli import one_line
    from gnn_audio.train.distributed import init_distributed
    from gnn_audio.train.evaluate import EvalConfig, build_eval_dataset, predict
    from gnn_audio.train.state import atomic_write_text
    from gnn_audio.zoo import load_model
    from gnn_audio.zoo.checkpoints import CheckpointMismatch

    if bool(args.data_dir) == bool(args.datafile):
        print("gnn-audio eval: give one of --data-dir (FSD50K layout) or --datafile",
              file=sys.stderr)
        return 2
    modes = ("crop", "windows") if args.eval_mode == "both" else (args.eval_mode,)
    try:
        ctx = init_distributed(args.device)
        model = load_model(args.checkpoint).to(ctx.device)
        fb = model.model_config.fbank
        if fb is None:
            raise ValueError(f"{args.checkpoint}: {model.model_name} reads embeddings; "
                             "gnn-audio eval scores log-mel models on audio")
        clips = (read_fsd50k(args.data_dir, args.split, skip_bad=args.skip_bad)
                 if args.data_dir else read_datafile(args.datafile, args.class_csv,
                                                     skip_bad=args.skip_bad))
        names = getattr(model, "label_names", None)
        if names is not None and list(clips.label_set.names) != list(names):
            raise ValueError(f"{args.checkpoint} was trained on another class list than "
                             f"{args.data_dir or args.datafile} ({len(names)} vs "
                             f"{len(clips.label_set)} classes)")
        source = clips
        if not args.no_store:  # the training stores: the same waveforms as training saw
            from gnn_audio.data.store import WaveformStore
            from gnn_audio.train.data import DataPaths, build_split_store, store_folder
            from gnn_audio.train.distributed import barrier

            paths = DataPaths(data_dir=args.data_dir or str(Path(args.datafile).parent),
                              store_dir=args.store_dir, skip_bad=args.skip_bad)
            split = args.split if args.data_dir else Path(args.datafile).stem
            if ctx.is_main:
                build_split_store(clips, split, paths, fb.sample_rate, progress=not args.quiet,
                                  log=lambda m: print(m, file=sys.stderr))
            barrier(ctx)
            source = WaveformStore(store_folder(paths, split, fb.sample_rate))
        dataset = build_eval_dataset(source, fb)
        config = EvalConfig(modes=modes, window_hop=args.window_hop, batch_size=args.batch_size,
                            num_workers=args.workers)
        preds = predict(model, dataset, config, ctx, frames=fb.target_length,
                        progress=not args.quiet)
    except (DataError, StoreError, AudioError, ItemError, CheckpointMismatch, OSError,
            ValueError) as err:
        print(f"gnn-audio eval: {one_line(err)}", file=sys.stderr)
        return 1
    metrics = preds.metrics()
    summary = {mode: {k: m[k] for k in ("mAP", "mAUC", "d_prime", "lwlrap")}
               for mode, m in metrics.items()}
    result = {"checkpoint": str(args.checkpoint), "clips": len(preds), "metrics": summary,
              "skipped": len(clips.skipped)}
    if ctx.is_main:
        for mode, m in summary.items():
            print(f"{mode:8s} mAP {m['mAP']:.4f}  mAUC {m['mAUC']:.4f}  d' {m['d_prime']:.3f}"
                  f"  lwlrap {m['lwlrap']:.4f}  ({len(preds)} clips)")
        if args.out:
            atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
        if args.scores:
            preds.save(args.scores)
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

    sub.add_parser("train", add_help=False,
                   help="train with a recipe (gnn-audio train --help lists every option)")

    p = sub.add_parser("eval", help="score a trained checkpoint on a data split")
    p.add_argument("--checkpoint", required=True, help="a gnn_audio checkpoint (best.pt)")
    p.add_argument("--data-dir", default=None, help="an FSD50K-layout folder")
    p.add_argument("--split", default="eval", choices=["train", "val", "eval"])
    p.add_argument("--datafile", default=None, help="a JSON datafile instead of --data-dir")
    p.add_argument("--class-csv", default=None, help="class list of --datafile "
                   "(default: AudioSet's)")
    p.add_argument("--eval-mode", default="both", choices=["crop", "windows", "both"])
    p.add_argument("--window-hop", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--store-dir", default=None, help="waveform stores (default: the data "
                   "folder's gnn_audio_stores/, shared with training)")
    p.add_argument("--no-store", action="store_true", help="decode the audio files directly")
    p.add_argument("--out", default=None, help="write the metrics as JSON")
    p.add_argument("--scores", default=None, help="write every clip's scores (.npz)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_eval)

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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        from gnn_audio.train.cli import main as train_main

        return train_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
