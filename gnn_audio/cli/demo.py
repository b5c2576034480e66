"""``gnn-audio demo``: a small zoo model trained on generated audio, then tagging held-out
clips (:func:`gnn_audio.demo.run_demo`)."""
from __future__ import annotations

import argparse

from gnn_audio.cli.common import int_at_least

__all__ = ["add_parser", "run"]

COMMAND = "demo"
HELP = "train a small zoo model on generated audio, tag clips"


def run(args: argparse.Namespace) -> int:
    from gnn_audio.demo import run_demo

    # line by line even when stdout is a pipe
    run_demo(args.model, steps=args.steps, out=args.out, top=args.top,
             log=lambda message: print(message, flush=True))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(COMMAND, help=HELP)
    p.add_argument("--model", default="atgnn_pyr_t", help="zoo model (default atgnn_pyr_t)")
    p.add_argument("--steps", type=int_at_least(1), default=60,
                   help="training steps (default 60)")
    p.add_argument("--out", default=None, help="folder for the generated wav files "
                   "(default: a new temporary folder)")
    p.add_argument("--top", type=int_at_least(1), default=3,
                   help="tags shown per test clip (default 3)")
    p.set_defaults(func=run)
