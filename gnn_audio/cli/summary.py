"""``gnn-audio summary NAME...``: the layers of zoo models with their parameters and output
shapes, then the totals: parameters, MACs and FLOPs per clip of a forward pass and a training
step (:func:`gnn_audio.zoo.summary.layer_table`; FLOPs cached with ``gnn-audio models``'
counts)."""
from __future__ import annotations

import argparse

from gnn_audio.cli.common import int_at_least, say

__all__ = ["add_parser", "run"]

COMMAND = "summary"
HELP = "layer table of zoo models"


def run(args: argparse.Namespace) -> int:
    from gnn_audio.zoo import is_model
    from gnn_audio.zoo.summary import layer_table

    for name in args.names:
        if not is_model(name):
            say(COMMAND, f"unknown model {name!r} (gnn-audio models lists the zoo)")
            return 2
    for n, name in enumerate(args.names):
        if n:
            print()
        print(layer_table(name, args.num_classes, depth=args.depth,
                          use_cache=not args.no_cache).text())
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(COMMAND, help=HELP,
                       description="The layers of zoo models: module name, type, parameters "
                       "and output shape (forward hooks on one clip at the entry's input), "
                       "then the totals: parameters, MACs and GFLOP per clip of a forward "
                       "pass and of a training step (forward + backward).")
    p.add_argument("names", nargs="+", metavar="NAME", help="zoo model names")
    p.add_argument("--depth", type=int_at_least(1), default=2,
                   help="module nesting depth to list (default 2)")
    p.add_argument("--num-classes", type=int_at_least(1), default=None, metavar="N",
                   help="classes of the model (default: the entry's, 200 or 527)")
    p.add_argument("--no-cache", action="store_true",
                   help="count the FLOPs again instead of reading the count cache")
    p.set_defaults(func=run)
