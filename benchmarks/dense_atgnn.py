"""A plain dense ATGNN (pyramid), written the way Pyramid ViG / the ATGNN authors' code is:
feature maps ``[B, C, H, W]``, batched pairwise distances, ``topk``, gathers and a max over
the neighbour axis. No PyG, nothing from :mod:`gnn_audio.nn` or the graph builders of
:mod:`gnn_audio.graph`; only the sin-cos position embedding of
:func:`gnn_audio.graph.position.grid_sincos_embedding` is shared, so that both models add the
same relative-position term and pick the same neighbours.

It is the baseline of ``benchmarks/bench_model.py`` and the independent check of the model's
arithmetic in ``tests/test_bench_model.py``. Parameter and buffer names equal those of
:class:`gnn_audio.models.ATGNN`, so ``dense.load_state_dict(model.state_dict())`` works with
``strict=True``::

    model = gnn_audio.zoo.create_model("atgnn_pyr_s")
    dense = DenseATGNN(DenseATGNNConfig.from_state_dict(model.state_dict()))
    dense.load_state_dict(model.state_dict())

Differences from the reference code, all on the project's side of a choice:

* key pooling is ``avg_pool2d(ceil_mode=True, count_include_pad=False)`` (the reference:
  floor); both agree when the grid divides by ``r``;
* the relative-position term ``-(2/D) e_q . e_k`` uses the 2-D sin-cos embedding at the node
  positions and at the pooled cells' centres (the reference: a square table bicubically
  resized along the flattened index);
* a node with fewer than ``k * d`` candidate keys keeps the candidates it has (every d-th),
  where the reference's ``topk`` would fail;
* stochastic dilation is not implemented (the zoo models have it off).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnn_audio.graph.position import grid_sincos_embedding

__all__ = ["DenseATGNNConfig", "DenseATGNN", "vig_dilations"]


def vig_dilations(num_blocks: int, k: int, max_nodes: int = 49) -> List[int]:
    """Pyramid ViG's dilation per block: ``min(idx // 4 + 1, max_nodes // k)``."""
    cap = max(1, max_nodes // k)
    return [min(i // 4 + 1, cap) for i in range(num_blocks)]


@dataclass(frozen=True)
class DenseATGNNConfig:
    """Architecture of a :class:`DenseATGNN` (pyramid ATGNN).

    ``pos_grid`` is the ``(H, W)`` size of the learnable position embedding (mel bins / 4,
    frames / 4); ``mlg_blocks`` empty means no MLG (the "-MLG" model).
    """

    num_classes: int = 200
    channels: Tuple[int, ...] = (80, 160, 400, 640)
    blocks: Tuple[int, ...] = (2, 2, 6, 2)
    mlg_blocks: Tuple[int, ...] = (1, 1, 3, 1)
    k: int = 9
    k_plg: int = 9
    reduce_ratios: Tuple[int, ...] = (4, 2, 1, 1)
    max_dilation_nodes: int = 49
    relative_pos: bool = True
    drop_path_rate: float = 0.1
    drop_rate: float = 0.0
    head_hidden: int = 1024
    pos_grid: Tuple[int, int] = (32, 256)

    def __post_init__(self) -> None:
        for name in ("channels", "blocks", "mlg_blocks", "reduce_ratios", "pos_grid"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        n = len(self.channels)
        if n == 0 or len(self.blocks) != n or len(self.reduce_ratios) != n:
            raise ValueError("channels, blocks and reduce_ratios need one entry per stage")
        if self.mlg_blocks and len(self.mlg_blocks) != n:
            raise ValueError("mlg_blocks needs one entry per stage (or none: no MLG)")
        if min(self.k, self.k_plg, *self.blocks, *self.reduce_ratios) < 1:
            raise ValueError("k, k_plg, blocks and reduce_ratios must be positive")
        if any(c % 4 for c in self.channels):
            raise ValueError(f"channels must divide by 4 (got {self.channels})")
        if len(self.pos_grid) != 2:
            raise ValueError(f"pos_grid is (H, W) (got {self.pos_grid})")

    @property
    def mlg(self) -> bool:
        return bool(self.mlg_blocks)

    def replace(self, **changes) -> "DenseATGNNConfig":
        return replace(self, **changes)

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor], **overrides) -> "DenseATGNNConfig":
        """The shapes (stages, widths, blocks, MLG blocks, classes, head, position grid) read
        from a gnn_audio ATGNN state dict; the rest (``k``, ``reduce_ratios``, ...) from the
        defaults, which are those of the zoo's pyramid entries, or ``overrides``."""
        sd = state_dict
        if "stem.convs.9.weight" in sd or "backbone.0.0.fc1.0.weight" not in sd:
            raise ValueError("not a pyramid ATGNN state dict (DenseATGNN builds pyramid models)")
        channels: List[int] = []
        blocks: List[int] = []
        i = 0
        while True:
            if f"backbone.{i}.conv.0.weight" in sd:  # Downsample: a new stage starts
                i += 1
                continue
            key = f"backbone.{i}.0.fc1.0.weight"
            if key not in sd:
                break
            c = int(sd[key].shape[0])
            if not channels or f"backbone.{i - 1}.conv.0.weight" in sd:
                channels.append(c)
                blocks.append(0)
            blocks[-1] += 1
            i += 1
        mlg_blocks: List[int] = []
        if "label_embed" in sd:
            for s in range(len(channels)):
                j = 0
                while f"mlg_stages.{s}.{j}.llg.weight" in sd:
                    j += 1
                mlg_blocks.append(j)
        kw = dict(num_classes=int(sd["prediction.4.weight"].shape[0]), channels=channels,
                  blocks=blocks, mlg_blocks=mlg_blocks,
                  head_hidden=int(sd["prediction.0.weight"].shape[0]),
                  pos_grid=tuple(sd["pos_embed"].shape[-2:]))
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"unknown DenseATGNNConfig fields: {sorted(unknown)}")
        kw.update(overrides)
        return cls(**kw)


# -- building blocks --------------------------------------------------------------------------

def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1,
            stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                                   kernel_size // 2), nn.BatchNorm2d(out_channels))


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.size(0),) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)


