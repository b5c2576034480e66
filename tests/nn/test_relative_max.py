"""gather_reduce: the CPU column-wise reduction (with and without autograd, over several
blocks of targets) equals one gather-then-reduce, values and gradients."""
import pytest
import torch

from gnn_audio.nn import relative_max
from gnn_audio.nn.relative_max import gather_reduce


def reference(src, nbr, reduce):
    gathered = src[nbr]  # [num_dst, k, C]
    return gathered.amax(1) if reduce == "max" else gathered.amin(1)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 7 targets (C = 6, float64): every call below runs over several blocks, the
    last one partial."""
    monkeypatch.setattr(relative_max, "CPU_BLOCK_BYTES", 7 * 6 * 8)


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("grad", [False, True])
def test_blocked_reduction_equals_gather_then_reduce(small_blocks, reduce, grad):
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(11, 6, dtype=torch.float64, generator=gen, requires_grad=grad)
    nbr = torch.randint(0, 11, (30, 5), generator=gen)
    out = gather_reduce(src, nbr, reduce)
    assert out.requires_grad == grad
    torch.testing.assert_close(out, reference(src, nbr, reduce), rtol=0, atol=0)
    if grad:
        g = torch.randn(out.shape, dtype=torch.float64, generator=gen)
        (got,) = torch.autograd.grad(out, src, g)
        src2 = src.detach().clone().requires_grad_()
        (want,) = torch.autograd.grad(reference(src2, nbr, reduce), src2, g)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_gradcheck_over_blocks(small_blocks):
    gen = torch.Generator().manual_seed(1)
    src = torch.randn(9, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    nbr = torch.stack([torch.randperm(9, generator=gen)[:4] for _ in range(20)])
    assert torch.autograd.gradcheck(lambda s: gather_reduce(s, nbr, "max"), (src,))


def test_a_tie_sends_the_whole_gradient_to_the_first_neighbour(small_blocks):
    """Equal sources (silent frames give equal patches): one winner per element, the first
    in the neighbour list, as a max with indices; the gradient is not split."""
    src = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    nbr = torch.tensor([[2, 1, 0], [0, 1, 2]])
    out = gather_reduce(src, nbr, "max")
    out.sum().backward()
    assert src.grad.tolist() == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]


def test_other_devices_gather_then_reduce():
    """Off the CPU (here the meta device) the reduction is one gather-then-reduce."""
    src = torch.randn(5, 3)
    nbr = torch.randint(0, 5, (8, 2))
    meta = gather_reduce(src.to("meta"), nbr.to("meta"), "min")
    assert meta.device.type == "meta" and meta.shape == (8, 3)
    with pytest.raises(ValueError, match="reduce must be 'max' or 'min'"):
        gather_reduce(src, nbr, "mean")
