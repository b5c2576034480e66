"""Results that do not depend on the thread count: :func:`one_thread` runs torch's CPU
operations of a block on one intra-op thread.

torch splits reductions and matrix products over its intra-op threads, and a sum taken in
other pieces rounds differently: the log-mel of one clip computed by the main process (two
threads) and by a ``DataLoader`` worker (one thread, as torch sets it in workers) differed by
up to 7.1e-5 on 54 of 100 clips, and ATGNN's kNN graphs change under differences that small.
The front-end (:class:`~gnn_audio.data.kaldi_fbank.KaldiFbank`) and the resampler
(:func:`~gnn_audio.data.audio.resample`) run under :func:`one_thread` on the CPU, so training,
evaluation, tagging and the pictures compute the same bits whatever ``--workers`` and
``torch.set_num_threads`` are (the same machine and library versions assumed: another CPU
instruction set or another torch may round differently, and a GPU does).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["one_thread"]

_depth = threading.local()


@contextmanager
def one_thread() -> Iterator[None]:
    """``with one_thread():`` torch's CPU operations inside run on one intra-op thread; the
    thread count is restored afterwards, also after an error. Nested uses cost nothing; GPU
    work is unaffected."""
    outer = getattr(_depth, "value", 0)
    before = torch.get_num_threads() if outer == 0 else 1
    _depth.value = outer + 1
    try:
        if before != 1:
            torch.set_num_threads(1)
        yield
    finally:
        _depth.value = outer
        if before != 1:
            torch.set_num_threads(before)
