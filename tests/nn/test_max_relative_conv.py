import pytest
import torch
from torch_geometric import EdgeIndex
from torch_geometric.testing import assert_module
from torch_geometric.utils import to_torch_csc_tensor

from gnn_audio.graph import NeighborIndex, knn_graph, knn_index
from gnn_audio.nn import MaxRelativeConv


def dense_max_relative(x_src, x_dst, edge_index):
    """Reference: m_i = max_{j -> i} (x_src[j] - x_dst[i]) over a dense adjacency mask,
    0 for targets without sources."""
    adj = torch.zeros(x_dst.size(0), x_src.size(0), dtype=torch.bool)
    adj[edge_index[1], edge_index[0]] = True
    diff = x_src[None, :, :] - x_dst[:, None, :]
    diff = diff.masked_fill(~adj[:, :, None], float("-inf"))
    m = diff.max(dim=1).values
    return torch.where(adj.any(1, keepdim=True), m, torch.zeros_like(m))


def random_graph(num_src, num_dst, max_deg, isolated=(), seed=0):
    """Random in-degrees 0..max_deg (distinct sources), some targets forced isolated."""
    g = torch.Generator().manual_seed(seed)
    src, dst = [], []
    for i in range(num_dst):
        deg = 0 if i in isolated else int(torch.randint(1, max_deg + 1, (1,), generator=g))
        nbrs = torch.randperm(num_src, generator=g)[:deg]
        src.append(nbrs)
        dst.append(torch.full((deg,), i))
    return torch.stack([torch.cat(src), torch.cat(dst)])


def test_shapes_and_repr():
    x = torch.randn(10, 8)
    edge_index = random_graph(10, 10, 4)
    conv = MaxRelativeConv(8, 32)
    assert str(conv) == "MaxRelativeConv(8, 32, groups=1, norm=None, act=None, concat=cat)"
    out = assert_module(conv, x, edge_index, expected_size=(10, 32),
                        test_sparse_layouts=[torch.sparse_csc, torch.sparse_coo, "torch_sparse"],
                        atol=1e-6)
    vig = MaxRelativeConv(8, 16, groups=4, norm="batch", act="gelu", concat="interleave")
    assert str(vig) == ("MaxRelativeConv(8, 16, groups=4, norm=batch, act=gelu, "
                        "concat=interleave)")
    assert vig(x, edge_index).shape == (10, 16)
    assert out.shape == (10, 32)


@pytest.mark.parametrize("concat", ["cat", "interleave"])
def test_matches_dense_reference_on_random_graphs(concat):
    torch.manual_seed(1)
    x = torch.randn(40, 12)
    edge_index = random_graph(40, 40, 7, isolated=(3, 17, 39))
    conv = MaxRelativeConv(12, 12, nn=torch.nn.Identity(), concat=concat)
    m = dense_max_relative(x, x, edge_index)
    expected = torch.cat([x, m], 1) if concat == "cat" else torch.stack([x, m], -1).flatten(1)
    for adj in (edge_index,                                              # PyG scatter path
                EdgeIndex(edge_index).sort_by("col")[0],                # fused, irregular CSR
                to_torch_csc_tensor(edge_index, size=(40, 40)).t()):    # sparse adjacency
        torch.testing.assert_close(conv(x, adj), expected, atol=1e-5, rtol=0)
    out = conv(x, edge_index)
    m_part = out[:, 12:] if concat == "cat" else out[:, 1::2]
    assert torch.all(m_part[[3, 17, 39]] == 0) and torch.all(m_part.abs().sum(1)[[0, 1, 2]] > 0)


