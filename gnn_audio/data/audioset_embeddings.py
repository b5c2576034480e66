"""The public AudioSet embedding release: TFRecord files of ``SequenceExample`` protos.

Each record has context features ``video_id`` (bytes), ``start_time_seconds`` and
``end_time_seconds`` (float), ``labels`` (int64 class indices) and a feature list
``audio_embedding`` with one 128-byte string per second: the 8-bit quantised 128-d
VGGish-style embedding. Decoding uses the ``tfrecord`` package (pure Python + protobuf, no
TensorFlow); install with ``pip install gnn-audio[audioset]``.

Bytes are dequantised as YouTube-8M's reference code does,
``x = q * 4 / 255 + (4 / 512 - 2)`` (quantisation range [-2, 2]), and every clip is
zero-padded or cut to ``num_frames`` (10).
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from gnn_audio.data.features import pad_or_cut
from gnn_audio.types import PathLike

__all__ = ["EmbeddingClip", "dequantize", "quantize", "read_embedding_records",
           "write_embedding_records", "AudioSetEmbeddings"]

EMBEDDING_DIM = 128
_CONTEXT = {"video_id": "byte", "start_time_seconds": "float", "end_time_seconds": "float",
            "labels": "int"}
_SEQUENCE = {"audio_embedding": "byte"}


@dataclass
class EmbeddingClip:
    video_id: str
    start: float
    end: float
    labels: List[int]
    embedding: np.ndarray  # [num_frames, 128] float32

    @property
    def frames(self) -> int:
        return self.embedding.shape[0]


def dequantize(q: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in about [-2, 2] (YouTube-8M / AudioSet convention)."""
    return q.astype(np.float32) * (4.0 / 255.0) + (4.0 / 512.0 - 2.0)


def quantize(x: np.ndarray) -> np.ndarray:
    """float -> uint8, the inverse of :func:`dequantize` up to rounding."""
    q = np.round((np.asarray(x, np.float64) - (4.0 / 512.0 - 2.0)) * (255.0 / 4.0))
    return np.clip(q, 0, 255).astype(np.uint8)


def _expand(paths: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    if isinstance(paths, (str, os.PathLike)):
        p = os.fspath(paths)
        if os.path.isdir(p):
            return sorted(glob.glob(os.path.join(p, "*.tfrecord")))
        return sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
    return [os.fspath(p) for p in paths]


def read_embedding_records(paths: Union[PathLike, Sequence[PathLike]], num_frames: int = 10
                           ) -> Iterator[EmbeddingClip]:
    """Yield :class:`EmbeddingClip` from TFRecord files (a path, a glob, a folder of
    ``*.tfrecord`` files or a list)."""
    from tfrecord.reader import tfrecord_loader

    for path in _expand(paths):
        for context, seq in tfrecord_loader(path, None, _CONTEXT, sequence_description=_SEQUENCE):
            frames = [np.frombuffer(b, dtype=np.uint8) for b in seq["audio_embedding"]]
            emb = (dequantize(np.stack(frames)) if frames
                   else np.zeros((0, EMBEDDING_DIM), np.float32))
            vid = context["video_id"]
            yield EmbeddingClip(
                video_id=vid.decode("utf-8") if isinstance(vid, bytes) else str(vid),
                start=float(np.asarray(context["start_time_seconds"]).reshape(-1)[0]),
                end=float(np.asarray(context["end_time_seconds"]).reshape(-1)[0]),
                labels=[int(v) for v in np.asarray(context["labels"]).reshape(-1)],
                embedding=pad_or_cut(torch.from_numpy(emb), num_frames).numpy())


def write_embedding_records(path: PathLike, clips: Iterable[Tuple[str, float, float,
                                                                  Sequence[int], np.ndarray]]
                            ) -> int:
    """Write ``(video_id, start, end, labels, embedding [T, 128] float or uint8)`` tuples in
    the release's format (used by the tests to make small files). Returns the count."""
    from tfrecord.writer import TFRecordWriter

    writer = TFRecordWriter(os.fspath(path))
    n = 0
    try:
        for vid, start, end, labels, emb in clips:
            emb = np.asarray(emb)
            q = emb if emb.dtype == np.uint8 else quantize(emb)
            writer.write(
                {"video_id": (vid.encode("utf-8"), "byte"),
                 "start_time_seconds": (float(start), "float"),
                 "end_time_seconds": (float(end), "float"),
                 "labels": (list(map(int, labels)), "int")},
                {"audio_embedding": ([row.tobytes() for row in q], "byte")})
            n += 1
    finally:
        writer.close()
    return n


class AudioSetEmbeddings(torch.utils.data.Dataset):
    """Map-style data set over embedding TFRecords: items ``(x [num_frames, 128], y
    [num_classes] multi-hot)``, read into memory on construction (``progress=True`` shows a
    progress bar: the full release is 2 M clips)."""

    def __init__(self, paths: Union[PathLike, Sequence[PathLike]], num_classes: int = 527,
                 num_frames: int = 10, progress: bool = False) -> None:
        records = read_embedding_records(paths, num_frames)
        clips = list(tqdm(records, desc="reading embeddings", unit=" clips", disable=not progress))
        if not clips:
            raise ValueError(f"no records in {paths}")
        self.video_ids = [c.video_id for c in clips]
        self.features = torch.from_numpy(np.stack([c.embedding for c in clips]))
        self.targets = torch.zeros(len(clips), num_classes)
        for i, c in enumerate(clips):
            bad = [lab for lab in c.labels if not 0 <= lab < num_classes]
            if bad:
                raise ValueError(f"{c.video_id}: label indices {bad} outside [0, {num_classes})")
            self.targets[i, c.labels] = 1.0

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> Tuple[Tensor, Tensor]:
        return self.features[i], self.targets[i]
