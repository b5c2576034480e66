"""ATGNN under bf16 autocast. The LLG option used: ``llg_adjacency="softmax"`` (bounded);
benchmarks/mixed_precision.py compares it with the paper's unbounded default."""
import math

import pytest
import torch

from gnn_audio.data.synthetic.logmel import synthetic_logmel_batch
from gnn_audio.zoo import atgnn_pyr_t


def train_bf16(steps, adjacency="softmax", frames=64, batch_size=2):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = atgnn_pyr_t(llg_adjacency=adjacency)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.95, 0.999), weight_decay=5e-7)
    losses, max_logit = [], 0.0
    for _ in range(steps):
        x, y = synthetic_logmel_batch(batch_size, 200, frames, generator=g)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        max_logit = max(max_logit, logits.float().abs().max().item())
        grads_finite = all(torch.isfinite(p.grad).all() for p in model.parameters()
                           if p.grad is not None)
        assert math.isfinite(losses[-1]) and grads_finite
    assert all(torch.isfinite(p).all() for p in model.parameters())
    return losses, max_logit


def test_bf16_autocast_short():
    losses, max_logit = train_bf16(8)
    assert math.isfinite(max_logit) and losses[-1] < losses[0]


@pytest.mark.slow
def test_bf16_autocast_50_steps():
    losses, max_logit = train_bf16(50)
    print(f"50 bf16 steps: loss {losses[0]:.3f} -> {losses[-1]:.3f}, max |logit| {max_logit:.1f}")
    assert sum(losses[-10:]) < sum(losses[:10])
