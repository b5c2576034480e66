"""The ``gnn-audio`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from gnn_audio import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnn-audio", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gnn-audio {__version__}")
    parser.set_defaults(func=None)
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