class GroupedConv1x1(nn.Module):
    """Grouped 1x1 convolution whose weight is stored ``[out, in // groups]`` (the layout of
    gnn_audio's ``GroupedLinear``), reshaped to a conv kernel in :meth:`forward`."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_normal_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight[:, :, None, None], self.bias, groups=self.groups)


def basic_conv(in_channels: int, out_channels: int, groups: int = 4) -> nn.Sequential:
    """ViG's ``BasicConv([in, out], 'gelu', 'batch', bias=True)`` with groups."""
    return nn.Sequential(GroupedConv1x1(in_channels, out_channels, groups),
                         nn.BatchNorm2d(out_channels), nn.GELU())


def batched_index_select(x: Tensor, idx: Tensor) -> Tensor:
    """ViG's gather: ``x [B, C, M, 1]``, ``idx [B, N, k]`` -> ``[B, C, N, k]``."""
    b, c, m = x.shape[:3]
    _, n, k = idx.shape
    idx = (idx + torch.arange(b, device=idx.device).view(-1, 1, 1) * m).reshape(-1)
    feature = x.transpose(2, 1).reshape(b * m, -1)[idx, :]
    return feature.view(b, n, k, c).permute(0, 3, 1, 2).contiguous()


def xy_pairwise_distance(x: Tensor, y: Tensor) -> Tensor:
    """``[B, N, C]``, ``[B, M, C]`` -> squared distances ``[B, N, M]``."""
    inner = -2 * torch.matmul(x, y.transpose(2, 1))
    x_sq = torch.sum(x * x, dim=-1, keepdim=True)
    y_sq = torch.sum(y * y, dim=-1, keepdim=True)
    return x_sq + inner + y_sq.transpose(2, 1)


@torch.no_grad()
def dense_knn(x: Tensor, y: Tensor, kd: int, relative_pos: Optional[Tensor] = None) -> Tensor:
    """``[B, N, min(kd, M)]`` indices of the nearest ``y`` (keys ``[B, C, M, 1]``) of every
    ``x`` (queries ``[B, C, N, 1]``), nearest first, on L2-normalised features."""
    x = F.normalize(x, p=2.0, dim=1).transpose(2, 1).squeeze(-1)
    y = F.normalize(y, p=2.0, dim=1).transpose(2, 1).squeeze(-1)
    dist = xy_pairwise_distance(x, y)
    if relative_pos is not None:
        dist = dist + relative_pos
    return torch.topk(-dist, k=min(kd, y.size(1)), dim=-1).indices


def center_index(batch: int, n: int, k: int, device: torch.device) -> Tensor:
    return torch.arange(n, device=device).repeat(batch, k, 1).transpose(2, 1)


# -- PGN --------------------------------------------------------------------------------------

