"""ATGNN (Singh et al., 2024): Vision GNN backbone over log-mel patches (PGN) with stage-wise
label-graph blocks (MLG) and a two-part prediction (patch head + per-class label readout).

One class builds both variants of the paper:

* **pyramid** (``pyr``): stem /4, four stages (channels ``[C1..C4]``, ``blocks``) with
  stride-2 downsampling, pooled keys ``reduce_ratios=[4, 2, 1, 1]``, relative-position kNN;
* **isotropic** (``iso``): stem /16 to ``N = F*T/256`` nodes, one stage of constant width,
  ``k`` rising linearly from ``k`` to ``2k``, no relative position.

MLG blocks follow every stage (``mlg_blocks`` per stage; the isotropic stage has one entry).
"""
from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from gnn_audio.graph import KnnConfig, feature_map_to_nodes, nodes_to_feature_map
from gnn_audio.models.inputs import check_logmel_input
from gnn_audio.models.label_layout import LabelLayout, classifier_axes
from gnn_audio.models.mlg import MLGBlock
from gnn_audio.models.vig_blocks import Downsample, PGNBlock, Stem, conv_bn
from gnn_audio.nn import GroupedLinear, LabelLabelConv

__all__ = ["ATGNN", "default_relative_pos", "dilation_schedule", "knn_schedule"]

#: constructor arguments of earlier versions that live in ``KnnConfig`` now -> its field
_LEGACY_KNN_ARGS = {"k": "k", "knn_backend": "backend", "stochastic": "stochastic",
                    "epsilon": "epsilon", "relative_pos": "relative_pos"}


def default_relative_pos(arch: str) -> Optional[str]:
    """The relative-position term of an ATGNN's graphs unless ``knn`` says otherwise: the
    authors' ``"reference"`` table for pyramid models (their published code's graphs; see
    docs/graph.md for ``"sincos"``, the exact 2-D geometry), none for isotropic ones."""
    return "reference" if arch == "pyramid" else None


def knn_schedule(k: int, num_blocks: int, rising: bool) -> List[int]:
    """``k`` per block: constant (pyramid ATGNN) or ``linspace(k, 2k)`` (isotropic)."""
    end = 2 * k if rising else k
    # on the CPU whatever the default device (a model built under torch.device("meta"))
    return [int(v) for v in torch.linspace(k, end, num_blocks, device="cpu").tolist()]


