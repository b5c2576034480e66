import numpy as np
import pytest
import torch
from torch_geometric import EdgeIndex

from gnn_audio.graph import KnnConfig, knn, knn_graph, knn_index

BACKENDS = ["dense", "cluster"]


def brute_force(x, y, bx, by, k, dilation=1, normalize=False, loop=True, pos=None, scale=1.0):
    """Reference neighbour sets in numpy: per target, sort the sources of its sample by
    squared distance (with optional appended positions), take k*d, keep every d-th."""
    x, y = x.double().numpy(), y.double().numpy()
    if normalize:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        y = y / np.linalg.norm(y, axis=1, keepdims=True)
    if pos is not None:
        x = np.concatenate([x, scale * pos[0]], 1)
        y = np.concatenate([y, scale * pos[1]], 1)
    sets = []
    for i in range(len(y)):
        cand = np.flatnonzero(bx == by[i])
        if not loop:
            cand = cand[cand != i]
        d = ((x[cand] - y[i]) ** 2).sum(1)
        order = cand[np.argsort(d, kind="stable")][:k * dilation]
        sets.append(set(order[::dilation].tolist()))
    return sets


def edge_sets(edge_index, num_targets):
    src, dst = edge_index[0].tolist(), edge_index[1].tolist()
    sets = [set() for _ in range(num_targets)]
    for s, d in zip(src, dst):
        sets[d].add(s)
    return sets


def batch_of(sizes):
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_knn_graph_matches_brute_force(backend, dilation):
    torch.manual_seed(dilation)
    sizes = [40, 7, 23, 31]  # different sample sizes, one smaller than k * dilation
    batch = batch_of(sizes)
    x = torch.randn(sum(sizes), 16)
    for loop in (True, False):
        ei = knn_graph(x, KnnConfig(k=4, dilation=dilation, backend=backend), batch, loop=loop)
        assert isinstance(ei, EdgeIndex) and ei.is_sorted_by_col
        assert torch.equal(batch[ei[0]], batch[ei[1]])  # no cross-sample edge
        ref = brute_force(x, x, batch.numpy(), batch.numpy(), 4, dilation, True, loop)
        assert edge_sets(ei, len(x)) == ref
        if not loop:
            assert not bool((ei[0] == ei[1]).any())


@pytest.mark.parametrize("backend", BACKENDS)
def test_bipartite_knn_matches_brute_force(backend):
    torch.manual_seed(0)
    bx, by = batch_of([50, 20, 33]), batch_of([9, 4, 12])
    x, y = torch.randn(103, 24), torch.randn(25, 24)
    ei = knn(x, y, KnnConfig(k=5, dilation=2, normalize=False, backend=backend), bx, by)
    assert ei.sparse_size() == (103, 25)
    assert torch.equal(bx[ei[0]], by[ei[1]])
    assert edge_sets(ei, 25) == brute_force(x, y, bx.numpy(), by.numpy(), 5, 2)
    # within every target, neighbours come ordered by distance
    d = (x[ei[0]] - y[ei[1]]).pow(2).sum(1).view(25, 5)
    assert bool((d[:, 1:] >= d[:, :-1]).all())


@pytest.mark.parametrize("backend", BACKENDS)
def test_appended_positions_match_brute_force(backend):
    torch.manual_seed(1)
    b = batch_of([30, 30])
    x = torch.randn(60, 8)
    pos = torch.randn(60, 4)
    ei = knn_graph(x, KnnConfig(k=3, backend=backend), b, pos=(pos, 0.7), loop=True)
    ref = brute_force(x, x, b.numpy(), b.numpy(), 3, 1, True, True,
                      pos=(pos.double().numpy(), pos.double().numpy()), scale=0.7)
    assert edge_sets(ei, 60) == ref


def test_backends_agree_on_larger_inputs():
    torch.manual_seed(2)
    b = batch_of([300, 300, 300])
    x = torch.randn(900, 80)
    cfg = KnnConfig(k=9, dilation=2)
    dense = knn_graph(x, cfg, b, loop=True)
    clus = knn_graph(x, cfg.replace(backend="cluster"), b, loop=True)
    assert torch.equal(dense.as_tensor(), clus.as_tensor())


