"""Parameter and multiply-accumulate counts of zoo models.

MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2) over one forward
pass of one clip in eval mode. It counts matrix products and convolutions (``mm``, ``addmm``,
``bmm``, ``baddbmm``, ``convolution``), which includes the kNN distance products of the dense
graph builder. It does **not** count gathers of neighbour features, max / min / top-k
reductions, element-wise operations (activations, normalisation, residual additions),
pooling, softmax or interpolation; nor anything cached across calls (the relative-position
tables). The paper's "GFLOPs" are multiply-accumulates in the same sense (Pyramid ViG-S
reports 4.6 "GFLOPs" at 224 x 224).
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from gnn_audio.zoo._factory import create_model
from gnn_audio.zoo._registry import get_model_config, list_models

__all__ = ["count_parameters", "count_macs", "model_summary", "summary_table"]


def count_parameters(model: torch.nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: torch.nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of ``model(example)`` in eval mode (see the module docstring)."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def model_summary(name: str, num_classes: int = 200,
                  input_size: Optional[Tuple[int, int]] = None) -> Dict[str, float]:
    """``{"params": ..., "macs": ..., "paper_params_m": ..., "paper_gflops": ...}`` for a zoo
    entry at ``input_size`` (default: its config, e.g. 1024 frames x 128 mel)."""
    config = get_model_config(name)
    model = create_model(name, num_classes=num_classes)
    size = input_size or config.input_size
    example = torch.randn(1, *size)
    out = {"params": count_parameters(model), "macs": count_macs(model, example)}
    out["paper_params_m"] = config.paper.get("params_m")
    out["paper_gflops"] = config.paper.get("gflops")
    out["reference_params"] = config.reference_params
    return out


def summary_table(names: Optional[Iterable[str]] = None, num_classes: int = 200) -> str:
    """A Markdown table of :func:`model_summary` for ``names`` (default: all models)."""
    names = list(names) if names is not None else list_models()
    rows: List[str] = ["| model | params | paper params | MACs (G) | paper GFLOPs |",
                       "|---|---:|---:|---:|---:|"]
    for name in names:
        s = model_summary(name, num_classes)
        paper_p = f"{s['paper_params_m']:.1f} M" if s["paper_params_m"] else "-"
        if s["reference_params"]:
            paper_p += f" (ref. code {s['reference_params'] / 1e6:.3f} M)"
        paper_g = f"{s['paper_gflops']:.2f}" if s["paper_gflops"] else "-"
        rows.append(f"| {name} | {s['params'] / 1e6:.3f} M | {paper_p} | "
                    f"{s['macs'] / 1e9:.2f} | {paper_g} |")
    return "\n".join(rows)
