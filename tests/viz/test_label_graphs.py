"""The learned LLG adjacency next to the co-occurrence graph."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn_audio.labels import cooccurrence_adjacency
from gnn_audio.viz import (compare_label_graphs, label_graphs_file, llg_adjacency,
                           plot_label_graphs, strongest_pairs)

from .conftest import LABELS, assert_png


def _targets(n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(n, 5)) < 0.25
    y[:, 1] |= y[:, 0]  # Cat whenever Dog_bark
    return y.astype(np.float32)


def test_llg_adjacency_of_the_blocks(tiny_model):
    mats = [b.llg.adjacency_matrix().detach() for s in tiny_model.mlg_stages for b in s]
    assert len(mats) == 6
    assert torch.allclose(llg_adjacency(tiny_model), torch.stack(mats).mean(0))
    assert torch.equal(llg_adjacency(tiny_model, "last"), mats[-1])
    assert torch.equal(llg_adjacency(tiny_model, 2), mats[2])
    with pytest.raises(ValueError, match="blocks must be 'mean', 'last' or an MLG block index "
                                         "0-5"):
        llg_adjacency(tiny_model, 6)


def test_strongest_pairs_and_comparison():
    a = torch.tensor([[5.0, 0.1, 0.7], [0.9, 5.0, -0.2], [0.3, 0.0, 5.0]])
    assert strongest_pairs(a, 2) == [(1, 0, pytest.approx(0.9)), (0, 2, pytest.approx(0.7))]
    same = compare_label_graphs(a, a * 2 + 1, top_k=3)
    assert same["pearson"] == pytest.approx(1.0) and same["spearman"] == pytest.approx(1.0)
    assert same["shared_top_pairs"] == 3
    flipped = compare_label_graphs(a, -a, top_k=2)
    assert flipped["pearson"] == pytest.approx(-1.0) and flipped["shared_top_pairs"] == 0


def test_plot_writes_a_png(tiny_model, tmp_path):
    cooc = cooccurrence_adjacency(_targets())
    out = plot_label_graphs(llg_adjacency(tiny_model), cooc, LABELS, tmp_path / "g.png",
                            top_k=4, dpi=40)
    assert out == tmp_path / "g.png"
    assert_png(out)
    with pytest.raises(ValueError, match=r"cooccurrence adjacency must be \[5, 5\]"):
        plot_label_graphs(torch.zeros(5, 5), torch.zeros(4, 4), LABELS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="learned adjacency holds NaN"):
        plot_label_graphs(torch.full((5, 5), float("nan")), cooc, LABELS, tmp_path / "x.png")


def test_many_labels_show_those_of_the_strongest_pairs(tmp_path):
    s = 60
    names = [f"label {i}" for i in range(s)]
    g = torch.Generator().manual_seed(0)
    out = plot_label_graphs(torch.randn(s, s, generator=g), torch.rand(s, s, generator=g),
                            names, tmp_path / "many.png", top_k=5, dpi=30)
    assert_png(out)


def test_label_graphs_of_a_checkpoint(tiny_checkpoint, tmp_path):
    out = label_graphs_file(tiny_checkpoint, _targets(), tmp_path / "ck.png", blocks="last",
                            top_k=5, dpi=40)
    assert_png(out)
    with pytest.raises(ValueError, match=r"train targets must be \[clips, 5\]"):
        label_graphs_file(tiny_checkpoint, _targets()[:, :3], tmp_path / "x.png")
