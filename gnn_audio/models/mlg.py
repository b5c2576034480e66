"""The Multi-Label GNN (MLG) block of ATGNN: label nodes read the spectrogram (PLG), go
through an FFN, then exchange information among themselves (LLG)."""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from gnn_audio.graph import KnnConfig, feature_map_to_nodes, nodes_to_feature_map
from gnn_audio.models.vig_blocks import FFN, DropPath
from gnn_audio.nn import LabelLabelConv, PatchLabelConv

__all__ = ["MLGBlock"]


class MLGBlock(torch.nn.Module):
    r"""``L' = L + DropPath(PLG(X, L))``, ``L'' = FFN(L')``, ``\hat L = A L'' + L''`` (LLG).

    PLG is :class:`~gnn_audio.nn.PatchLabelConv` (``knn``: the ``k`` nearest patch nodes of
    the same clip; grouped 1x1 update 2C -> C with BN and GELU, channel-interleaved like the
    reference);
    LLG is :class:`~gnn_audio.nn.LabelLabelConv` with ``adjacency`` (``None`` = the paper).

    Label nodes are ``[B * S, C]`` (clip by clip, label by label), patch nodes
    ``[B * N, C]``.
    """

    def __init__(self, channels: int, num_labels: int, *,
                 knn: Union[KnnConfig, dict, int, None] = None, drop_path: float = 0.0,
                 adjacency: Optional[str] = None) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.plg = PatchLabelConv(channels, KnnConfig.coerce(knn), groups=4, norm="batch",
                                  act="gelu", concat="interleave", residual=False)
        self.drop_path = DropPath(drop_path)
        self.ffn = FFN(channels, 4 * channels, drop_path)
        self.llg = LabelLabelConv(num_labels, adjacency=adjacency)

    def forward(self, labels: Tensor, patches: Tensor, batch_size: int) -> Tensor:
        s = self.num_labels
        update = self.plg((patches, labels), batch_size=batch_size)
        # DropPath and FFN act per clip on the [B, C, S, 1] map view of the label nodes
        lab_map = nodes_to_feature_map(labels, (s, 1))
        lab_map = lab_map + self.drop_path(nodes_to_feature_map(update, (s, 1)))
        lab = feature_map_to_nodes(self.ffn(lab_map))
        return self.llg(lab)