class MRConv2d(nn.Module):
    """ViG's max-relative graph convolution on ``[B, C, N, 1]`` maps."""

    def __init__(self, in_channels: int, out_channels: int, groups: int = 4) -> None:
        super().__init__()
        self.nn = basic_conv(2 * in_channels, out_channels, groups)

    def forward(self, x: Tensor, nn_idx: Tensor, y: Optional[Tensor] = None) -> Tensor:
        b, c, n, _ = x.shape
        x_i = batched_index_select(x, center_index(b, n, nn_idx.size(-1), x.device))
        x_j = batched_index_select(x if y is None else y, nn_idx)
        x_j = torch.amax(x_j - x_i, -1, keepdim=True)
        h = torch.cat([x.unsqueeze(2), x_j.unsqueeze(2)], dim=2).reshape(b, 2 * c, n, 1)
        return self.nn(h)


class Grapher(nn.Module):
    """fc1 -> dilated kNN graph (pooled keys, relative position) -> MRConv2d -> fc2 ->
    DropPath + residual."""

    def __init__(self, channels: int, k: int, dilation: int, reduce_ratio: int,
                 relative_pos: bool, drop_path_p: float) -> None:
        super().__init__()
        self.k, self.dilation, self.r, self.relative_pos = k, dilation, reduce_ratio, relative_pos
        self.fc1 = conv_bn(channels, channels)
        self.graph_conv = MRConv2d(channels, 2 * channels)
        self.fc2 = conv_bn(2 * channels, channels)
        self.drop_path = DropPath(drop_path_p)
        self._rel_pos: Dict[tuple, Tensor] = {}

    def relative_position(self, h: int, w: int, dim: int, device: torch.device,
                          dtype: torch.dtype) -> Tensor:
        """``-(2/D) e_q . e_k`` ``[1, H*W, M]`` (cached per grid)."""
        key = (h, w, dim, device, dtype)
        rel = self._rel_pos.get(key)
        if rel is None:
            with torch.no_grad():
                e_q = grid_sincos_embedding(h, w, dim, 1, device)
                e_k = e_q if self.r == 1 else grid_sincos_embedding(h, w, dim, self.r, device)
                rel = (e_q @ e_k.t() * (-2.0 / dim)).unsqueeze(0).to(dtype)
            self._rel_pos = {key: rel}
        return rel

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.fc1(x)
        b, c, h, w = x.shape
        y = None
        if self.r > 1:
            y = F.avg_pool2d(x, self.r, self.r, ceil_mode=True, count_include_pad=False)
            y = y.reshape(b, c, -1, 1)
        x = x.reshape(b, c, -1, 1)
        rel = (self.relative_position(h, w, c, x.device, x.dtype) if self.relative_pos
               else None)
        nn_idx = dense_knn(x, x if y is None else y, self.k * self.dilation, rel)
        nn_idx = nn_idx[:, :, ::self.dilation][:, :, :self.k]
        x = self.graph_conv(x, nn_idx, y).reshape(b, -1, h, w)
        return shortcut + self.drop_path(self.fc2(x))


