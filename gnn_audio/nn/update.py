"""The update function ``h`` of the max-relative layers (grouped linear, norm, activation)
and the order in which ``[x_i, m_i]`` is fed to it."""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor
from torch_geometric.nn.resolver import activation_resolver

from gnn_audio.nn.linear import GroupedLinear

__all__ = ["make_update_nn", "concat_pair", "check_concat", "CONCAT_ORDERS"]

#: ``"cat"``: ``[x || m]``; ``"interleave"``: ``[x_0, m_0, x_1, m_1, ...]`` (Vision GNN)
CONCAT_ORDERS = ("cat", "interleave")

_NORMS = {"batch": torch.nn.BatchNorm1d, "batch_norm": torch.nn.BatchNorm1d,
          "layer": torch.nn.LayerNorm, "layer_norm": torch.nn.LayerNorm}


def make_update_nn(in_channels: int, out_channels: int, groups: int = 1,
                   norm: Union[str, Callable[[int], torch.nn.Module], None] = None,
                   act: Union[str, Callable, None] = None, bias: bool = True,
                   act_kwargs: Optional[dict] = None) -> torch.nn.Sequential:
    """``Sequential(GroupedLinear(in, out, groups), norm(out), act)``; ``norm`` is ``"batch"``,
    ``"layer"``, a class taking the channel count, or ``None``; ``act`` anything PyG's
    :func:`~torch_geometric.nn.resolver.activation_resolver` accepts, or ``None``."""
    layers: list[Any] = [GroupedLinear(in_channels, out_channels, groups, bias=bias)]
    if norm is not None:
        layers.append(_NORMS[norm.lower()](out_channels) if isinstance(norm, str)
                      else norm(out_channels))
    if act is not None:
        layers.append(activation_resolver(act, **(act_kwargs or {})))
    return torch.nn.Sequential(*layers)


def check_concat(order: str) -> str:
    """Validates a concatenation order (one of :data:`CONCAT_ORDERS`) and returns it."""
    if order not in CONCAT_ORDERS:
        raise ValueError(f"concat must be one of {CONCAT_ORDERS} (got {order!r})")
    return order


def concat_pair(x: Tensor, m: Tensor, order: str) -> Tensor:
    """``[x || m]`` (``order="cat"``) or channel-interleaved ``[x_0, m_0, x_1, m_1, ...]``
    (``order="interleave"``, the layout of Vision GNN's ``MRConv2d`` and of its checkpoints)."""
    if check_concat(order) == "cat":
        return torch.cat([x, m], dim=-1)
    return torch.stack([x, m], dim=-1).flatten(-2)