def dilation_schedule(ks: Sequence[int], max_nodes: int) -> List[int]:
    """Vision GNN's ``min(idx // 4 + 1, max_nodes // max(k))`` per block (``max_nodes`` is 49
    for pyramid, 196 for isotropic ViG: the last-stage node count at 224x224)."""
    cap = max(1, max_nodes // max(ks))
    return [min(i // 4 + 1, cap) for i in range(len(ks))]


class ATGNN(torch.nn.Module):
    r"""ATGNN audio tagger.

    Args:
        num_classes (int): Number of tags :math:`S`.
        arch (str): ``"pyramid"`` or ``"isotropic"``.
        channels (list of int): Width per stage (one entry for isotropic).
        blocks (list of int): PGN blocks per stage.
        mlg_blocks (list of int): MLG blocks after each stage (ignored when ``mlg=False``).
        mlg (bool): Build the label branch (PLG/LLG and label readout); ``False`` gives the
            paper's "-MLG" model (patch head only, no label parameters).
        knn (KnnConfig or dict, optional): The base kNN settings of the PGN blocks
            (:class:`~gnn_audio.graph.KnnConfig`: ``k``, ``relative_pos``, ``stochastic``,
            ``epsilon``, ``backend``). Each block's config is derived from it: ``k`` follows
            the schedule (constant for pyramid, rising to ``2k`` for isotropic), ``dilation``
            Vision GNN's schedule, ``reduce_ratio`` the stage. Default: ``k=9``,
            ``relative_pos="reference"`` (the authors' table) for pyramid (``None`` for
            isotropic), dense backend.
            A dict overrides fields of that default (``{"stochastic": True}``); a
            :class:`~gnn_audio.graph.KnnConfig` replaces it whole.
        k_plg (int): Patch neighbours per label node (PLG; its backend follows ``knn``).
        reduce_ratios (list of int): Key pooling per stage (pyramid: ``[4, 2, 1, 1]``).
        max_dilation_nodes (int, optional): Dilation cap numerator (default 49 pyramid,
            196 isotropic, as Vision GNN).
        drop_path_rate (float): Stochastic depth, linear over the PGN blocks; MLG blocks use
            the maximum (as the reference).
        drop_rate (float): Dropout in the patch head.
        llg_adjacency (str, optional): ``None`` (paper), ``"softmax"`` or ``"tanh"``: see
            :class:`~gnn_audio.nn.LabelLabelConv` (bounded modes train under fp16/bf16).
        input_size (tuple): ``(frames, mel bins)`` of the design input (1024 x 128): the
            position embedding and relative-position terms are made for it; other frame
            counts work (the embedding is resized bicubically).
        head_hidden (int): Width of the patch head's hidden layer.

    Input: log-mel ``[B, frames, mel]`` (what :func:`gnn_audio.data.fbank` returns, batched)
    or ``[B, 1, mel, frames]``. Output: logits ``[B, S]`` = ``Y_patch + Y_hat`` (eq. 7-9; the
    sigmoid belongs to the loss and to inference).
    """

    def __init__(self, num_classes: int = 200, *, arch: str = "pyramid",
                 channels: Sequence[int] = (80, 160, 400, 640),
                 blocks: Sequence[int] = (2, 2, 6, 2), mlg_blocks: Sequence[int] = (1, 1, 3, 1),
                 mlg: bool = True, knn: Union[KnnConfig, Mapping[str, Any], None] = None,
                 k_plg: int = 9, reduce_ratios: Optional[Sequence[int]] = None,
                 max_dilation_nodes: Optional[int] = None, drop_path_rate: float = 0.1,
                 drop_rate: float = 0.0, llg_adjacency: Optional[str] = None,
                 input_size: Tuple[int, int] = (1024, 128), head_hidden: int = 1024,
                 **legacy: Any) -> None:
        super().__init__()
        if legacy:
            moved = sorted(set(legacy) & set(_LEGACY_KNN_ARGS))
            raise TypeError(
                f"ATGNN got unexpected arguments {sorted(legacy)}" + (
                    f"; the kNN settings {moved} are one config now: pass "
                    f"knn=KnnConfig({', '.join(f'{_LEGACY_KNN_ARGS[m]}=...' for m in moved)})"
                    if moved else ""))
        if arch not in ("pyramid", "isotropic"):
            raise ValueError(f"arch must be 'pyramid' or 'isotropic' (got {arch!r})")
        pyramid = arch == "pyramid"
        channels, blocks = list(channels), list(blocks)
        if len(channels) != len(blocks) or (not pyramid and len(channels) != 1):
            raise ValueError("channels and blocks need one entry per stage (isotropic: one)")
        mlg_blocks = list(mlg_blocks) if mlg else [0] * len(blocks)
        if len(mlg_blocks) != len(blocks):
            raise ValueError("mlg_blocks needs one entry per stage")
        reduce_ratios = list(reduce_ratios or ([4, 2, 1, 1] if pyramid else [1]))
        base = KnnConfig.coerce(knn, relative_pos=default_relative_pos(arch))
        frames, mel = input_size
        self.knn_config = base
        self.num_classes = num_classes
        self.arch = arch
        self.mlg = mlg
        self.channels = channels
        self.stride = 4 if pyramid else 16
        self.input_size = tuple(input_size)
        if min(frames, mel) < self.stride:
            raise ValueError(f"input_size {tuple(input_size)} (frames, mel bins): the {arch} "
                             f"ATGNN's stem downsamples by {self.stride}, so it needs at least "
                             f"{self.stride} frames and {self.stride} mel bins")

        n_blocks = sum(blocks)
        ks = knn_schedule(base.k, n_blocks, rising=not pyramid)
        dilations = dilation_schedule(ks, max_dilation_nodes or (49 if pyramid else 196))
        dpr = torch.linspace(0, drop_path_rate, n_blocks, device="cpu").tolist()

        self.stem = Stem(channels[0], num_down=2 if pyramid else 4)
        # feature maps are [B, C, mel, time]; each stride-2 convolution (padding 1) rounds up
        self.pos_embed = torch.nn.Parameter(
            torch.zeros(1, channels[0], mel // self.stride, frames // self.stride))
        grid = (mel, frames)
        for _ in range(2 if pyramid else 4):
            grid = (-(-grid[0] // 2), -(-grid[1] // 2))

        # flat list, Downsample between stages: the index layout of Pyramid ViG checkpoints
        self.backbone = torch.nn.ModuleList()
        self.stage_ends: List[int] = []
        idx = 0
        for i, (c, n) in enumerate(zip(channels, blocks)):
            if i > 0:
                self.backbone.append(Downsample(channels[i - 1], c))
                grid = (-(-grid[0] // 2), -(-grid[1] // 2))  # stride-2 conv, padding 1
            for _ in range(n):
                block_knn = base.replace(k=ks[idx], dilation=dilations[idx],
                                         reduce_ratio=reduce_ratios[i])
                self.backbone.append(PGNBlock(c, knn=block_knn, grid=grid, drop_path=dpr[idx]))
                idx += 1
            self.stage_ends.append(len(self.backbone) - 1)

        self.prediction = torch.nn.Sequential(
            torch.nn.Conv2d(channels[-1], head_hidden, 1), torch.nn.BatchNorm2d(head_hidden),
            torch.nn.GELU(), torch.nn.Dropout(drop_rate),
            torch.nn.Conv2d(head_hidden, num_classes, 1))

        if mlg:
            self.label_embed = torch.nn.Parameter(torch.zeros(1, channels[0], num_classes, 1))
            self.label_proj = torch.nn.ModuleList(
                [torch.nn.Identity() if i == 0 else conv_bn(channels[i - 1], c)
                 for i, c in enumerate(channels)])
            self.mlg_stages = torch.nn.ModuleList(
                torch.nn.ModuleList(
                    MLGBlock(c, num_classes, knn=KnnConfig(k=k_plg, backend=base.backend),
                             drop_path=drop_path_rate, adjacency=llg_adjacency)
                    for _ in range(m))
                for c, m in zip(channels, mlg_blocks))
            self.label_readout = torch.nn.Parameter(torch.empty(num_classes, channels[-1]))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Vision GNN's init (Kaiming-normal convolutions, zero biases); label embeddings
        ~ trunc-normal(0.02), readout ~ U(+-1/sqrt(C)), LLG adjacency ~ U(+-1/sqrt(S))."""
        for m in self.modules():  # parents come before their children
            if m is self:
                continue
            if isinstance(m, (torch.nn.Conv2d, GroupedLinear)):  # incl. the graph layers' maps
                torch.nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    torch.nn.init.zeros_(m.bias)
            elif hasattr(m, "reset_parameters"):
                m.reset_parameters()
        torch.nn.init.zeros_(self.pos_embed)
        if self.mlg:
            torch.nn.init.trunc_normal_(self.label_embed, std=0.02)
            bound = 1.0 / math.sqrt(self.channels[-1])
            torch.nn.init.uniform_(self.label_readout, -bound, bound)

    # -- forward -----------------------------------------------------------------------------

    def _as_image(self, x: Tensor) -> Tensor:
        """Check ``x`` (see :func:`~gnn_audio.models.inputs.check_logmel_input`; NaN / inf
        unless ``self.check_finite = False``) and return it as ``[B, 1, mel, frames]``."""
        x = check_logmel_input(x, self.input_size[1], self)  # [B, frames, mel]
        return x.transpose(1, 2).unsqueeze(1)

    def position_embedding(self, grid: Tuple[int, int]) -> Tensor:
        """The learnable position embedding, bicubically resized to ``grid`` if needed."""
        if tuple(self.pos_embed.shape[-2:]) == tuple(grid):
            return self.pos_embed
        return F.interpolate(self.pos_embed, size=grid, mode="bicubic", align_corners=False)

    def forward_features(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Patch feature map ``[B, C, H, W]`` after the last stage and label nodes
        ``[B * S, C]`` (``None`` without MLG)."""
        x = self.stem(self._as_image(x)).contiguous(memory_format=torch.channels_last)
        x = x + self.position_embedding((x.size(2), x.size(3)))
        b = x.size(0)
        labels = None
        if self.mlg:
            labels = self.label_embed[0, :, :, 0].t().repeat(b, 1)
        stage = 0
        for i, module in enumerate(self.backbone):
            x = module(x)
            if self.mlg and i == self.stage_ends[stage]:
                proj = self.label_proj[stage]
                if not isinstance(proj, torch.nn.Identity):
                    labels = feature_map_to_nodes(
                        proj(nodes_to_feature_map(labels, (self.num_classes, 1))))
                patches = feature_map_to_nodes(x)
                for block in self.mlg_stages[stage]:
                    labels = block(labels, patches, b)
                stage += 1
        return x, labels

    def forward_head(self, x: Tensor, labels: Optional[Tensor]) -> Tensor:
        logits = self.prediction(F.adaptive_avg_pool2d(x, 1)).flatten(1)  # Y_patch (eq. 7)
        if labels is not None:  # Y_hat_i = W_i^p . l_i (eq. 8)
            lab = labels.view(x.size(0), self.num_classes, -1)
            logits = logits + (lab * self.label_readout.unsqueeze(0)).sum(-1)
        return logits

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(*self.forward_features(x))

    def label_layout(self) -> LabelLayout:
        """Per-label tensors: the patch head's last 1x1 convolution (rows) and, with MLG, the
        label embeddings ``[1, C, S, 1]``, the readout ``[S, C]`` and every LLG adjacency
        ``[S, S]`` (both axes); the head is ``prediction``."""
        last = f"prediction.{len(self.prediction) - 1}"
        axes = classifier_axes(last, self.prediction[-1])
        if self.mlg:
            axes.update({"label_embed": (2,), "label_readout": (0,)})
            for name, module in self.named_modules():
                if isinstance(module, LabelLabelConv):
                    axes[f"{name}.weight"] = (0, 1)
        return LabelLayout(axes, ("prediction.",))
