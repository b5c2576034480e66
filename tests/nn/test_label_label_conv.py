import pytest
import torch

from gnn_audio.nn import LabelLabelConv


def dense_reference(adj, x, num_labels):
    """L_hat = A L + L for each sample."""
    out = []
    for sample in x.view(-1, num_labels, x.size(-1)):
        out.append(adj @ sample + sample)
    return torch.cat(out)


@pytest.mark.parametrize("adjacency", [None, "softmax", "tanh"])
def test_matches_dense_reference(adjacency):
    torch.manual_seed(0)
    conv = LabelLabelConv(7, adjacency=adjacency)
    x = torch.randn(3 * 7, 5)
    ref = dense_reference(conv.adjacency_matrix(), x, 7)
    torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=0)
    # the same through PyG's unfused message passing over the explicit complete graph
    graph = conv.complete_graph(3, x.device)
    torch.testing.assert_close(conv(x, edge_index=graph.as_tensor()), ref, atol=1e-5, rtol=0)
    assert graph.size(1) == 3 * 7 * 7
    assert torch.equal(graph[0] // 7, graph[1] // 7)  # complete per sample, never across


def test_adjacency_modes_are_bounded():
    conv = LabelLabelConv(10, adjacency="softmax")
    with torch.no_grad():
        conv.weight.mul_(1000)
    a = conv.adjacency_matrix()
    torch.testing.assert_close(a.sum(1), torch.ones(10))
    conv = LabelLabelConv(10, adjacency="tanh")
    with torch.no_grad():
        conv.weight.mul_(1000)
    assert conv.adjacency_matrix().abs().sum(1).max() <= 1 + 1e-6
    paper = LabelLabelConv(10)
    bound = 1 / 10 ** 0.5
    assert paper.weight.abs().max() <= bound and paper.weight.std() > 0.1 * bound
    with pytest.raises(ValueError):
        LabelLabelConv(10, adjacency="sigmoid")


def test_gradcheck_float64():
    torch.manual_seed(1)
    for adjacency in (None, "softmax"):
        conv = LabelLabelConv(4, adjacency=adjacency).double()
        x = torch.randn(8, 3, dtype=torch.double, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: conv(t), (x,))
        assert torch.autograd.gradcheck(lambda w: torch.func.functional_call(
            conv, {"weight": w}, (x,)), (conv.weight.detach().clone().requires_grad_(),))


def test_custom_graph_and_validation():
    conv = LabelLabelConv(3)
    x = torch.randn(6, 2)
    # only self-loops: A_ii x_i + x_i
    loops = torch.arange(6).repeat(2, 1)
    expected = conv.weight.diagonal().repeat(2)[:, None] * x + x
    torch.testing.assert_close(conv(x, edge_index=loops), expected)
    with pytest.raises(ValueError):
        conv(torch.randn(7, 2))
    assert str(conv) == "LabelLabelConv(3, adjacency=None)"


def test_torch_compile():
    conv = LabelLabelConv(5, adjacency="softmax")
    x = torch.randn(10, 4)
    torch.testing.assert_close(torch.compile(conv)(x), conv(x))
