r"""A label graph from the AudioSet ontology (the ontology-based construction that the AT-GCN
paper compares its co-occurrence graph with, Table II, after Sun et al.).

Labels :math:`i` and :math:`j` are linked when one is an ancestor of the other at most
``hops`` levels apart in the ontology tree, counting every ontology class on the way (whether
or not it is in the label set). The links are symmetric; weighting follows AT-GCN's eq. 7
(a label keeps :math:`1 - p` for itself and shares :math:`p` among its neighbours), or the
graph stays binary with self-loops. The result plugs in wherever
:func:`~gnn_audio.labels.cooccurrence_adjacency`'s does (``at_gcn(adjacency=...)``).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from gnn_audio.labels.cooccurrence import _reweight
from gnn_audio.labels.label_sets import load_ontology

__all__ = ["ontology_adjacency"]


def _parents(ontology: Mapping[str, dict]) -> Dict[str, List[str]]:
    parents: Dict[str, List[str]] = {}
    for mid, entry in ontology.items():
        for child in entry.get("child_ids", []):
            parents.setdefault(child, []).append(mid)
    return parents


def ontology_adjacency(mids: Sequence[str], *, hops: int = 1, p: Optional[float] = 0.2,
                       ontology: Optional[Mapping[str, dict]] = None) -> Tensor:
    """``[S, S]`` float32 adjacency of the labels ``mids`` (ontology ids, in output order).

    Args:
        mids: the label set's ids (e.g. ``load_label_set("audioset").mids``).
        hops: link a label to its ancestors and descendants at most this many levels away.
        p: AT-GCN eq. 7 weight shared by a label's neighbours (its self-loop keeps ``1 - p``;
            a label without neighbours keeps 1); ``None`` gives the binary graph with
            self-loops.
        ontology: ``mid -> {"child_ids": [...], ...}`` (default: the shipped AudioSet
            ontology).

    Raises:
        ValueError: an id that is not in the ontology, a repeated id, ``hops < 1`` or ``p``
            outside ``[0, 1]``.
    """
    if hops < 1:
        raise ValueError(f"hops must be at least 1 (got {hops})")
    if p is not None and not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1] (got {p})")
    ontology = load_ontology() if ontology is None else ontology
    unknown = [m for m in mids if m not in ontology]
    if unknown:
        raise ValueError(f"{len(unknown)} label ids are not in the ontology, e.g. "
                         f"{unknown[:3]}")
    if len(set(mids)) != len(mids):
        raise ValueError("label ids must be unique")
    index = {m: i for i, m in enumerate(mids)}
    parents = _parents(ontology)
    adj = np.zeros((len(mids), len(mids)), dtype=np.float64)
    for i, mid in enumerate(mids):
        frontier = {mid}
        for _ in range(hops):  # ancestors level by level, through classes outside the set
            frontier = {q for m in frontier for q in parents.get(m, ())}
            for anc in frontier:
                if anc in index:
                    adj[i, index[anc]] = adj[index[anc], i] = 1.0
    np.fill_diagonal(adj, 0.0)
    if p is None:
        out = adj + np.eye(len(mids))
    else:
        out = _reweight(adj, p)
        lonely = adj.sum(axis=1) == 0
        out[lonely, lonely] = 1.0
    return torch.from_numpy(out.astype(np.float32))
