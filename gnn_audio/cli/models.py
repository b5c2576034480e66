"""``gnn-audio models [PATTERN]``: the zoo entries with their parameters and multiply-
accumulates and FLOPs per clip (forward, training step) counted from the models
(:func:`gnn_audio.zoo.summary.zoo_rows`), their input and the papers' mAP."""
from __future__ import annotations

import argparse
import json
import sys

from gnn_audio.cli.common import say

__all__ = ["add_parser", "run"]

COMMAND = "models"
HELP = "the model zoo: params, MACs, GFLOP/clip, input, paper mAP"


def run(args: argparse.Namespace) -> int:
    from gnn_audio.zoo import list_models
    from gnn_audio.zoo.summary import count_cache_file, zoo_rows, zoo_table

    names = list_models(args.pattern)
    if not names:
        say(COMMAND, f"no zoo model matches {args.pattern!r} (gnn-audio models lists all)")
        return 1
    if not args.no_macs and not args.quiet:
        say(COMMAND, f"counting parameters, MACs and FLOPs of {len(names)} model(s) at their "
            f"full input (forward passes and a training step each; cached in "
            f"{count_cache_file()})")
    rows = zoo_rows(names, macs=not args.no_macs, use_cache=not args.no_cache,
                    progress=not args.quiet and sys.stderr.isatty(),
                    log=lambda message: say(COMMAND, message))
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return 0
    print(zoo_table(rows, args.format))
    if not args.no_macs and not args.quiet:
        say(COMMAND, "MACs: multiply-accumulates of matrix products and convolutions in one "
            "forward pass of one clip; GFLOP/clip: the same as FLOPs (2 per MAC), and of a "
            "training step, forward + backward (gnn_audio.zoo.summary)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(COMMAND, help=HELP,
                       description="List the zoo entries with parameters, multiply-"
                       "accumulates and FLOPs per clip (forward and training step) counted "
                       "from the models themselves (one clip at the entry's input; cached per "
                       "code version), their input and the papers' mAP.")
    p.add_argument("pattern", nargs="?", default="*",
                   help="shell-style name filter, e.g. 'atgnn_pyr_*' (default: all)")
    p.add_argument("--no-macs", action="store_true",
                   help="count parameters only (no forward passes, no MACs or FLOPs)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute the counts instead of reading ~/.cache/gnn_audio")
    p.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="output format (default table)")
    p.add_argument("--quiet", "-q", action="store_true", help="no notes or progress on stderr")
    p.set_defaults(func=run)
