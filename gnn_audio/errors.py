"""One-line error messages: the one formatter every command, reader and writer uses.

Errors that reach a user are one line naming the file (and line) they are about. Exceptions
carry multi-line text in several ways: soundfile's ``error_string``, a DataLoader worker's
re-raised exception (the worker's traceback, with the original message on its last line),
messages that wrap; :func:`one_line` turns any of them into that one line.
"""
from __future__ import annotations

import os
from typing import Optional

from gnn_audio.types import PathLike

__all__ = ["one_line"]


def _original(text: str) -> str:
    """The message of an exception re-raised from a DataLoader worker: the last line of the
    worker's traceback without its ``module.ExceptionType: `` prefix."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else text
    head, sep, rest = last.partition(": ")
    return rest if sep and "." in head and " " not in head else last


def one_line(err: BaseException, path: Optional[PathLike] = None) -> str:
    """``err``'s message on one line (runs of white space as one space; the exception's type
    name when it has no message). With ``path`` the message starts with it unless it already
    names it."""
    text = getattr(err, "error_string", None) or str(err)
    if "Original Traceback" in text:
        text = _original(text)
    text = " ".join(text.split()) or type(err).__name__
    if path is not None:
        where = os.fspath(path)
        if where not in text:
            text = f"{where}: {text}"
    return text
