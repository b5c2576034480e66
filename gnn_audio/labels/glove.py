"""Label embeddings from GloVe word vectors (the initial label nodes of AT-GCN).

``glove.6B.300d.txt`` is about 1 GB, so the file is streamed line by line and only the vectors
of words that occur in the label names are kept; reading stops as soon as all of them have
been seen. A label's embedding is the mean of the vectors of its words (lower-cased, split on
whitespace, underscores and punctuation: ``"Zipper_(clothing)"`` -> ``zipper``,
``clothing``; ``"Male speech, man speaking"`` -> ``male``, ``speech``, ``man``,
``speaking``).

A label with no known word gets a deterministic fallback: a Gaussian vector seeded by the
SHA-256 of its name, scaled to the mean norm of the labels that were found (so it is
distinct from every other label, reproducible, and of typical size). Such labels are
reported with a warning and, with ``return_missing=True``, returned.

Results are cached as ``[S, D]`` float32 tensors (``torch.save``; read back with
``weights_only=True``) under a key of the GloVe file's path, size and modification time and
the label names.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from gnn_audio.weights_io import save_weights_file
from gnn_audio.types import PathLike

__all__ = ["label_words", "load_glove", "hashed_gaussian", "default_cache_dir"]

_WORD = re.compile(r"[^\W_]+")


def label_words(name: str) -> List[str]:
    """The lower-cased words of a label name."""
    return _WORD.findall(name.lower())


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gnn_audio" / "glove"


def hashed_gaussian(key: str, shape: Union[int, Tuple[int, ...]]) -> np.ndarray:
    """Standard-normal float64 values of ``shape``, seeded by the SHA-256 of ``key``.

    Reproducible on every platform and run, and different for different keys: the stand-in
    label embedding of a label without a known word (keyed by its name) and of a model built
    without label embeddings (:class:`gnn_audio.models.at_gcn.ATGCN`)."""
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(shape)


def _fallback(name: str, dim: int, scale: float) -> np.ndarray:
    """A label's hashed vector, scaled to norm ``scale``."""
    v = hashed_gaussian(name, dim)
    return v / np.linalg.norm(v) * scale


def _warn_missing(missing: List[str], path: Path) -> None:
    if missing:
        warnings.warn(f"{len(missing)} labels have no word in {path.name}: {missing[:10]}; "
                      "they use a hashed fallback vector", stacklevel=3)


def _cache_key(path: Path, label_names: Sequence[str]) -> str:
    st = path.stat()
    h = hashlib.sha256()
    h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    for name in label_names:
        h.update(b"\0" + name.encode("utf-8"))
    return h.hexdigest()[:32]


def _stream_vectors(path: Path, wanted: set) -> Tuple[Dict[str, np.ndarray], int]:
    found: Dict[str, np.ndarray] = {}
    dim = 0
    with io.open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if dim == 0:
                dim = len(parts) - 1
                if dim < 1:
                    raise ValueError(f"{path}: not a GloVe text file (first line: {line[:80]!r})")
            if len(parts) < dim + 1:
                continue
            word = " ".join(parts[:-dim])  # a few GloVe releases have words with spaces
            if word in wanted and word not in found:
                found[word] = np.asarray(parts[-dim:], dtype=np.float32)
                if len(found) == len(wanted):
                    break
    if dim == 0:
        raise ValueError(f"{path} is empty")
    return found, dim


def load_glove(path: PathLike, label_names: Sequence[str],
               cache_dir: Optional[PathLike] = "default",
               return_missing: bool = False) -> Union[Tensor, Tuple[Tensor, List[str]]]:
    """Label embeddings ``[S, D]`` (float32) from a GloVe text file.

    Args:
        path: GloVe file (``word v_1 ... v_D`` per line).
        label_names: the class names, e.g. ``gnn_audio.labels.load_label_set("audioset").names``.
        cache_dir: where to cache the result (``"default"``:
            ``$XDG_CACHE_HOME/gnn_audio/glove``; ``None``: no cache).
        return_missing: also return the labels that got the fallback embedding.
    """
    path = Path(path)
    label_names = list(label_names)
    cache_file = None
    if cache_dir is not None:
        cache_root = default_cache_dir() if cache_dir == "default" else Path(cache_dir)
        cache_file = cache_root / f"{_cache_key(path, label_names)}.pt"
        if cache_file.exists():
            cached = torch.load(cache_file, map_location="cpu", weights_only=True)
            out, missing = cached["vectors"], list(cached["missing"])
            _warn_missing(missing, path)
            return (out, missing) if return_missing else out

    words = [label_words(n) for n in label_names]
    found, dim = _stream_vectors(path, {w for ws in words for w in ws})
    vectors: List[Optional[np.ndarray]] = []
    for ws in words:
        known = [found[w] for w in ws if w in found]
        vectors.append(np.mean(known, axis=0) if known else None)
    norms = [np.linalg.norm(v) for v in vectors if v is not None]
    scale = float(np.mean(norms)) if norms else 1.0
    missing = [n for n, v in zip(label_names, vectors) if v is None]
    out = torch.from_numpy(np.stack([v if v is not None else _fallback(n, dim, scale)
                                     for n, v in zip(label_names, vectors)]).astype(np.float32))
    _warn_missing(missing, path)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        save_weights_file({"vectors": out, "missing": missing}, cache_file)
    return (out, missing) if return_missing else out
