import numpy as np
import pytest
import torch
from torch_geometric import EdgeIndex

from gnn_audio.graph import knn, knn_graph

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
        ei = knn_graph(x, 4, batch, dilation=dilation, normalize=True, loop=loop,
                       backend=backend)
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
    ei = knn(x, y, 5, bx, by, dilation=2, backend=backend)
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
    ei = knn_graph(x, 3, b, pos=pos, pos_scale=0.7, normalize=True, backend=backend, loop=True)
    ref = brute_force(x, x, b.numpy(), b.numpy(), 3, 1, True, True,
                      pos=(pos.double().numpy(), pos.double().numpy()), scale=0.7)
    assert edge_sets(ei, 60) == ref


def test_backends_agree_on_larger_inputs():
    torch.manual_seed(2)
    b = batch_of([300, 300, 300])
    x = torch.randn(900, 80)
    dense = knn_graph(x, 9, b, dilation=2, normalize=True, loop=True, backend="dense")
    clus = knn_graph(x, 9, b, dilation=2, normalize=True, loop=True, backend="cluster")
    assert torch.equal(dense.as_tensor(), clus.as_tensor())


def test_stochastic_dilation_only_in_training():
    torch.manual_seed(3)
    x = torch.randn(64, 8)
    kw = dict(dilation=3, stochastic=True, epsilon=1.0, loop=True)
    full = edge_sets(knn_graph(x, 9 * 3, **{**kw, "dilation": 1}), 64)  # the k*d nearest
    plain = edge_sets(knn_graph(x, 9, **{**kw, "stochastic": False}), 64)
    g = torch.Generator().manual_seed(0)
    train = knn_graph(x, 9, training=True, generator=g, **kw)
    evaluation = edge_sets(knn_graph(x, 9, training=False, **kw), 64)
    assert evaluation == plain
    sets = edge_sets(train, 64)
    assert all(len(s) == 9 and s <= f for s, f in zip(sets, full))
    assert sets != plain
    never = knn_graph(x, 9, training=True, **{**kw, "epsilon": 0.0})
    assert edge_sets(never, 64) == plain


def test_argument_validation():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError):
        knn(x, x, 0)
    with pytest.raises(ValueError):
        knn(x, x, 3, backend="faiss")
    with pytest.raises(ValueError):
        knn(x, x, 3, torch.zeros(10, dtype=torch.long), None)
