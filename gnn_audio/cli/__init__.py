"""The ``gnn-audio`` command line: ``tag``, ``models``, ``summary``, ``explain``, ``train``,
``eval``, ``prepare``, ``export-weights``, ``demo``; one module per command
(``gnn_audio.cli.tag``, ...), each with ``add_parser(sub)`` and ``run(args) -> exit status``
over library functions, and :mod:`gnn_audio.cli.common` for what they share.

Output fits pipes: results go to stdout, progress and log lines to stderr. Exit status: 0 done,
1 a failure (a file, a checkpoint, a data set: one line on stderr naming it), 2 a usage error
(a bad option or value, one line on stderr). ``gnn-audio tag`` tags every file it can and exits
1 at the end when one could not be tagged.

Starting is quick: this package and its command modules import no library code (torch, the
models, the trainer) when they are imported. :func:`main` builds the parser of the one command
it runs (the others are listed by name for ``--help``), and a command loads what it needs in
its ``run()`` once its arguments are parsed and the paths it names are found to be there.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Collection, Optional, Sequence

from gnn_audio import __version__
from gnn_audio.cli import demo, explain, export_weights, models, prepare, summary, tag, train
from gnn_audio.cli import eval as evaluate  # the module gnn_audio.cli.eval
from gnn_audio.cli.common import PROG, OneLineParser, say

__all__ = ["build_parser", "main", "COMMANDS"]

#: the command modules in the order ``gnn-audio --help`` lists them; each adds its parser
#: with ``func`` set to the function that runs it (``func(args) -> exit status``)
COMMANDS = (tag, models, summary, explain, train, evaluate, prepare, export_weights, demo)


def build_parser(commands: Optional[Collection[str]] = None) -> argparse.ArgumentParser:
    """The ``gnn-audio`` parser. ``commands``: the commands whose parsers are built in full
    (``None``: all of them); the others are listed with their one-line help, which is all
    ``gnn-audio --help`` shows, without the options whose declarations need the library
    (the data sources' of ``eval`` and ``prepare``)."""
    parser = OneLineParser(prog=PROG, description="Audio tagging with graph neural networks. "
                           "Results go to stdout, progress and errors to stderr; exit status "
                           "0 done, 1 failure, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"gnn-audio {__version__}",
                        help="print the version and exit")
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        if commands is None or command.COMMAND in commands:
            command.add_parser(sub)
        else:
            sub.add_parser(command.COMMAND, help=command.HELP, add_help=False)
    for command in sub.choices.values():  # its own usage errors name the command
        command.set_defaults(command_parser=command)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return train.main(argv[1:])
    parser = build_parser(argv[:1])  # a command comes first: only its parser is needed
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "command_parser", parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if args.func is None:  # no command: a usage error
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `gnn-audio tag ... | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        say("", "interrupted")
        return 130