def test_stochastic_dilation_only_in_training():
    torch.manual_seed(3)
    x = torch.randn(64, 8)
    cfg = KnnConfig(k=9, dilation=3, stochastic=True, epsilon=1.0, normalize=False)
    full = edge_sets(knn_graph(x, cfg.replace(k=9 * 3, dilation=1), loop=True), 64)  # k*d nearest
    plain = edge_sets(knn_graph(x, cfg.replace(stochastic=False), loop=True), 64)
    g = torch.Generator().manual_seed(0)
    train = knn_graph(x, cfg, training=True, generator=g, loop=True)
    evaluation = edge_sets(knn_graph(x, cfg, training=False, loop=True), 64)
    assert evaluation == plain
    sets = edge_sets(train, 64)
    assert all(len(s) == 9 and s <= f for s, f in zip(sets, full))
    assert sets != plain
    never = knn_graph(x, cfg.replace(epsilon=0.0), training=True, loop=True)
    assert edge_sets(never, 64) == plain


def test_argument_validation():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError):
        knn(x, x, 0)
    with pytest.raises(ValueError):
        knn(x, x, KnnConfig(k=3, backend="faiss"))
    with pytest.raises(ValueError):
        knn(x, x, 3, torch.zeros(10, dtype=torch.long), None)
    with pytest.raises(ValueError, match="pos needs both"):
        knn(x, x, 3, pos=(torch.randn(10, 2), None, 1.0))
    with pytest.raises(ValueError, match="no grid"):
        knn(x, x, KnnConfig(k=3, relative_pos="sincos"))
    with pytest.raises(ValueError, match="no grid"):
        knn_graph(x, KnnConfig(k=3, reduce_ratio=2))
    with pytest.raises(TypeError):
        knn(x, x, {"k": 3})


def test_int_config_is_plain_euclidean():
    torch.manual_seed(4)
    x, b = torch.randn(50, 6) * torch.rand(50, 1), batch_of([20, 30])
    plain = knn_graph(x, KnnConfig(k=5, normalize=False), b)
    assert torch.equal(knn_graph(x, 5, b).as_tensor(), plain.as_tensor())
    assert edge_sets(plain, 50) == brute_force(x, x, b.numpy(), b.numpy(), 5, loop=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_agrees_with_knn_index(backend):
    torch.manual_seed(5)
    x, y = torch.randn(3, 40, 8), torch.randn(3, 10, 8)
    pos_x, pos_y = torch.randn(40, 4), torch.randn(10, 4)
    cfg = KnnConfig(k=4, dilation=2, backend=backend)
    fixed = knn_index(x, y, cfg.k, dilation=cfg.dilation, normalize=cfg.normalize,
                      pos=(pos_x, pos_y, 0.5) if backend == "cluster" else None,
                      backend=backend)
    general = knn(x.reshape(120, 8), y.reshape(30, 8), cfg, batch_of([40] * 3),
                  batch_of([10] * 3),
                  pos=(pos_x.repeat(3, 1), pos_y.repeat(3, 1), 0.5)
                  if backend == "cluster" else None)
    assert torch.equal(general[0].view(30, 4), fixed.index)


@pytest.mark.parametrize("m,kk,block", [(512, 9, 8), (512, 18, 4), (512, 27, 4), (256, 9, 4),
                                        (128, 9, 1), (8192, 9, 1), (500, 9, 4)])
def test_smallest_equals_topk(m, kk, block):
    """The two-step selection (kk blocks of strided columns, then kk of their columns) gives
    topk's columns, in topk's order, at the Pyramid ViG shapes where it is used."""
    from gnn_audio.graph.knn import _block_size, smallest

    assert _block_size(m, kk) == block
    dist = torch.randn(3, 257, m, dtype=torch.float64, generator=torch.Generator().manual_seed(m))
    want = dist.topk(kk, dim=-1, largest=False, sorted=True).indices
    assert torch.equal(smallest(dist, kk), want)


def test_smallest_with_ties_keeps_the_smallest_values():
    """With many equal distances any columns of equal value may be picked (as topk's own);
    the values are topk's, sorted, and the columns distinct."""
    from gnn_audio.graph.knn import smallest

    dist = torch.randint(0, 6, (64, 512), generator=torch.Generator().manual_seed(0)).float()
    idx = smallest(dist, 27)
    want = dist.topk(27, dim=-1, largest=False, sorted=True).values
    assert torch.equal(dist.gather(-1, idx), want)
    assert all(len(set(row)) == 27 for row in idx.tolist())
