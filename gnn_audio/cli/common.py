"""What every ``gnn-audio`` command shares: the parser whose usage errors are one line
(:class:`OneLineParser`), the one-line messages on stderr (:func:`say`), the option types
that turn a bad value into a usage error before any work (:func:`int_at_least`,
:func:`probability`, :func:`positive_float`, :func:`device`), the check that a path given on
the command line is there at all (:func:`no_such`), the checks that an output can be written
before the work that makes it (:func:`check_writable`, :func:`check_writable_dir`) and the one
line for an ``OSError`` met while writing it (:func:`write_error`), and the options of the data
sources (:func:`add_source_options`, :func:`data_paths`), taken from their declarations in
:mod:`gnn_audio.data.readers.sources`.

This module, :mod:`gnn_audio.cli` and the command modules import nothing heavy when they are
imported: a command imports its library functions in its ``run()``, once its arguments are
parsed and the paths it was given are found to be there, so that ``gnn-audio --help`` and a
missing file are answered at once, without loading torch. The functions here that need the
library (the data sources' options, a device other than the CPU) import it when called.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from gnn_audio.errors import one_line

if TYPE_CHECKING:  # for the annotations only
    from gnn_audio.train.data import DataPaths

__all__ = ["PROG", "OneLineParser", "say", "no_such", "check_writable", "check_writable_dir",
           "write_error", "int_at_least", "number", "positive_float", "probability", "device",
           "add_source_options", "add_store_options", "source_values", "data_paths"]

PROG = "gnn-audio"


def say(command: str, message: Any) -> None:
    """One line on stderr: ``gnn-audio COMMAND: message`` (an exception: its
    :func:`~gnn_audio.errors.one_line`)."""
    text = one_line(message) if isinstance(message, BaseException) else " ".join(
        str(message).split())
    print(f"{PROG} {command}: {text}" if command else f"{PROG}: {text}", file=sys.stderr,
          flush=True)


def no_such(path: str, what: str = "file") -> Optional[str]:
    """``PATH: no such WHAT`` when nothing at all is at ``path`` (the message the library
    gives for it: :func:`~gnn_audio.data.audio.audio_info` for ``file``,
    :func:`~gnn_audio.inference.load_tagging_model` for ``checkpoint file``), else ``None``.
    Only absence is found here, before the library is loaded; whatever else is wrong with a
    path that is there (a broken link, a directory, an empty or damaged file) the library
    reports when it reads it."""
    return None if os.path.lexists(path) else f"{path}: no such {what}"


#: :data:`gnn_audio.zoo.hub.HUB_PREFIX` (not imported from there: that module needs torch)
HUB_PREFIX = "hf-hub:"


def no_such_model(source: str) -> Optional[str]:
    """:func:`no_such` for a model source (a checkpoint file or a model folder); ``None`` for a
    hub id (``hf-hub:org/name``), which only the library can look up."""
    return None if source.startswith(HUB_PREFIX) else no_such(source, "checkpoint file")


def _probe(folder: str) -> None:
    """Create a file in ``folder`` and remove it again (``OSError`` when it cannot be)."""
    fd, probe = tempfile.mkstemp(prefix=".gnn_audio_probe.", dir=folder)
    os.close(fd)
    os.unlink(probe)


def check_writable(path: str, what: str = "the file") -> Optional[str]:
    """``None`` when ``what`` can be written to the file ``path``: its folder exists and takes
    a new file (one is created there and removed), and ``path`` is not a folder; else one line
    naming ``path``. The folder is not created (as :func:`~gnn_audio.viz.figure.
    check_output_path` does not): a mistyped folder is reported, not made. Run it before the
    work whose result goes to ``path``."""
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        return f"{path}: cannot write {what}: it is a folder, not a file name"
    if not os.path.lexists(folder):
        return f"{path}: cannot write {what}: folder {folder} does not exist"
    if not os.path.isdir(folder):
        return f"{path}: cannot write {what}: {folder} is not a folder"
    try:
        _probe(folder)
    except OSError as err:
        return (f"{path}: cannot write {what}: folder {folder} takes no new file "
                f"({err.strerror or one_line(err)})")
    return None


def check_writable_dir(path: str, what: str = "the folder") -> Optional[str]:
    """``None`` when ``path`` is a folder (or can be made one, with its parents) that takes a
    new file; else one line naming ``path``. The check makes the folders that are missing and
    a file in ``path``, then removes what it made, so a command refused later leaves nothing
    behind. Run it before the work that writes into ``path``."""
    if os.path.lexists(path) and not os.path.isdir(path):
        return f"{path}: cannot write {what} there: it is a file, not a folder"
    missing = []
    folder = Path(os.path.abspath(path))
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        return f"{path}: cannot create {what}: {folder} is a file, not a folder"
    try:
        os.makedirs(path, exist_ok=True)
        _probe(path)
    except OSError as err:
        return f"{path}: cannot write {what} there ({err.strerror or one_line(err)})"
    finally:
        for made in missing:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break
    return None


def write_error(err: OSError, path: Any, what: str = "it") -> str:
    """The one line for ``err``, raised while ``what`` was made and written to ``path``:
    ``FILE: reason`` for an error the system raised about a file it names (``err.filename``),
    ``PATH: cannot write WHAT (reason)`` for one it raised without a name (a full disk while
    writing), and any other ``OSError`` (a message of its own, which names its file, as the
    library's do) as :func:`~gnn_audio.errors.one_line` gives it."""
    if err.strerror and err.filename is not None:
        return f"{os.fspath(err.filename)}: {err.strerror}"
    if err.strerror:
        return f"{os.fspath(path)}: cannot write {what} ({err.strerror})"
    return one_line(err)


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
    """A device this machine has (:func:`gnn_audio.devices.resolve_device`). ``cpu``, the
    default of the commands that take ``--device``, is always there and is taken without
    loading torch; any other name is resolved here, which loads it."""
    if text == "cpu":
        return text
    from gnn_audio.devices import resolve_device

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
    to the first. Unset options are left out of the parsed arguments.

    The declarations are read from the registry, :mod:`gnn_audio.data.readers.sources`, which
    at present imports torch (through the readers and :mod:`gnn_audio.labels`): a command
    with data-source options (``train``, ``eval``, ``prepare``) loads it to build its parser."""
    from gnn_audio.data.readers.sources import get_source, list_sources

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
    from gnn_audio.train.data import STORE_OPTIONS

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
    from gnn_audio.data.readers.sources import source_options

    values = vars(args)
    return {k: values[k] for k in source_options() if values.get(k) is not None}


def data_paths(args: argparse.Namespace, **extra: Any) -> DataPaths:
    """The :class:`~gnn_audio.train.data.DataPaths` of the parsed arguments."""
    from gnn_audio.train.data import STORE_OPTIONS, DataPaths

    values = vars(args)
    stores = {k: values[k] for k in STORE_OPTIONS if k in values}
    return DataPaths(**{**source_values(args), **stores, **extra})
