import numpy as np
import pytest
import torch

from gnn_audio.graph import KnnConfig, NeighborIndex
from gnn_audio.nn import PatchLabelConv


def brute_force_label_neighbours(x_patch, x_label, b_patch, b_label, k):
    """Reference kNN in numpy: for each label, the k patches of its sample nearest in
    Euclidean distance of L2-normalised features."""
    xp = x_patch.detach().double().numpy()
    xl = x_label.detach().double().numpy()
    xp = xp / np.linalg.norm(xp, axis=1, keepdims=True)
    xl = xl / np.linalg.norm(xl, axis=1, keepdims=True)
    out = []
    for i in range(len(xl)):
        cand = np.flatnonzero(b_patch.numpy() == int(b_label[i]))
        d = ((xp[cand] - xl[i]) ** 2).sum(1)
        out.append(cand[np.argsort(d, kind="stable")[:k]])
    return out


def dense_reference(conv, x_patch, x_label, b_patch, b_label, k):
    nbrs = brute_force_label_neighbours(x_patch, x_label, b_patch, b_label, k)
    m = torch.stack([(x_label[i][None] - x_patch[torch.as_tensor(n)]).max(0).values
                     for i, n in enumerate(nbrs)])
    h_in = (torch.cat([x_label, m], 1) if conv.concat == "cat"
            else torch.stack([x_label, m], -1).flatten(1))
    return x_label + conv.nn(h_in)


@pytest.mark.parametrize("backend", ["dense", "cluster"])
@pytest.mark.parametrize("concat", ["cat", "interleave"])
def test_matches_dense_reference_several_samples(backend, concat):
    torch.manual_seed(0)
    sizes_patch, sizes_label = [30, 12, 21], [5, 5, 5]
    b_patch = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes_patch))
    b_label = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes_label))
    x_patch, x_label = torch.randn(63, 16), torch.randn(15, 16)
    conv = PatchLabelConv(16, KnnConfig(k=4, backend=backend), concat=concat)
    out = conv((x_patch, x_label), batch=(b_patch, b_label))
    ref = dense_reference(conv, x_patch, x_label, b_patch, b_label, 4)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    graph = conv.build_graph((x_patch, x_label), (b_patch, b_label))
    assert torch.equal(b_patch[graph[0]], b_label[graph[1]])  # never across samples


def test_single_sample_sign_and_residual():
    torch.manual_seed(1)
    x_patch, x_label = torch.randn(20, 8), torch.randn(3, 8)
    conv = PatchLabelConv(8, knn=20, nn=torch.nn.Identity(), residual=False)
    out = conv((x_patch, x_label))
    # with every patch a neighbour, the max-relative term is l_i - min_j x_j (label minus patch)
    torch.testing.assert_close(out[:, 8:], x_label - x_patch.min(0).values)
    h = torch.nn.Linear(16, 8)
    conv_res = PatchLabelConv(8, knn=20, nn=h)
    conv_plain = PatchLabelConv(8, knn=20, nn=h, residual=False)  # (re-initialises the shared h)
    with_res, without = conv_res((x_patch, x_label)), conv_plain((x_patch, x_label))
    torch.testing.assert_close(with_res, x_label + without)
    assert str(PatchLabelConv(8)) == ("PatchLabelConv(8, k=9, groups=1, norm=None, act=None, "
                                      "concat=cat, residual=True)")


def test_fewer_patches_than_k():
    x_patch, x_label = torch.randn(4, 8), torch.randn(2, 8)
    conv = PatchLabelConv(8, knn=9, nn=torch.nn.Identity(), residual=False)
    out = conv((x_patch, x_label))
    torch.testing.assert_close(out[:, 8:], x_label - x_patch.min(0).values)


def test_gradcheck_float64():
    torch.manual_seed(2)
    conv = PatchLabelConv(6, knn=3, groups=2).double()
    x_patch = torch.randn(14, 6, dtype=torch.double, requires_grad=True)
    x_label = torch.randn(4, 6, dtype=torch.double, requires_grad=True)
    b_patch = torch.tensor([0] * 8 + [1] * 6)
    b_label = torch.tensor([0, 0, 1, 1])
    assert torch.autograd.gradcheck(lambda p, q: conv((p, q), (b_patch, b_label)),
                                    (x_patch, x_label))


def test_reuses_a_given_graph():
    torch.manual_seed(3)
    x_patch, x_label = torch.randn(20, 8), torch.randn(3, 8)
    conv = PatchLabelConv(8, knn=5)
    graph = conv.build_graph((x_patch, x_label))
    torch.testing.assert_close(conv((x_patch, x_label), edge_index=graph),
                               conv((x_patch, x_label)))
    torch.testing.assert_close(
        conv((x_patch, x_label), edge_index=graph.to_edge_index().as_tensor()),
        conv((x_patch, x_label)))


def test_equal_samples_fixed_shape_path_equals_general_path():
    torch.manual_seed(5)
    x_patch, x_label = torch.randn(3 * 20, 8), torch.randn(3 * 4, 8)
    b_patch = torch.arange(3).repeat_interleave(20)
    b_label = torch.arange(3).repeat_interleave(4)
    conv = PatchLabelConv(8, knn=5, groups=2)
    graph = conv.build_graph((x_patch, x_label), batch_size=3)
    assert isinstance(graph, NeighborIndex) and graph.index.shape == (12, 5)
    assert torch.equal(b_patch[graph.index], b_label[:, None].expand(-1, 5))
    torch.testing.assert_close(conv((x_patch, x_label), batch_size=3),
                               conv((x_patch, x_label), (b_patch, b_label)))
    with pytest.raises(ValueError, match="equal samples"):
        conv((x_patch[:-1], x_label), batch_size=3)
    with pytest.raises(ValueError, match="no grid"):
        PatchLabelConv(8, KnnConfig(relative_pos="sincos"))


def test_torch_compile():
    torch.manual_seed(4)
    x_patch, x_label = torch.randn(30, 8), torch.randn(6, 8)
    b_patch = torch.tensor([0] * 15 + [1] * 15)
    b_label = torch.tensor([0] * 3 + [1] * 3)
    conv = PatchLabelConv(8, knn=4, groups=2, norm="batch", act="gelu").eval()
    compiled = torch.compile(conv)
    torch.testing.assert_close(compiled((x_patch, x_label), (b_patch, b_label)),
                               conv((x_patch, x_label), (b_patch, b_label)))
