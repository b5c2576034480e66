"""``gnn-audio explain FILE --checkpoint CK --label NAME --out PNG``: what ATGNN's graphs
looked at for one label (:func:`gnn_audio.viz.explain.explain_file`).

``--out`` is checked before the model runs (its folder must exist and take a file; it must not
be a folder); an ``OSError`` met while writing it (a full disk) is one line naming it."""
from __future__ import annotations

import argparse

from gnn_audio.cli.common import (check_writable, device, int_at_least, no_such, no_such_model,
                                  say, write_error)

__all__ = ["add_parser", "run"]

COMMAND = "explain"
HELP = "draw what ATGNN's graphs looked at for a label (PNG)"


def run(args: argparse.Namespace) -> int:
    # a checkpoint or audio file that is not there is reported before the library is loaded
    for missing in (no_such_model(args.checkpoint), no_such(args.file),
                    check_writable(args.out, "the picture")):
        if missing is not None:
            say(COMMAND, missing)
            return 1
    import pickle

    from gnn_audio.viz.explain import explain_file

    try:
        out = explain_file(args.checkpoint, args.file, args.label, args.out, stage=args.stage,
                           block=args.block, start=args.start, device=args.device)
    except (ValueError, pickle.UnpicklingError) as err:
        say(COMMAND, err)
        return 1
    except OSError as err:  # the audio file (named), or the picture's write (a full disk)
        say(COMMAND, write_error(err, args.out, "the picture"))
        return 1
    print(out, flush=True)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        COMMAND, help=HELP,
        description="For one clip and one label: the patches the label's PLG node read in "
        "each MLG stage, drawn over the log-mel, and one patch node's kNN neighbours in a "
        "PGN block (the graphs the model built in its forward pass). Needs an ATGNN "
        "checkpoint with MLG blocks. Prints the PNG's path on stdout.")
    p.add_argument("file", metavar="FILE", help="audio file (one model-length window of it "
                   "is analysed, see --start)")
    p.add_argument("--checkpoint", "-c", required=True, metavar="CK",
                   help="an ATGNN checkpoint, e.g. a training run's best.pt")
    p.add_argument("--label", required=True, metavar="NAME",
                   help="the label to explain (its display name, case and _ ignored)")
    p.add_argument("--out", required=True, metavar="PNG", help="the picture to write")
    p.add_argument("--stage", type=int_at_least(1), default=None,
                   help="stage (1-based) of the PGN block drawn last (default: the last)")
    p.add_argument("--block", type=int_at_least(1), default=None,
                   help="block (1-based) within --stage (default: its last)")
    p.add_argument("--start", type=float, default=0.0, metavar="SECONDS",
                   help="where in the file the analysed window starts (default 0)")
    p.add_argument("--device", type=device, default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(func=run)
