"""trace_graphs records the graphs an ATGNN forward used: they equal what the graph builders
return for the same features (and a brute-force search), the forward is unchanged, and the
cell geometry maps nodes back to the input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gnn_audio.graph import grid_knn_graph, knn_index
from gnn_audio.graph.position import sincos_position_term
from gnn_audio.viz.graph_trace import GridGeometry, check_atgnn, trace_graphs

from .conftest import tiny_atgnn


def _brute_force(keys: torch.Tensor, queries: torch.Tensor, k: int, dilation: int = 1,
                 bias=None) -> torch.Tensor:
    """[B, N, k'] nearest keys of L2-normalised features in float64, every dilation-th."""
    q = F.normalize(queries.double(), dim=-1)
    kk = F.normalize(keys.double(), dim=-1)
    dist = torch.cdist(q, kk) ** 2
    if bias is not None:
        dist = dist + bias.double()
    cand = dist.topk(min(k * dilation, kk.size(1)), dim=-1, largest=False).indices
    return cand[..., ::dilation][..., :k]


@pytest.fixture(scope="module")
def traced():
    # the sin-cos term: the independent brute force below computes it
    model = tiny_atgnn(seed=3, knn={"relative_pos": "sincos"})
    # 256 frames (the model was made for 64; other lengths work): stage 3 has 2 x 16 nodes,
    # enough for its dilated blocks (k = 9, dilation 2) to pick every 2nd of 18 candidates
    x = torch.randn(2, 256, 32, generator=torch.Generator().manual_seed(5))
    return model, x, trace_graphs(model, x, keep_features=True)


def test_forward_unchanged_and_mode_restored(traced):
    model, x, trace = traced
    with torch.no_grad():
        assert torch.equal(trace.logits, model.eval()(x))
    model.train()
    trace_graphs(model, x[:1])
    assert model.training  # restored
    model.eval()
    # every block of the model was recorded once, in forward order, on its stage's grid
    assert [(g.stage, g.block) for g in trace.plg] == [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2),
                                                       (3, 0)]
    assert [g.stage for g in trace.pgn] == [0, 0, 1, 1] + [2] * 6 + [3, 3]
    assert [g.grid for g in trace.stages] == [(8, 64), (4, 32), (2, 16), (1, 8)]
    assert [g.stride for g in trace.stages] == [4, 8, 16, 32]
    assert all(g.geometry == trace.stages[g.stage] for g in trace.plg + trace.pgn)
    # nothing stays hooked
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_plg_indices_equal_the_builders(traced):
    model, _, trace = traced
    for g in trace.plg:
        patches, labels = g.features
        block = model.mlg_stages[g.stage][g.block]
        k = block.plg.k
        built = knn_index(patches, labels, k, normalize=True)
        b, n = patches.shape[:2]
        local = (built.index.view(b, labels.size(1), -1)
                 - (torch.arange(b) * n).view(-1, 1, 1))
        assert torch.equal(g.index, local), (g.stage, g.block)
        assert torch.equal(g.index, _brute_force(patches, labels, k)), (g.stage, g.block)
        assert g.index.shape == (2, 5, min(k, n))
        assert int(g.index.max()) < g.geometry.num_nodes


def test_pgn_indices_equal_the_builders(traced):
    _, _, trace = traced
    checked_pooled = checked_dilated = False
    for g in trace.pgn:
        feats, cfg = g.features, g.config
        b, c, h, w = feats.shape
        _, keys, built = grid_knn_graph(feats, cfg)
        m = keys.size(0) // b
        local = built.index.view(b, h * w, -1) - (torch.arange(b) * m).view(-1, 1, 1)
        assert torch.equal(g.index, local)
        # independently: pooled keys, the sin-cos relative-position term, dilation
        r = cfg.reduce_ratio
        key_map = F.avg_pool2d(feats, r, r, ceil_mode=True, count_include_pad=False) \
            if r > 1 else feats
        hk, wk = g.geometry.key_grid(r)
        assert key_map.shape[-2:] == (hk, wk)
        bias = sincos_position_term(h, w, c, r)
        expect = _brute_force(key_map.flatten(2).transpose(1, 2),
                              feats.flatten(2).transpose(1, 2), cfg.k, cfg.dilation, bias)
        assert torch.equal(g.index, expect), (g.stage, g.block)
        checked_pooled |= r > 1
        checked_dilated |= cfg.dilation > 1 and hk * wk >= cfg.k * cfg.dilation
    assert checked_pooled and checked_dilated


def test_default_model_traces_its_builders_graphs():
    """The default pyramid model (the authors' relative-position table, defined at the
    model's design size and resized) at a length it was not made for: the traced neighbours
    are those of the model's own graph builders."""
    from gnn_audio.graph import GridKnnGraph

    model = tiny_atgnn(seed=3)
    assert model.knn_config.relative_pos == "reference"
    trace = trace_graphs(model, torch.randn(1, 256, 32), keep_features=True)
    builders = [m for m in model.modules() if isinstance(m, GridKnnGraph)]
    assert len(builders) == len(trace.pgn)
    with torch.no_grad():
        for g, builder in zip(trace.pgn, builders):
            built = builder(g.features)[2].index
            assert torch.equal(g.index, built.view(1, -1, built.size(1)))


def test_isotropic_model_is_traced():
    torch.manual_seed(0)
    from gnn_audio.zoo import create_model

    model = create_model("atgnn_iso", num_classes=3, channels=[16], blocks=[2],
                         mlg_blocks=[2], input_size=(64, 32), head_hidden=16).eval()
    trace = trace_graphs(model, torch.randn(64, 32), keep_features=True)
    assert [g.grid for g in trace.stages] == [(2, 4)] and trace.stages[0].stride == 16
    assert [g.config.k for g in trace.pgn] == [9, 18]
    for g in trace.plg:
        patches, labels = g.features
        assert torch.equal(g.index, _brute_force(patches, labels, 9))


def test_geometry_maps_nodes_to_input_rectangles():
    geo = GridGeometry(grid=(4, 13), stride=32, input_size=(400, 128))
    # node 14 = mel cell 1, time cell 1; the last time cell is cut at 400 frames
    assert geo.boxes([0, 14, 12]).tolist() == [[0, 32, 0, 32], [32, 64, 32, 64],
                                               [384, 400, 0, 32]]
    assert geo.node_at(frame=70.0, mel_bin=40.0) == 1 * 13 + 2
    fine = GridGeometry(grid=(32, 100), stride=4, input_size=(400, 128))
    assert fine.key_grid(4) == (8, 25)
    # pooled key 26 = key row 1, key column 1: 4 x 4 cells of 4 x 4 bins
    assert fine.boxes([26], reduce_ratio=4).tolist() == [[16, 32, 16, 32]]
    odd = GridGeometry(grid=(5, 7), stride=4, input_size=(28, 20))
    assert odd.key_grid(2) == (3, 4) and odd.key_grid(2, partial_cells=False) == (2, 3)
    assert odd.boxes([11], reduce_ratio=2).tolist() == [[24, 28, 16, 20]]


def test_only_atgnn_models_are_traced():
    with pytest.raises(ValueError, match="not an ATGNN model"):
        trace_graphs(torch.nn.Linear(3, 3), torch.randn(1, 64, 32))
    from gnn_audio.zoo import create_model

    nomlg = create_model("atgnn_pyr_t_nomlg", num_classes=3, channels=[8, 16, 24, 32],
                         input_size=(64, 32))
    with pytest.raises(ValueError, match="has no MLG blocks"):
        check_atgnn(nomlg, need_mlg=True)
    assert trace_graphs(nomlg, torch.randn(64, 32)).plg == []
