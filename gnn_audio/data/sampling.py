"""Which clips a training epoch visits, and in which order, on every DistributedDataParallel rank.

* :class:`BalancedSampler`: PSLA's balanced sampling (label weight ``1000 / (count + 0.01)``,
  clip weight = the sum of its labels' weights, weighted draws with replacement), split across
  ranks as PaSST's ``DistributedSamplerWrapper`` does: every rank builds the same draw sequence
  of the epoch from ``(seed, epoch)`` and keeps the positions ``rank, rank + world_size, ...``.
* :class:`ShuffleSampler`: a plain random permutation per epoch, split the same way.
* :class:`ShardedEvalSampler`: every clip exactly once, in order, in contiguous shares.

The training samplers hold a resumable state (:meth:`~EpochSampler.state_dict` /
:meth:`~EpochSampler.load_state_dict`): the epoch and how many of this rank's indices the
training loop has consumed, so a checkpoint taken mid-epoch continues with exactly the draws
that were left.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["balanced_weights", "EpochSampler", "BalancedSampler", "ShuffleSampler",
           "ShardedEvalSampler"]

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[float]]

#: torch.multinomial draws from at most 2**24 categories
_MAX_CATEGORIES = 2 ** 24


def balanced_weights(targets: ArrayLike) -> np.ndarray:
    """PSLA's balanced-sampling clip weights (``gen_weight_file.py``).

    Args:
        targets: ``[N, S]`` 0/1 multi-hot targets (values above 0.5 count as labels), e.g.
            :meth:`gnn_audio.data.clips.ClipList.targets`.

    Returns:
        ``[N]`` float64 weights: ``label_weight = 1000 / (count + 0.01)`` with ``count`` the
        number of clips carrying the label, and each clip's weight the sum of its labels'
        weights. A clip without labels gets weight 0 and is never drawn.
    """
    t = targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else np.asarray(
        targets, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"targets must be [N, S], got shape {t.shape}")
    t = t.astype(np.float64)
    if not np.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ValueError("targets must be finite values in [0, 1] (0/1 multi-hot)")
    labels = t > 0.5
    label_weight = 1000.0 / (labels.sum(axis=0) + 0.01)
    return labels @ label_weight


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator determined by ``(seed, epoch)`` alone (no collision of ``seed + epoch``)."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, "
                         f"world_size={world_size}")


class EpochSampler(Sampler[int]):
    """Base of the resumable, rank-aware training samplers.

    Each epoch, every rank builds the same sequence of ``total_size`` clip indices (a multiple
    of ``world_size``) from a generator seeded with ``(seed, epoch)`` and yields the positions
    ``rank, rank + world_size, ...`` of it: the ranks' shares are disjoint sets of positions
    that together cover the sequence. Subclasses define the sequence in :meth:`epoch_indices`.

    **Resuming.** :meth:`state_dict` holds the epoch and ``position``, the number of this
    rank's indices already consumed in the epoch; after :meth:`load_state_dict`, the next
    :meth:`__iter__` yields the rest of that epoch. All ranks consume the same number of
    indices, so the state saved by rank 0 restores every rank (each keeps its own ``rank``).
    A :class:`~torch.utils.data.DataLoader` fetches indices ahead of the batches the training
    loop has used (``prefetch_factor`` per worker), so the number of indices the sampler has
    handed out overstates the progress: pass ``consumed`` = batches taken from the current
    loader iterator x batch size to :meth:`state_dict`. Resuming replays exactly the same
    indices only with the same ``torch`` version (the draws come from its generator).

    Call :meth:`set_epoch` before each epoch (as with
    :class:`~torch.utils.data.distributed.DistributedSampler`); iterating again without it
    repeats the epoch from its start. ``len(sampler)`` is the full share of an epoch, also
    when resuming in the middle of one.
    """

    def __init__(self, num_clips: int, total_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0) -> None:
        _check_rank(rank, world_size)
        if total_size < 1 or total_size % world_size:
            raise ValueError(f"total_size {total_size} must be a positive multiple of "
                             f"world_size {world_size}")
        self.num_clips = int(num_clips)
        self.total_size = int(total_size)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.seed = int(seed)
        self.epoch = 0
        self._resume_at = 0  # where the next __iter__ starts
        self._start = 0  # where the current iterator started
        self._yielded = 0  # indices the current iterator has handed out

    def epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        """All ranks' ``total_size`` indices of the epoch, drawn from ``generator``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.total_size // self.world_size

    def indices(self, epoch: Optional[int] = None) -> torch.Tensor:
        """This rank's full share of ``epoch`` (default: the current one), as a tensor."""
        epoch = self.epoch if epoch is None else epoch
        return self.epoch_indices(_epoch_generator(self.seed, epoch))[self.rank::self.world_size]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next iteration draws; a new epoch starts at its beginning,
        while the epoch a loaded state is in keeps the loaded position."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self._resume_at = self._start = self._yielded = 0

    def __iter__(self) -> Iterator[int]:
        share = self.indices()
        start, self._resume_at = self._resume_at, 0
        self._start, self._yielded = start, 0
        return self._iterate(share[start:].tolist())

    def _iterate(self, rest: list) -> Iterator[int]:
        for index in rest:
            self._yielded += 1
            yield index

    def state_dict(self, consumed: Optional[int] = None) -> Dict[str, Any]:
        """The resumable state.

        Args:
            consumed: how many of this rank's indices the training loop has used from the
                current iterator (batches x batch size; values past the end of the epoch are
                clipped to it). ``None``: the number the sampler has handed out, exact only
                when nothing fetches ahead (no DataLoader workers, no prefetching).

        Returns:
            ``{"epoch", "position", "seed", "rank", "world_size", "total_size",
            "num_clips"}``; ``position`` counts this rank's consumed indices from the start
            of the epoch (including those before a resume).
        """
        if consumed is None:
            consumed = self._yielded
        elif consumed < 0:
            raise ValueError(f"consumed must be >= 0, got {consumed}")
        return {"epoch": self.epoch, "position": min(self._start + int(consumed), len(self)),
                "seed": self.seed, "rank": self.rank, "world_size": self.world_size,
                "total_size": self.total_size, "num_clips": self.num_clips}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict` of this sampler or of the same
        sampler on another rank): the next iteration yields the rest of its epoch."""
        for key in ("seed", "world_size", "total_size", "num_clips"):
            if state.get(key) != getattr(self, key):
                raise ValueError(f"sampler state does not fit this sampler: {key} is "
                                 f"{state.get(key)!r} in the state, {getattr(self, key)!r} here")
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise ValueError(f"sampler state position {position} outside 0..{len(self)}")
        self.epoch = int(state["epoch"])
        self._resume_at = self._start = position
        self._yielded = 0

    def extra_repr(self) -> str:
        return (f"num_clips={self.num_clips}, total_size={self.total_size}, rank={self.rank}, "
                f"world_size={self.world_size}, seed={self.seed}")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.extra_repr()})"


class BalancedSampler(EpochSampler):
    """Weighted draws with replacement, split across DDP ranks (PSLA's balanced sampler).

    Every rank draws the same ``total_size`` indices per epoch with
    ``torch.multinomial(weights, total_size, replacement=True)`` from a generator seeded with
    ``(seed, epoch)``, and yields the positions ``rank::world_size`` of that sequence. The
    ranks' shares are disjoint as *positions* of the epoch's draw sequence and together cover
    it; since draws are with replacement, the same clip can appear several times, within one
    rank's share and across ranks, exactly as in a single-process run of the same sequence.

    Args:
        weights: ``[N]`` non-negative clip weights, e.g. :func:`balanced_weights`; at most
            ``2**24`` clips (``torch.multinomial``'s limit).
        num_samples: draws per epoch over all ranks (default: ``N``), rounded up to a
            multiple of ``world_size``; each rank yields ``total_size / world_size``.
        rank: this process's rank.
        world_size: the number of DDP processes.
        seed: the same on every rank.

    Resume with :meth:`state_dict` / :meth:`load_state_dict` (see :class:`EpochSampler`).
    """

    def __init__(self, weights: ArrayLike, num_samples: Optional[int] = None, *, rank: int = 0,
                 world_size: int = 1, seed: int = 0) -> None:
        w = torch.as_tensor(np.asarray(weights.detach().cpu() if isinstance(weights, torch.Tensor)
                                       else weights, dtype=np.float64))
        if w.dim() != 1 or len(w) == 0:
            raise ValueError(f"weights must be a non-empty 1-D sequence, got shape "
                             f"{tuple(w.shape)}")
        if len(w) > _MAX_CATEGORIES:
            raise ValueError(f"{len(w)} clips exceed torch.multinomial's limit of "
                             f"{_MAX_CATEGORIES} categories")
        if not torch.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        num_samples = len(w) if num_samples is None else int(num_samples)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        _check_rank(rank, world_size)
        total = math.ceil(num_samples / world_size) * world_size
        super().__init__(len(w), total, rank=rank, world_size=world_size, seed=seed)
        self.weights = w

    def epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        return torch.multinomial(self.weights, self.total_size, replacement=True,
                                 generator=generator)


class ShuffleSampler(EpochSampler):
    """A random permutation per epoch, split across DDP ranks (no balancing).

    As :class:`~torch.utils.data.distributed.DistributedSampler` with ``shuffle=True,
    drop_last=False``: the permutation of ``N`` clips drawn from ``(seed, epoch)`` is extended
    with its first clips to a multiple of ``world_size`` (at most ``world_size - 1`` repeats),
    and rank ``r`` yields its positions ``r::world_size``. Resumable like
    :class:`BalancedSampler`.
    """

    def __init__(self, num_clips: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0) -> None:
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        _check_rank(rank, world_size)
        total = math.ceil(num_clips / world_size) * world_size
        super().__init__(num_clips, total, rank=rank, world_size=world_size, seed=seed)

    def epoch_indices(self, generator: torch.Generator) -> torch.Tensor:
        order = torch.randperm(self.num_clips, generator=generator)
        extra = self.total_size - self.num_clips
        while extra > 0:  # more ranks than clips repeats the permutation
            order = torch.cat([order, order[:extra]])
            extra = self.total_size - len(order)
        return order


class ShardedEvalSampler(Sampler[int]):
    """Evaluation across DDP ranks with every clip counted exactly once.

    Rank ``r`` yields the contiguous range ``start..stop-1`` in order; the shares differ by at
    most one clip when ``N`` is not divisible by ``world_size`` (the first ``N % world_size``
    ranks get one more) and nothing is padded or repeated, unlike
    :class:`~torch.utils.data.distributed.DistributedSampler`, whose padding duplicates clips
    and biases the metrics. Concatenating the ranks' outputs in rank order restores the clip
    order; gather uneven shares with ``torch.distributed.all_gather_object`` (or pad to the
    largest share and cut). A rank may get no clip at all when ``world_size > N``.
    """

    def __init__(self, num_clips: int, *, rank: int = 0, world_size: int = 1) -> None:
        if num_clips < 0:
            raise ValueError(f"num_clips must be >= 0, got {num_clips}")
        _check_rank(rank, world_size)
        self.num_clips, self.rank, self.world_size = int(num_clips), int(rank), int(world_size)
        base, extra = divmod(self.num_clips, self.world_size)
        self.start = self.rank * base + min(self.rank, extra)
        self.stop = self.start + base + (1 if self.rank < extra else 0)

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __repr__(self) -> str:
        return (f"ShardedEvalSampler(num_clips={self.num_clips}, rank={self.rank}, "
                f"world_size={self.world_size}, range={self.start}..{self.stop - 1})")
