import numpy as np
import pytest
import torch

from gnn_audio.graph import GridKnnGraph, KnnConfig, NeighborIndex, grid_knn_graph


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
    nodes, keys, graph = grid_knn_graph(x, 4, dilation=dilation, reduce_ratio=r,
                                        relative_pos=relative_pos, backend=backend)
    n = grid[0] * grid[1]
    m = keys.size(0) // 3
    k_eff = min(4, -(-min(4 * dilation, m) // dilation))  # fewer keys than k * dilation
    assert isinstance(graph, NeighborIndex) and graph.index.shape == (3 * n, k_eff)
    ei = graph.to_edge_index()
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

    def mean_offset(graph):
        ei = graph.to_edge_index()
        s, d = ei[0], ei[1]
        return ((s // 16 - d // 16).abs() + (s % 16 - d % 16).abs()).float().mean()

    assert mean_offset(rel) < 0.85 * mean_offset(plain)  # measured: 7.1 vs 9.3 cells


def test_module_follows_training_mode():
    torch.manual_seed(2)
    graph = GridKnnGraph(KnnConfig(k=4, dilation=3, stochastic=True, epsilon=1.0))
    x = torch.randn(2, 8, 6, 6)
    graph.eval()
    _, _, a = graph(x)
    _, _, b = graph(x)
    assert torch.equal(a.index, b.index)
    graph.train()
    outs = {tuple(graph(x)[2].index[:5].flatten().tolist()) for _ in range(5)}
    assert len(outs) > 1
    assert "reduce_ratio=1" in repr(graph)


def test_channels_last_nodes_are_views():
    x = torch.randn(2, 8, 4, 6).contiguous(memory_format=torch.channels_last)
    nodes, _, _ = grid_knn_graph(x, 3)
    assert nodes.data_ptr() == x.data_ptr()


def np_reference_table(n, r, dim):
    """The reference code's relative-position table, written from its description in numpy
    (MAE sin-cos on a square int(sqrt(n)) grid, meshgrid(w, h), 2 P P^T / D, float32), then
    resized bicubically to (n, n // r^2) and negated."""
    side = int(n ** 0.5)
    gw, gh = np.meshgrid(np.arange(side, dtype=np.float32), np.arange(side, dtype=np.float32))

    def one(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    emb = np.concatenate([one(dim // 2, gw), one(dim // 2, gh)], axis=1)
    table = torch.from_numpy(np.float32(2 * emb @ emb.T / dim))[None, None]
    return -torch.nn.functional.interpolate(table, size=(n, n // (r * r)), mode="bicubic",
                                            align_corners=False)[0, 0]


@pytest.mark.parametrize("grid,r", [((8, 16), 2), ((8, 8), 1), ((12, 8), 4)])
def test_reference_relative_pos_reproduces_the_reference_graph(grid, r):
    from gnn_audio.graph.position import reference_position_term

    torch.manual_seed(5)
    c = 16
    table = np_reference_table(grid[0] * grid[1], r, c)
    torch.testing.assert_close(reference_position_term(*grid, c, r), table)
    x = torch.randn(2, c, *grid)
    cfg = KnnConfig(k=4, reduce_ratio=r, relative_pos="reference")
    graph = GridKnnGraph(cfg, grid=grid, channels=c)
    assert graph.pos_term is not None and "pos_term" not in graph.state_dict()
    _, keys, nbr = graph(x)
    # brute force with the table: normalised nodes vs normalised floor-pooled keys
    pooled = torch.nn.functional.avg_pool2d(x, r, r) if r > 1 else x
    for b in range(2):
        q = torch.nn.functional.normalize(x[b].flatten(1).t(), dim=1)
        k = torch.nn.functional.normalize(pooled[b].flatten(1).t(), dim=1)
        dist = torch.cdist(q, k) ** 2 + table
        want = dist.topk(4, largest=False).indices.sort(1).values
        m = k.size(0)
        got = (nbr.index[b * q.size(0):(b + 1) * q.size(0)] - b * m).sort(1).values
        assert torch.equal(got, want)
    with pytest.raises(ValueError, match="dense"):
        KnnConfig(relative_pos="reference", backend="cluster")


def test_knn_config_validates_and_round_trips():
    cfg = KnnConfig(k=5, dilation=2, relative_pos=True)
    assert cfg.relative_pos == "sincos" and cfg.num_candidates == 10
    assert KnnConfig.from_dict(cfg.to_dict()) == cfg
    assert KnnConfig.coerce(7).k == 7 and KnnConfig.coerce({"k": 3}).k == 3
    assert KnnConfig.coerce(None, relative_pos="sincos").relative_pos == "sincos"
    for bad in (dict(k=0), dict(dilation=-1), dict(epsilon=2.0), dict(backend="faiss"),
                dict(relative_pos="learned"), dict(k=2.5)):
        with pytest.raises(ValueError):
            KnnConfig(**bad)
    with pytest.raises(ValueError, match="auto"):
        KnnConfig(backend="auto")
    with pytest.raises(ValueError, match="unknown"):
        KnnConfig.from_dict({"kk": 3})
    with pytest.raises(TypeError):
        KnnConfig.coerce("9")


def test_reference_equals_sincos_where_the_reference_table_needs_no_resizing():
    """On a square grid with r = 1 the reference table is exactly the sin-cos term: the two
    modes then build the same graph (they differ on 32 x 256 spectrogram grids, where the
    reference resizes a square table along the flattened index)."""
    torch.manual_seed(6)
    x = torch.randn(2, 16, 12, 12)
    a = GridKnnGraph(KnnConfig(k=6, relative_pos="sincos"), grid=(12, 12), channels=16)(x)[2]
    b = GridKnnGraph(KnnConfig(k=6, relative_pos="reference"), grid=(12, 12), channels=16)(x)[2]
    assert torch.equal(a.index.sort(1).values, b.index.sort(1).values)


def test_reference_relative_pos_on_grids_the_reference_code_cannot_take():
    """A grid that r does not divide (the reference code would fail): partial border key
    cells, the reference table resized bicubically to (nodes, keys), as for other sizes."""
    from gnn_audio.graph.position import reference_position_term

    term = reference_position_term(6, 10, 16, 4)
    assert term.shape == (60, 2 * 3) and torch.isfinite(term).all()
    graph = GridKnnGraph(KnnConfig(k=3, reduce_ratio=4, relative_pos="reference"),
                         grid=(6, 10), channels=16)
    _, keys, nbr = graph(torch.randn(2, 16, 6, 10))
    assert keys.shape == (2 * 6, 16) and nbr.index.shape == (2 * 60, 3)
    assert bool((nbr.index // 6 == torch.arange(2).repeat_interleave(60)[:, None]).all())