def test_bipartite_and_batched_knn_graphs():
    torch.manual_seed(2)
    x_src, x_dst = torch.randn(30, 6), torch.randn(20, 6)
    edge_index = random_graph(30, 20, 5, isolated=(0,))
    conv = MaxRelativeConv(6, 9)
    out = conv((x_src, x_dst), edge_index)
    expected = conv.nn(torch.cat([x_dst, dense_max_relative(x_src, x_dst, edge_index)], 1))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    # several graphs in one batch, regular kNN in-degree -> fused gather-max path
    batch = torch.tensor([0] * 25 + [1] * 15 + [2] * 10)
    x = torch.randn(50, 6)
    knn = knn_graph(x, 4, batch, loop=True)
    assert isinstance(knn, EdgeIndex) and knn.is_sorted_by_col
    expected = conv.nn(torch.cat([x, dense_max_relative(x, x, knn.as_tensor())], 1))
    torch.testing.assert_close(conv(x, knn), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(conv(x, knn.as_tensor()), expected, atol=1e-5, rtol=0)
    # the homogeneous call equals the bipartite call with the same tensor twice
    torch.testing.assert_close(conv((x, x), knn), conv(x, knn))


def test_gradcheck_float64():
    torch.manual_seed(3)
    conv = MaxRelativeConv(5, 4, groups=1).double()
    x = torch.randn(12, 5, dtype=torch.double, requires_grad=True)
    irregular = random_graph(12, 12, 4, isolated=(5,))
    regular = knn_graph(x.detach(), 3, loop=False)
    for adj in (irregular, EdgeIndex(irregular).sort_by("col")[0], regular):
        assert torch.autograd.gradcheck(lambda t: conv(t, adj), (x,))
    x_src = torch.randn(9, 5, dtype=torch.double, requires_grad=True)
    bip = EdgeIndex(random_graph(9, 12, 3), sparse_size=(9, 12)).sort_by("col")[0]
    assert torch.autograd.gradcheck(lambda a, b: conv((a, b), bip), (x_src, x))


def test_fused_regular_backward_equals_dense_reference():
    torch.manual_seed(4)
    x = torch.randn(64, 16, requires_grad=True)
    knn = knn_graph(x.detach(), 5, loop=True)
    conv = MaxRelativeConv(16, 16, nn=torch.nn.Identity())
    out = conv(x, knn)
    grad = torch.randn_like(out)
    (g_fused,) = torch.autograd.grad(out, x, grad)
    x2 = x.detach().clone().requires_grad_()
    ref = torch.cat([x2, dense_max_relative(x2, x2, knn.as_tensor())], 1)
    (g_ref,) = torch.autograd.grad(ref, x2, grad)
    torch.testing.assert_close(g_fused, g_ref, atol=1e-5, rtol=0)


def test_reset_parameters_and_groups():
    conv = MaxRelativeConv(8, 16, groups=4, norm="batch", act="gelu")
    w = conv.nn[0].weight.detach().clone()
    assert w.shape == (16, 4)  # grouped 1x1 weights, Conv2d layout
    conv.reset_parameters()
    assert not torch.equal(w, conv.nn[0].weight)
    with pytest.raises(ValueError):
        MaxRelativeConv(8, 16, concat="zip")


def test_torch_compile():
    torch.manual_seed(5)
    x = torch.randn(40, 8)
    edge_index = random_graph(40, 40, 5)
    knn = knn_graph(x, 4, loop=True)
    conv = MaxRelativeConv(8, 16)
    compiled = torch.compile(conv)
    torch.testing.assert_close(compiled(x, edge_index), conv(x, edge_index))
    torch.testing.assert_close(compiled(x, knn), conv(x, knn))


def test_neighbor_index_equals_edge_index_and_compiles_fullgraph():
    torch.manual_seed(6)
    x = torch.randn(3, 20, 8)  # three equally sized samples
    graph = knn_index(x, x, 4, normalize=True)
    assert isinstance(graph, NeighborIndex) and graph.index.shape == (60, 4)
    assert graph.num_src == 60 and graph.k == 4
    flat = x.reshape(60, 8)
    conv = MaxRelativeConv(8, 16, groups=2, norm="batch", act="gelu").eval()
    expected = conv(flat, graph.to_edge_index())
    torch.testing.assert_close(conv(flat, graph), expected)
    expected_plain = conv(flat, graph.to_edge_index().as_tensor())  # PyG's message path
    torch.testing.assert_close(conv(flat, graph), expected_plain)
    compiled = torch.compile(conv, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(flat, graph), expected)
    # explain mode sees per-edge messages through propagate
    conv.explain = True
    conv._edge_mask, conv._apply_sigmoid = torch.ones(graph.index.numel()), False
    torch.testing.assert_close(conv(flat, graph), expected)
    conv.explain = False


def test_only_max_aggregation():
    for aggr in ("mean", "add", "min"):
        with pytest.raises(ValueError, match="max aggregation"):
            MaxRelativeConv(8, 8, aggr=aggr)
    assert MaxRelativeConv(8, 8, aggr="max").aggr == "max"
