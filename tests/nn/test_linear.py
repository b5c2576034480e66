import math

import pytest
import torch
import torch.nn.functional as F

from gnn_audio.nn import GroupedLinear


def conv_reference(conv: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``Conv2d(in, out, 1, groups=g)`` applied to every row of ``x [N, in]`` (as a 1 x N
    image), back as ``[N, out]``."""
    return conv(x.t()[None, :, None, :])[0, :, 0, :].t()


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_conv2d_1x1_with_the_same_weights(groups, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 24, 1, groups=groups, bias=bias)
    lin = GroupedLinear(16, 24, groups=groups, bias=bias)
    # the documented layout: a 1x1 convolution's weights load with a reshape
    state = {"weight": conv.weight.detach().reshape(24, -1)}
    if bias:
        state["bias"] = conv.bias.detach()
    lin.load_state_dict(state)
    x = torch.randn(37, 16)
    torch.testing.assert_close(lin(x), conv_reference(conv, x))


def test_groups_1_equals_linear():
    torch.manual_seed(0)
    ref = torch.nn.Linear(12, 5)
    lin = GroupedLinear(12, 5)
    lin.load_state_dict(ref.state_dict())
    x = torch.randn(9, 12)
    torch.testing.assert_close(lin(x), ref(x))


def test_groups_act_on_their_own_channels_only():
    torch.manual_seed(0)
    lin = GroupedLinear(8, 6, groups=2)
    x = torch.randn(5, 8)
    y = lin(x)
    x2 = x.clone()
    x2[:, 4:] += 1.0  # the second input group feeds the second output group only
    y2 = lin(x2)
    torch.testing.assert_close(y2[:, :3], y[:, :3])
    assert not torch.allclose(y2[:, 3:], y[:, 3:])


@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("lead", [(), (3,), (2, 3, 5), (0,), (2, 0)])
def test_leading_dimensions(groups, lead):
    torch.manual_seed(0)
    lin = GroupedLinear(8, 12, groups=groups)
    x = torch.randn(*lead, 8)
    y = lin(x)
    assert y.shape == (*lead, 12)
    torch.testing.assert_close(y, lin(x.reshape(-1, 8)).reshape(*lead, 12))
    if x.numel():
        torch.testing.assert_close(y.reshape(-1, 12)[0], lin(x.reshape(-1, 8)[:1])[0])


def test_non_contiguous_input():
    torch.manual_seed(0)
    lin = GroupedLinear(8, 4, groups=2)
    x = torch.randn(8, 10).t()  # [10, 8], not contiguous
    torch.testing.assert_close(lin(x), lin(x.contiguous()))


@pytest.mark.parametrize("in_channels,out_channels,groups", [
    (6, 4, 4),   # 6 input channels do not split into 4 groups
    (8, 6, 4),   # nor 6 output channels
    (8, 8, 0),
    (8, 8, -2),
])
def test_bad_groups_raise(in_channels, out_channels, groups):
    with pytest.raises(ValueError, match="groups"):
        GroupedLinear(in_channels, out_channels, groups=groups)


@pytest.mark.parametrize("groups", [1, 2])
def test_wrong_number_of_channels_raises(groups):
    lin = GroupedLinear(8, 4, groups=groups)
    with pytest.raises(ValueError, match="expects 8 input channels"):
        lin(torch.randn(6, 4))


@pytest.mark.parametrize("groups", [1, 4])
def test_reset_parameters_is_the_torch_default(groups):
    # same generator state -> the same draws as Conv2d(in, out, 1, groups) / nn.Linear
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(16, 8, 1, groups=groups)
    torch.manual_seed(3)
    lin = GroupedLinear(16, 8, groups=groups)
    torch.testing.assert_close(lin.weight, conv.weight.reshape(8, -1), rtol=0, atol=0)
    torch.testing.assert_close(lin.bias, conv.bias, rtol=0, atol=0)
    if groups == 1:
        torch.manual_seed(3)
        ref = torch.nn.Linear(16, 8)
        torch.testing.assert_close(lin.weight, ref.weight, rtol=0, atol=0)
    bound = 1 / math.sqrt(16 // groups)  # fan_in = in_channels // groups
    before = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.fill_(100.0)
        lin.bias.fill_(100.0)
    lin.reset_parameters()
    assert lin.weight.abs().max() <= bound and lin.bias.abs().max() <= bound
    assert not torch.equal(lin.weight, before)  # fresh draws


def test_repr_and_parameters():
    lin = GroupedLinear(16, 8, groups=4, bias=False)
    assert repr(lin) == "GroupedLinear(16, 8, groups=4, bias=False)"
    assert repr(GroupedLinear(4, 2)) == "GroupedLinear(4, 2, groups=1, bias=True)"
    assert lin.bias is None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    assert lin.weight.shape == (8, 4)


@pytest.mark.parametrize("groups", [1, 2])
def test_gradcheck_float64(groups):
    torch.manual_seed(0)
    lin = GroupedLinear(6, 4, groups=groups).double()
    x = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)

    def fn(x, weight, bias):
        return torch.func.functional_call(lin, {"weight": weight, "bias": bias}, (x,))

    weight = lin.weight.detach().clone().requires_grad_()
    bias = lin.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(fn, (x, weight, bias))


def test_matches_block_diagonal_matrix():
    # an independent formulation: one dense matrix with zero blocks off the diagonal
    torch.manual_seed(0)
    lin = GroupedLinear(12, 9, groups=3)
    dense = torch.block_diag(*lin.weight.detach().split(3, dim=0))
    x = torch.randn(7, 12)
    torch.testing.assert_close(lin(x), F.linear(x, dense, lin.bias.detach()))
