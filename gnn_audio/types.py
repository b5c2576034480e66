"""Type aliases shared across the package."""
from __future__ import annotations

import os
from typing import Union

__all__ = ["PathLike"]

#: a file-system path as users pass it: ``str`` or :class:`os.PathLike`
PathLike = Union[str, os.PathLike]
