"""Peak training memory of a zoo model at a batch size, estimated without a GPU.

A training step holds the weights, their gradients, Adam's two moments and everything the
forward saves for the backward. This script counts the saved tensors' storages with
:func:`torch.autograd.graph.saved_tensors_hooks` during a CPU forward in training mode at two
small batch sizes, extrapolates them linearly to ``--batch`` and adds 4 x the weights. For
bf16 the forward runs under CPU autocast, whose casting rules (convolutions and matrix products
in bf16) stand in for CUDA's. Not counted: transient buffers of single operators (cuDNN
workspaces, the kNN distance matrices while they are built), the allocator's caching and
fragmentation, and the CUDA context (about 0.5 GiB): compare with
``torch.cuda.max_memory_allocated`` from ``benchmarks/bench_model.py --device cuda``.

    .venv/bin/python benchmarks/memory_estimate.py [--model atgnn_pyr_s] [--batch 24]
        [--frames 1024] [--mel 128] [--json OUT]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Dict

import torch

from gnn_audio.zoo import create_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import write_json  # noqa: E402


def saved_bytes(model: torch.nn.Module, x: torch.Tensor, precision: str) -> int:
    """Bytes of the distinct storages the forward of ``model`` on ``x`` saves for backward."""
    seen: Dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr(), storage.nbytes()] = storage.nbytes()
        return t

    cast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
            else contextlib.nullcontext())
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), cast:
        model(x)
    return sum(seen.values())


def estimate(name: str, batch: int, frames: int, mel: int, precision: str,
             probe=(2, 4)) -> Dict[str, float]:
    """The estimate (GiB) for one precision: saved activations per clip, at ``batch``, the
    weights with gradients and Adam moments, and their sum."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=200, input_size=(frames, mel)).train()
    low, high = (saved_bytes(model, torch.randn(b, frames, mel), precision) for b in probe)
    per_clip = (high - low) / (probe[1] - probe[0])
    fixed = low - probe[0] * per_clip
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    activations = fixed + batch * per_clip
    gib = 2 ** 30
    return {"activations_per_clip_gib": per_clip / gib, "activations_gib": activations / gib,
            "weights_grads_adam_gib": 4 * weights / gib,
            "total_gib": (activations + 4 * weights) / gib}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="atgnn_pyr_s")
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--frames", type=int, default=1024)
    p.add_argument("--mel", type=int, default=128)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = {}
    for precision in ("fp32", "bf16"):
        e = estimate(args.model, args.batch, args.frames, args.mel, precision)
        out[precision] = e
        print(f"{args.model}, batch {args.batch}, {args.frames} x {args.mel}, {precision}: "
              f"saved activations {e['activations_per_clip_gib'] * 1024:.0f} MiB per clip, "
              f"{e['activations_gib']:.2f} GiB; weights + gradients + Adam "
              f"{e['weights_grads_adam_gib'] * 1024:.0f} MiB; about {e['total_gib']:.2f} GiB "
              "before transient buffers")
    if args.json:
        write_json(args.json, {"settings": vars(args), "estimate": out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
