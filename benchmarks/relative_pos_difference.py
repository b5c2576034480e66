"""How many kNN neighbours change between gnn_audio's exact relative-position term
(``relative_pos="sincos"``) and the reference code's resized table (``"reference"``).

For every PGN block of atgnn_pyr_s at its design input (1024 frames x 128 mel), the block's
own graph input (the output of ``fc1``) is captured on generated log-mel clips, and the graph
is built with both terms (same features, same k, dilation and pooled keys). Prints, per
block, the share of (node, neighbour) slots that differ and the share of nodes whose
neighbour set changes; also for random Gaussian features (no learned structure: the position
term then decides more of the ranking).

    python benchmarks/relative_pos_difference.py [--clips 2] [--frames 1024]
"""
from __future__ import annotations

import argparse

import torch

from gnn_audio.data.synthetic import synthetic_logmel_batch
from gnn_audio.graph import GridKnnGraph
from gnn_audio.zoo import create_model


def changed(a: torch.Tensor, b: torch.Tensor) -> tuple:
    """(share of slots of ``a`` missing from ``b``, share of rows whose sets differ)."""
    a, b = a.sort(1).values, b.sort(1).values
    hit = (a[:, :, None] == b[:, None, :]).any(-1)
    return 1.0 - hit.float().mean().item(), (~hit.all(1)).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = create_model("atgnn_pyr_s").eval()
    captured = []
    graphs = [m for m in model.modules() if isinstance(m, GridKnnGraph)]
    hooks = [g.register_forward_pre_hook(lambda mod, inp: captured.append(inp[0].detach()))
             for g in graphs]
    x, _ = synthetic_logmel_batch(args.clips, 200, args.frames,
                                  generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    print("| block | grid | C | k x d | r | model features: slots changed | nodes changed "
          "| random features: slots changed | nodes changed |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    totals = []
    for i, (g, feats) in enumerate(zip(graphs, captured)):
        cfg = g.config
        c, h, w = feats.shape[1:]
        sincos = GridKnnGraph(cfg.replace(relative_pos="sincos"), grid=(h, w), channels=c).eval()
        ref = GridKnnGraph(cfg.replace(relative_pos="reference"), grid=(h, w), channels=c).eval()
        row = []
        for f in (feats, torch.randn_like(feats)):
            with torch.no_grad():
                a, b = sincos(f)[2].index, ref(f)[2].index
            row += list(changed(a, b))
        totals.append(row)
        print(f"| {i} | {h} x {w} | {c} | {cfg.k} x {cfg.dilation} | {cfg.reduce_ratio} | "
              + " | ".join(f"{100 * v:.1f} %" for v in row) + " |")
    mean = [sum(col) / len(col) for col in zip(*totals)]
    print("| mean | | | | | " + " | ".join(f"{100 * v:.1f} %" for v in mean) + " |")


if __name__ == "__main__":
    main()
