"""AT-GCN (Wang et al., 2021): CNN10 clip features scored by label representations that a GCN
computes over the label co-occurrence graph (paper eq. 1-3)."""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from gnn_audio.labels.cooccurrence import adjacency_to_graph, cooccurrence_adjacency
from gnn_audio.labels.glove import hashed_gaussian, load_glove
from gnn_audio.models.cnn10 import CNN10
from gnn_audio.models.inputs import check_logmel_input
from gnn_audio.models.label_layout import LabelLayout

__all__ = ["ATGCN", "LabelGCN"]


def _version(t: Tensor) -> Optional[int]:
    """``t._version`` (``None`` for an inference-mode tensor, which has no version counter)."""
    return None if t.is_inference() else t._version


def _autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The autocast dtype active for ``device_type`` (``None``: off, or no autocast there)."""
    try:
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
    except RuntimeError:  # a device type without autocast (meta)
        pass
    return None


class LabelGCN(torch.nn.Module):
    """Stacked PyG :class:`~torch_geometric.nn.GCNConv` over the label graph:
    ``H^{l+1} = act(A' H^l W^l)``; widths ``in -> 256 -> ... -> out`` with LeakyReLU(0.2)
    between layers (none after the last).

    The graph's edge weights are :math:`A'` of eq. 7, which already carries the self-loops
    and is already normalised: the layers use ``add_self_loops=False`` and, unless
    ``normalize=True`` (the reference code's extra symmetric normalisation), no further
    normalisation. No bias, as the AT-GCN / ML-GCN graph convolution.
    """

    def __init__(self, in_channels: int = 300, out_channels: int = 512, num_layers: int = 2,
                 hidden_channels: int = 256, normalize: bool = False) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = torch.nn.ModuleList(
            GCNConv(a, b, add_self_loops=False, normalize=normalize, bias=False)
            for a, b in zip(dims[:-1], dims[1:]))
        self.act = torch.nn.LeakyReLU(0.2)

    def forward(self, graph: Data) -> Tensor:
        h = graph.x
        for i, conv in enumerate(self.convs):
            h = conv(h, graph.edge_index, graph.edge_weight)
            if i < len(self.convs) - 1:
                h = self.act(h)
        return h


class ATGCN(torch.nn.Module):
    r"""AT-GCN: :math:`\hat{y} = \sigma(H^{(L)} x)` (eq. 3), ``x`` the 512-d CNN10 clip
    embedding, :math:`H^{(L)} \in \mathbb{R}^{S \times 512}` from :class:`LabelGCN` over the
    label graph with the GloVe label embeddings as input node features.

    Args:
        num_classes (int): Number of labels :math:`S`.
        gcn_layers (int): 1, 2 (paper's best) or 3 GCN layers.
        tau (float), p (float), scheme (str): Graph construction when built from
            ``train_targets`` (see :func:`gnn_audio.labels.cooccurrence_adjacency`).
        label_embeddings (Tensor or (path, names)): ``[S, D]`` label node features, or a
            GloVe file and the label names to read them with
            :func:`gnn_audio.labels.load_glove`. Default: fixed pseudo-random 300-d vectors
            (with a warning; the paper uses GloVe).
        adjacency (Tensor, optional): A given ``[S, S]`` :math:`A'` (row = target).
        train_targets (optional): Multi-hot training labels ``[N, S]`` to build :math:`A'`.
            Without either, the graph has self-loops only (the paper's :math:`\tau = 1`
            degenerate case) and a warning is issued.
        mel_bins (int): Mel bins of the input (CNN10's ``bn0``).
        gcn_normalize (bool): Symmetric GCN normalisation on top of :math:`A'` (off: eq. 7
            already normalises).

    The adjacency and the label embeddings are buffers, so checkpoints carry them.

    No host synchronisation in the forward: the label graph's edge list (``edge_index`` /
    ``edge_weight`` of :math:`A'`, a ``nonzero`` that reads the adjacency back on the host) is
    built once, when the adjacency is set (construction, :meth:`load_state_dict`, or an
    in-place change or reassignment of ``adjacency``, noticed through its version counter),
    and kept in non-persistent buffers (not in the ``state_dict``) that follow ``.to()``. In
    eval mode with autograd off (``torch.no_grad`` / ``torch.inference_mode``) the label
    representations :math:`H^{(L)}` are constant and computed once: the cache is keyed on the
    identity, version counter, device and dtype of the GCN's parameters and of the buffers it
    reads, and on the autocast state; it is dropped by ``.train()``, ``.to()`` and
    :meth:`load_state_dict`. (Writes through ``param.data`` bypass version counters: call
    :meth:`clear_label_cache` after those.)
    """

    def __init__(self, num_classes: int = 527, *, gcn_layers: int = 2, tau: float = 0.3,
                 p: float = 0.2, scheme: str = "both",
                 label_embeddings: Union[Tensor, Sequence, None] = None,
                 adjacency: Optional[Tensor] = None, train_targets=None, mel_bins: int = 64,
                 gcn_normalize: bool = False, embedding_dim: int = 300) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cnn = CNN10(num_classes, mel_bins)
        del self.cnn.fc_audioset  # the label representations are the classifier
        emb = self._resolve_embeddings(label_embeddings, num_classes, embedding_dim)
        if adjacency is None and train_targets is not None:
            adjacency = cooccurrence_adjacency(train_targets, tau, p, scheme)
        if adjacency is None:
            warnings.warn("AT-GCN without adjacency or train_targets: self-loops only; "
                          "build A' with gnn_audio.labels.cooccurrence_adjacency", stacklevel=2)
            adjacency = torch.eye(num_classes)
        if adjacency.shape != (num_classes, num_classes):
            raise ValueError(f"adjacency must be [{num_classes}, {num_classes}] "
                             f"(got {tuple(adjacency.shape)})")
        self.register_buffer("label_embeddings", emb)
        self.register_buffer("adjacency", adjacency.float().clone())
        self.gcn = LabelGCN(emb.size(1), 512, gcn_layers, normalize=gcn_normalize)
        self._label_cache: Optional[Tuple[tuple, Tensor]] = None
        self._build_edges()
        self.register_load_state_dict_post_hook(ATGCN._after_load)

    @staticmethod
    def _resolve_embeddings(spec, num_classes: int, dim: int) -> Tensor:
        if spec is None:
            warnings.warn("AT-GCN without label embeddings: using fixed pseudo-random vectors; "
                          "pass GloVe vectors (gnn_audio.labels.load_glove) for the paper's model",
                          stacklevel=3)
            return torch.from_numpy(
                hashed_gaussian("gnn_audio", (num_classes, dim)).astype(np.float32))
        if isinstance(spec, Tensor):
            emb = spec.float()
        else:
            path, names = spec
            emb = load_glove(path, names)
        if emb.dim() != 2 or emb.size(0) != num_classes:
            raise ValueError(f"label embeddings must be [{num_classes}, D] "
                             f"(got {tuple(emb.shape)})")
        return emb.clone()

    # -- the label graph: built when the adjacency is set, not per forward -------------------

    def _build_edges(self) -> None:
        """``edge_index`` / ``edge_weight`` of the current adjacency (one ``nonzero``: a host
        sync on an accelerator, so only when the adjacency changes)."""
        graph = adjacency_to_graph(self.adjacency)
        self.register_buffer("edge_index", graph.edge_index, persistent=False)
        self.register_buffer("edge_weight", graph.edge_weight, persistent=False)
        self._edges_of = (self.adjacency, _version(self.adjacency))
        self._label_cache = None

    def _edges_stale(self) -> bool:
        adjacency, version = self._edges_of  # the tensor the edges were built from
        return adjacency is not self.adjacency or _version(self.adjacency) != version

    @staticmethod
    def _after_load(module: "ATGCN", incompatible_keys) -> None:
        module._build_edges()  # the loaded adjacency (copied in place, or assigned)

    def _apply(self, fn, recurse: bool = True):
        # .to() / .cuda() / .half() convert the edge buffers with the adjacency: the edge list
        # stays valid for the converted adjacency (rebuilt first if it was stale already)
        if self._edges_stale():
            self._build_edges()
        out = super()._apply(fn, recurse)
        self._edges_of = (self.adjacency, _version(self.adjacency))
        self._label_cache = None
        return out

    def train(self, mode: bool = True) -> "ATGCN":
        self._label_cache = None
        return super().train(mode)

    def clear_label_cache(self) -> None:
        """Forget the cached eval-mode label representations (see the class docstring)."""
        self._label_cache = None

    def label_graph(self) -> Data:
        """The label graph as a PyG :class:`Data`: ``x`` = label embeddings, ``edge_index`` /
        ``edge_weight`` from :math:`A'` (the buffers built when the adjacency was set)."""
        if not torch.compiler.is_compiling() and self._edges_stale():
            self._build_edges()
        return Data(x=self.label_embeddings, edge_index=self.edge_index,
                    edge_weight=self.edge_weight, num_nodes=self.num_classes)

    def _cache_key(self) -> Optional[tuple]:
        tensors = [self.label_embeddings, self.adjacency, self.edge_index, self.edge_weight,
                   *self.gcn.parameters(), *self.gcn.buffers()]
        if any(t.is_inference() for t in tensors):
            return None  # no version counter to notice changes: not cached
        return (_autocast_dtype(self.label_embeddings.device.type),) + tuple(
            (t, t._version, t.device, t.dtype) for t in tensors)

    @staticmethod
    def _same_key(a: tuple, b: tuple) -> bool:
        if len(a) != len(b) or a[0] != b[0]:
            return False
        return all(x[0] is y[0] and x[1:] == y[1:] for x, y in zip(a[1:], b[1:]))

    def label_representations(self) -> Tensor:
        """:math:`H^{(L)}`: ``[S, 512]`` (computed once in eval mode without autograd)."""
        if self.training or torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self.gcn(self.label_graph())
        graph = self.label_graph()
        key = self._cache_key()
        cached = self._label_cache
        if key is not None and cached is not None and self._same_key(cached[0], key):
            return cached[1]
        h = self.gcn(graph)
        self._label_cache = None if key is None else (key, h)
        return h

    def forward(self, x: Tensor) -> Tensor:
        x = check_logmel_input(x, self.cnn.bn0.num_features, self)
        feats = self.cnn.embed(x)                        # [B, 512]
        return feats @ self.label_representations().t()  # [B, S]

    def label_layout(self) -> LabelLayout:
        """Per-label tensors: the label nodes' GloVe features ``[S, D]`` and the label graph
        ``A' [S, S]`` (buffers); the head is the GCN that turns them into the classifier."""
        return LabelLayout({"label_embeddings": (0,), "adjacency": (0, 1)}, ("gcn.",))
