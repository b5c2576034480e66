"""Writing files atomically: the content goes to a temporary file in the target's folder
(``.NAME.PID.tmp``), is flushed to disk, then renamed over the target, so a reader (or a run
killed while writing) never sees a partial file; on failure the temporary file is removed, the
target keeps its previous content, and the ``OSError`` (a full disk) names the target."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Iterator

from gnn_audio.types import PathLike

__all__ = ["atomic_open", "atomic_write_text", "fsync_dir"]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """``with atomic_open(path) as f: ...``: ``f`` is the temporary file (``open(tmp, mode,
    **kwargs)``); ``path`` gets its content when the block ends without an exception."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a read-only folder: say which file it was
        named = OSError(f"{path}: cannot write it ({err.strerror or err})")
        named.errno = err.errno
        raise named from None
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def fsync_dir(path: PathLike) -> None:
    """Flush the folder ``path`` itself to disk, so that the renames and removals done in it
    so far survive a power loss (in that order: a later rename never survives without an
    earlier one). A file system that cannot open or sync a folder is left as it is."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