class FFN(nn.Module):
    def __init__(self, channels: int, hidden: int, drop_path_p: float = 0.0) -> None:
        super().__init__()
        self.fc1 = conv_bn(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = conv_bn(hidden, channels)
        self.drop_path = DropPath(drop_path_p)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop_path(self.fc2(self.act(self.fc1(x))))


class Downsample(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv_bn(in_channels, out_channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Stem(nn.Module):
    """Conv s2 (1 -> C/2) BN GELU, conv s2 (C/2 -> C) BN GELU, conv s1 (C -> C) BN."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        c2 = out_channels // 2
        self.convs = nn.Sequential(
            nn.Conv2d(1, c2, 3, 2, 1), nn.BatchNorm2d(c2), nn.GELU(),
            nn.Conv2d(c2, out_channels, 3, 2, 1), nn.BatchNorm2d(out_channels), nn.GELU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.convs(x)


# -- MLG --------------------------------------------------------------------------------------

class PLGConv(nn.Module):
    """Labels ``[B, C, S, 1]`` read their ``k`` nearest patch nodes ``[B, C, N, 1]`` of the
    same clip: ``h([l_i, max_j (l_i - x_j)])`` (interleaved concat, grouped conv, BN, GELU)."""

    def __init__(self, channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.nn = basic_conv(2 * channels, channels)

    def forward(self, labels: Tensor, patches: Tensor) -> Tensor:
        b, c, s, _ = labels.shape
        nn_idx = dense_knn(labels, patches, self.k)
        x_i = batched_index_select(labels, center_index(b, s, nn_idx.size(-1), labels.device))
        x_j = batched_index_select(patches, nn_idx)
        m = torch.amax(x_i - x_j, -1, keepdim=True)
        h = torch.cat([labels.unsqueeze(2), m.unsqueeze(2)], dim=2).reshape(b, 2 * c, s, 1)
        return self.nn(h)


class LLGConv(nn.Module):
    """``L_hat = A L + L`` per clip, ``A`` ``[S, S]``."""

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_labels, num_labels))
        bound = num_labels ** -0.5
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, labels: Tensor) -> Tensor:  # [B, C, S, 1]
        lab = labels.squeeze(-1)
        return (torch.matmul(lab, self.weight.t()) + lab).unsqueeze(-1)


class MLGBlock(nn.Module):
    def __init__(self, channels: int, num_labels: int, k: int, drop_path_p: float) -> None:
        super().__init__()
        self.plg = PLGConv(channels, k)
        self.drop_path = DropPath(drop_path_p)
        self.ffn = FFN(channels, 4 * channels, drop_path_p)
        self.llg = LLGConv(num_labels)

    def forward(self, labels: Tensor, patches: Tensor) -> Tensor:
        labels = labels + self.drop_path(self.plg(labels, patches))
        return self.llg(self.ffn(labels))


# -- model ------------------------------------------------------------------------------------

class DenseATGNN(nn.Module):
    """Pyramid ATGNN on dense feature maps (see the module docstring).

    Input: log-mel ``[B, frames, mel]`` or ``[B, 1, mel, frames]``; output logits ``[B, S]``.
    """

    def __init__(self, config: DenseATGNNConfig = DenseATGNNConfig()) -> None:
        super().__init__()
        cfg = self.config = config
        ch = cfg.channels
        n_blocks = sum(cfg.blocks)
        dilations = vig_dilations(n_blocks, cfg.k, cfg.max_dilation_nodes)
        dpr = torch.linspace(0, cfg.drop_path_rate, n_blocks).tolist()
        self.stem = Stem(ch[0])
        self.pos_embed = nn.Parameter(torch.zeros(1, ch[0], *cfg.pos_grid))
        self.backbone = nn.ModuleList()
        self.stage_ends: List[int] = []
        idx = 0
        for i, (c, n) in enumerate(zip(ch, cfg.blocks)):
            if i > 0:
                self.backbone.append(Downsample(ch[i - 1], c))
            for _ in range(n):
                self.backbone.append(nn.Sequential(
                    Grapher(c, cfg.k, dilations[idx], cfg.reduce_ratios[i], cfg.relative_pos,
                            dpr[idx]),
                    FFN(c, 4 * c, dpr[idx])))
                idx += 1
            self.stage_ends.append(len(self.backbone) - 1)
        self.prediction = nn.Sequential(
            nn.Conv2d(ch[-1], cfg.head_hidden, 1), nn.BatchNorm2d(cfg.head_hidden), nn.GELU(),
            nn.Dropout(cfg.drop_rate), nn.Conv2d(cfg.head_hidden, cfg.num_classes, 1))
        if cfg.mlg:
            s = cfg.num_classes
            self.label_embed = nn.Parameter(torch.zeros(1, ch[0], s, 1))
            nn.init.trunc_normal_(self.label_embed, std=0.02)
            self.label_proj = nn.ModuleList(
                [nn.Identity() if i == 0 else conv_bn(ch[i - 1], c) for i, c in enumerate(ch)])
            self.mlg_stages = nn.ModuleList(
                nn.ModuleList(MLGBlock(c, s, cfg.k_plg, cfg.drop_path_rate) for _ in range(m))
                for c, m in zip(ch, cfg.mlg_blocks))
            self.label_readout = nn.Parameter(torch.empty(s, ch[-1]))
            nn.init.uniform_(self.label_readout, -ch[-1] ** -0.5, ch[-1] ** -0.5)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:  # [B, frames, mel] -> [B, 1, mel, frames]
            x = x.transpose(1, 2).unsqueeze(1)
        x = self.stem(x)
        pos = self.pos_embed
        if tuple(pos.shape[-2:]) != tuple(x.shape[-2:]):
            pos = F.interpolate(pos, size=x.shape[-2:], mode="bicubic", align_corners=False)
        x = x + pos
        b = x.size(0)
        labels = self.label_embed.expand(b, -1, -1, -1) if self.config.mlg else None
        stage = 0
        for i, module in enumerate(self.backbone):
            x = module(x)
            if i == self.stage_ends[stage]:
                if labels is not None:
                    labels = self.label_proj[stage](labels)
                    patches = x.reshape(b, x.size(1), -1, 1)
                    for block in self.mlg_stages[stage]:
                        labels = block(labels, patches)
                stage += 1
        logits = self.prediction(F.adaptive_avg_pool2d(x, 1)).flatten(1)
        if labels is not None:
            logits = logits + torch.einsum("bcs,sc->bs", labels.squeeze(-1), self.label_readout)
        return logits
