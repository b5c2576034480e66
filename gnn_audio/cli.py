"""The ``gnn-audio`` command line: ``demo``, ``tag``, ``models``, ``summary``."""
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


def _print_tags(paths, tags) -> None:
    for path, row in zip(paths, tags):
        print(f"{Path(path).name}:")
        for name, prob in row:
            print(f"    {prob:6.3f}  {name}")


def _cmd_tag(args: argparse.Namespace) -> int:
    from gnn_audio.inference import AudioTagger

    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    tagger = AudioTagger(args.model, args.checkpoint, args.device, **kwargs)
    probs = tagger.predict(args.files, args.batch_size, progress=len(args.files) > args.batch_size)
    _print_tags(args.files, tagger.rank(probs, args.top))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gnn_audio.demo import run_demo

    run_demo(args.model, steps=args.steps, out=args.out, top=args.top)
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
