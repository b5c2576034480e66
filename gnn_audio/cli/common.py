"""What every ``gnn-audio`` command shares: the parser whose usage errors are one line
(:class:`OneLineParser`), the one-line messages on stderr (:func:`say`), the option types
that turn a bad value into a usage error before any work (:func:`int_at_least`,
:func:`probability`, :func:`positive_float`, :func:`device`), and the options of the data
sources (:func:`add_source_options`, :func:`data_paths`), taken from their declarations in
:mod:`gnn_audio.data.readers.sources`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Iterable, Optional

from gnn_audio.data.readers.sources import get_source, list_sources, source_options
from gnn_audio.devices import resolve_device
from gnn_audio.errors import one_line
from gnn_audio.train.data import STORE_OPTIONS, DataPaths

__all__ = ["PROG", "OneLineParser", "say", "int_at_least", "number", "positive_float",
           "probability", "device", "add_source_options", "add_store_options",
           "source_values", "data_paths"]

PROG = "gnn-audio"


def say(command: str, message: Any) -> None:
    """One line on stderr: ``gnn-audio COMMAND: message`` (an exception: its
    :func:`~gnn_audio.errors.one_line`)."""
    text = one_line(message) if isinstance(message, BaseException) else " ".join(
        str(message).split())
    print(f"{PROG} {command}: {text}" if command else f"{PROG}: {text}", file=sys.stderr,
          flush=True)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} "
                     "--help)\n")


# --------------------------------------------------------------------------------------------
# option types: a bad value is a usage error (exit 2) found before any work


def int_at_least(low: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    convert.__name__ = "integer"
    return convert


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def probability(text: str) -> float:
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def device(text: str) -> str:
    """A device this machine has (:func:`gnn_audio.devices.resolve_device`)."""
    try:
        resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(one_line(err)) from None
    return text


# --------------------------------------------------------------------------------------------
# the data sources' options


def add_source_options(parser: argparse.ArgumentParser,
                       sources: Optional[Iterable[str]] = None) -> None:
    """One argument group per data source (default: every registered one) with its declared
    options (``--data-dir``, ``--train-csv``, ...); an option two sources share is added once,
    to the first. Unset options are left out of the parsed arguments."""
    added = set()
    for name in (list(sources) if sources is not None else list_sources()):
        source = get_source(name)
        group = parser.add_argument_group(f"data source {name} ({source.reads})",
                                          source.description)
        for option in source.options:
            if option.name in added:
                continue
            added.add(option.name)
            group.add_argument(option.flag, dest=option.name, type=option.type,
                               default=argparse.SUPPRESS, metavar=option.name.upper(),
                               help=option.help)


def add_store_options(group, names: Iterable[str] = ("store_dir", "skip_bad",
                                                     "store_workers")) -> None:
    """The waveform-store options of :class:`~gnn_audio.train.data.DataPaths`."""
    for name in names:
        flag = "--" + name.replace("_", "-")
        if name == "skip_bad":
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=STORE_OPTIONS[name])
        elif name == "store_workers":
            group.add_argument(flag, dest=name, type=int_at_least(0), default=argparse.SUPPRESS,
                               metavar="N", help=STORE_OPTIONS[name])
        else:
            group.add_argument(flag, dest=name, default=argparse.SUPPRESS,
                               metavar=name.upper(), help=STORE_OPTIONS[name])


def source_values(args: argparse.Namespace) -> dict:
    """The source options given on the command line."""
    values = vars(args)
    return {k: values[k] for k in source_options() if values.get(k) is not None}


def data_paths(args: argparse.Namespace, **extra: Any) -> DataPaths:
    """The :class:`~gnn_audio.train.data.DataPaths` of the parsed arguments."""
    values = vars(args)
    stores = {k: values[k] for k in STORE_OPTIONS if k in values}
    return DataPaths(**{**source_values(args), **stores, **extra})
