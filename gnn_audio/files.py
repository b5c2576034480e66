"""Writing files atomically: the content goes to a temporary file in the target's folder
(``.NAME.PID.tmp``), is flushed to disk, then renamed over the target, so a reader (or a run
killed while writing) never sees a partial file; on failure the temporary file is removed."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Iterator

from gnn_audio.types import PathLike

__all__ = ["atomic_open", "atomic_write_text"]


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
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)
