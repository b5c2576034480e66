"""The settings of a kNN graph, as one validated object that layers and blocks take."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional, Union

__all__ = ["KnnConfig", "BACKENDS", "RELATIVE_POS_MODES"]

#: ``"dense"``: batched distances (one GEMM) + ``topk``, the Pyramid ViG way; fixed shapes, no
#: host synchronisation, traceable by ``torch.compile``. ``"cluster"``: torch-cluster's
#: KD-tree (CPU) / brute force (CUDA, at most 100 neighbours per query); runs eagerly.
BACKENDS = ("dense", "cluster")
#: ``None``: no position term; ``"sincos"``: exact 2-D sin-cos term at node positions and
#: pooled-cell centres (gnn_audio's default); ``"reference"``: the Pyramid ViG / ATGNN code's
#: table, bicubically resized along the flattened node index (see
#: :mod:`gnn_audio.graph.position`).
RELATIVE_POS_MODES = (None, "sincos", "reference")


@dataclass(frozen=True)
class KnnConfig:
    r"""How a dynamic kNN graph is built.

    Args:
        k (int): Neighbours per target node. (default: :obj:`9`)
        dilation (int): Keep every ``dilation``-th of the ``k * dilation`` nearest.
            (default: :obj:`1`)
        reduce_ratio (int): Grid graphs only: keys are ``r x r`` average-pooled cells.
            (default: :obj:`1`)
        relative_pos (str, optional): Grid graphs only: ``None``, ``"sincos"`` or
            ``"reference"`` (``True`` / ``False`` are read as ``"sincos"`` / ``None``).
            (default: :obj:`None`)
        stochastic (bool): With probability ``epsilon``, in training, a random ``k`` of the
            ``k * dilation`` nearest instead of every ``dilation``-th (Vision GNN).
            (default: :obj:`False`)
        epsilon (float): That probability. (default: :obj:`0.2`)
        backend (str): ``"dense"`` or ``"cluster"`` (see :data:`BACKENDS`).
            (default: :obj:`"dense"`)
        normalize (bool): L2-normalise features over channels before measuring distances
            (Pyramid ViG, ATGNN). (default: :obj:`True`)

    ``"auto"`` is not a backend: on CPU the dense search measured 15x (stage 1) and 41x
    (stage 3) faster than torch-cluster's KD-tree (``benchmarks/bench_layers.py``), and only
    the dense search has fixed shapes that ``torch.compile`` and CUDA graphs can capture.
    """

    k: int = 9
    dilation: int = 1
    reduce_ratio: int = 1
    relative_pos: Optional[str] = None
    stochastic: bool = False
    epsilon: float = 0.2
    backend: str = "dense"
    normalize: bool = True

    def __post_init__(self) -> None:
        for name in ("k", "dilation", "reduce_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"KnnConfig.{name} must be a positive integer (got {value!r})")
        if self.relative_pos is True:
            object.__setattr__(self, "relative_pos", "sincos")
        elif self.relative_pos is False:
            object.__setattr__(self, "relative_pos", None)
        if self.relative_pos not in RELATIVE_POS_MODES:
            raise ValueError(f"KnnConfig.relative_pos must be one of {RELATIVE_POS_MODES} "
                             f"(got {self.relative_pos!r})")
        if not 0.0 <= float(self.epsilon) <= 1.0:
            raise ValueError(f"KnnConfig.epsilon must be in [0, 1] (got {self.epsilon!r})")
        if self.backend == "auto":
            raise ValueError("KnnConfig.backend 'auto' was removed: use 'dense' (measured "
                             "faster than 'cluster' on CPU, and the only one torch.compile "
                             "can capture) or 'cluster'")
        if self.backend not in BACKENDS:
            raise ValueError(f"KnnConfig.backend must be one of {BACKENDS} "
                             f"(got {self.backend!r})")
        if self.backend == "cluster" and self.relative_pos == "reference":
            raise ValueError("relative_pos='reference' is a resized table, not a distance "
                             "between embeddings: it needs backend='dense'")
        object.__setattr__(self, "stochastic", bool(self.stochastic))
        object.__setattr__(self, "normalize", bool(self.normalize))
        object.__setattr__(self, "epsilon", float(self.epsilon))

    @property
    def num_candidates(self) -> int:
        """``k * dilation``: how many nearest keys the selection picks from."""
        return self.k * self.dilation

    def replace(self, **changes: Any) -> "KnnConfig":
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "KnnConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown KnnConfig fields {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def coerce(cls, value: Union["KnnConfig", Mapping[str, Any], int, None],
               **defaults: Any) -> "KnnConfig":
        """A :class:`KnnConfig` from a config, a dict of fields, an int (``k``) or ``None``
        (``defaults``); dict and int values override ``defaults``."""
        if isinstance(value, KnnConfig):
            return value
        if value is None:
            return cls(**defaults)
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(**{**defaults, "k": value})
        if isinstance(value, Mapping):
            return cls.from_dict({**defaults, **value})
        raise TypeError(f"expected a KnnConfig, a dict of its fields or k as an int "
                        f"(got {type(value).__name__})")
