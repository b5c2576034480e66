"""Does ATGNN train under mixed precision, with the paper's LLG adjacency and the bounded ones?

Trains the full atgnn_pyr_t for --steps Adam steps (the ATGNN recipe's lr 5e-4, betas
(0.95, 0.999)) on generated log-mel batches under torch.autocast (bf16, and fp16 with a
GradScaler), once per LabelLabelConv option, and prints per run: non-finite losses, the
largest |logit|, the largest |A_ij| reached and the first / last losses. Run:

    .venv/bin/python benchmarks/mixed_precision.py [--steps 50] [--frames 64] [--device cpu]

(on CPU, bf16 convolutions fall back to slow kernels where the processor lacks bf16
instructions: use few frames there.)
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from gnn_audio.data.synthetic.logmel import synthetic_logmel_batch
from gnn_audio.nn import LabelLabelConv
from gnn_audio.zoo import atgnn_pyr_t


def run(adjacency, dtype, steps, frames, batch_size, device):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = atgnn_pyr_t(llg_adjacency=adjacency).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.95, 0.999), weight_decay=5e-7)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    bad, max_logit, losses = 0, 0.0, []
    for _ in range(steps):
        x, y = synthetic_logmel_batch(batch_size, 200, frames, generator=g)
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=dtype):
            logits = model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
        bad += not math.isfinite(losses[-1])
        max_logit = max(max_logit, logits.float().abs().max().item())
    max_a = max(m.adjacency_matrix().abs().max().item() for m in model.modules()
                if isinstance(m, LabelLabelConv))
    return bad, max_logit, max_a, losses[0], losses[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"atgnn_pyr_t, {args.steps} steps, batch {args.batch_size} x {args.frames} frames "
          f"on {device}")
    print(f"{'LLG adjacency':14} {'dtype':9} {'non-finite':>10} {'max|logit|':>10} "
          f"{'max|A|':>8} {'loss first -> last':>20} {'time':>7}")
    for dtype in (torch.bfloat16, torch.float16):
        for adjacency in (None, "softmax", "tanh"):
            t = time.perf_counter()
            bad, ml, ma, l0, l1 = run(adjacency, dtype, args.steps, args.frames,
                                      args.batch_size, device)
            print(f"{str(adjacency):14} {str(dtype)[6:]:9} {bad:>10} {ml:>10.1f} {ma:>8.3f} "
                  f"{l0:>9.3f} -> {l1:<8.3f} {time.perf_counter() - t:>6.0f}s", flush=True)


if __name__ == "__main__":
    main()
