import numpy as np
import pytest
import torch

from gnn_audio.graph import GridKnnGraph, grid_knn_graph


def np_sincos_2d(h, w, dim):
    """MAE-style 2-D sin-cos embedding, written independently in numpy."""
    def one(pos, d):
        omega = 1.0 / 10000 ** (np.arange(d // 2) / (d / 2.0))
        out = np.outer(pos, omega)
        return np.concatenate([np.sin(out), np.cos(out)], 1)
    return np.concatenate([one(h, dim // 2), one(w, dim // 2)], 1)


def np_reference(x, k, dilation, r, relative_pos):
    """Brute-force Pyramid ViG neighbours for one sample x [C, H, W] (numpy)."""
    c, hgt, wid = x.shape
    nodes = x.reshape(c, -1).T
    hk, wk = -(-hgt // r), -(-wid // r)
    keys = np.zeros((hk * wk, c))
    kh, kw = np.zeros(hk * wk), np.zeros(hk * wk)
    for a in range(hk):
        for b in range(wk):
            rows, cols = range(a * r, min(hgt, a * r + r)), range(b * r, min(wid, b * r + r))
            keys[a * wk + b] = x[:, a * r:a * r + r, b * r:b * r + r].reshape(c, -1).mean(1)
            kh[a * wk + b], kw[a * wk + b] = np.mean(rows), np.mean(cols)
    nodes = nodes / np.linalg.norm(nodes, axis=1, keepdims=True)
    keys = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    dist = ((nodes[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    if relative_pos:
        qh, qw = np.divmod(np.arange(hgt * wid), wid)
        eq, ek = np_sincos_2d(qh, qw, c), np_sincos_2d(kh, kw, c)
        dist = dist - 2.0 / c * eq @ ek.T  # Pyramid ViG: + relative_pos = -(2/D) e_i.e_j
    order = np.argsort(dist, axis=1, kind="stable")[:, :k * dilation][:, ::dilation]
    return [set(row.tolist()) for row in order]


@pytest.mark.parametrize("backend", ["dense", "cluster"])
@pytest.mark.parametrize("r,relative_pos,dilation", [(1, False, 1), (1, True, 2), (2, True, 1),
                                                     (4, True, 2), (4, False, 3), (3, True, 1)])
@pytest.mark.parametrize("grid", [(8, 16), (6, 10)])
def test_grid_graph_matches_brute_force(backend, r, relative_pos, dilation, grid):
    torch.manual_seed(0)
    x = torch.randn(3, 16, *grid, dtype=torch.float64)
    nodes, keys, ei = grid_knn_graph(x, 4, dilation=dilation, reduce_ratio=r,
                                     relative_pos=relative_pos, backend=backend)
    n = grid[0] * grid[1]
    m = keys.size(0) // 3
    assert nodes.shape == (3 * n, 16) and ei.sparse_size() == (3 * m, 3 * n)
    assert (keys is nodes) == (r == 1)
    assert torch.equal(ei[0] // m, ei[1] // n)  # keys of the node's own sample only
    got = [set() for _ in range(3 * n)]
    for s, d in zip(ei[0].tolist(), ei[1].tolist()):
        got[d].add(s - (d // n) * m)
    for b in range(3):
        assert got[b * n:(b + 1) * n] == np_reference(x[b].numpy(), 4, dilation, r, relative_pos)


def test_relative_position_pulls_neighbours_closer():
    torch.manual_seed(1)
    x = torch.randn(1, 32, 16, 16)
    _, _, plain = grid_knn_graph(x, 9)
    _, _, rel = grid_knn_graph(x, 9, relative_pos=True)

    def mean_offset(ei):
        s, d = ei[0], ei[1]
        return ((s // 16 - d // 16).abs() + (s % 16 - d % 16).abs()).float().mean()

    assert mean_offset(rel) < 0.85 * mean_offset(plain)  # measured: 7.1 vs 9.3 cells


def test_module_follows_training_mode():
    torch.manual_seed(2)
    graph = GridKnnGraph(k=4, dilation=3, stochastic=True, epsilon=1.0)
    x = torch.randn(2, 8, 6, 6)
    graph.eval()
    _, _, a = graph(x)
    _, _, b = graph(x)
    assert torch.equal(a.as_tensor(), b.as_tensor())
    graph.train()
    outs = {tuple(graph(x)[2][0, :40].tolist()) for _ in range(5)}
    assert len(outs) > 1
    assert "reduce_ratio=1" in repr(graph)


def test_channels_last_nodes_are_views():
    x = torch.randn(2, 8, 4, 6).contiguous(memory_format=torch.channels_last)
    nodes, _, _ = grid_knn_graph(x, 3)
    assert nodes.data_ptr() == x.data_ptr()
