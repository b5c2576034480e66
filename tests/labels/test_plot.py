import torch

from gnn_audio.labels.cooccurrence import cooccurrence_adjacency, cooccurrence_graph
from gnn_audio.labels.plot import plot_label_graph

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_a_graph_and_an_adjacency(tmp_path):
    g = torch.Generator().manual_seed(4)
    y = torch.rand(300, 8, generator=g) < 0.15
    y[:, 0] |= y[:, 1]
    names = [f"label {i}" for i in range(8)]
    data = cooccurrence_graph(y, tau=0.2, label_names=names)
    path = plot_label_graph(data, path=tmp_path / "graph.png", top_k=10)
    assert path == str(tmp_path / "graph.png")
    with open(path, "rb") as f:
        assert f.read(8) == PNG
    adj = cooccurrence_adjacency(y, tau=0.2)
    other = plot_label_graph(adj, names, tmp_path / "b.png", title="adjacency")
    with open(other, "rb") as f:
        assert f.read(8) == PNG
    # written atomically: no temporary file is left beside the images
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "graph.png"]


def test_format_follows_the_extension_and_graphs_without_edges(tmp_path):
    path = plot_label_graph(torch.eye(3), path=tmp_path / "self_loops.svg")
    text = open(path, encoding="utf-8").read()
    assert "<svg" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["self_loops.svg"]
