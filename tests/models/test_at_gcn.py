import time

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

from gnn_audio.labels.cooccurrence import cooccurrence_adjacency
from gnn_audio.labels.glove import hashed_gaussian
from gnn_audio.metrics import mean_average_precision
from gnn_audio.models.at_gcn import ATGCN
from gnn_audio.zoo import at_gcn, cnn10
from gnn_audio.zoo.summary import count_parameters


def test_cnn10_parameters():
    n = count_parameters(cnn10(num_classes=527))
    assert abs(n - 5.22e6) / 5.22e6 < 0.01, n


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_label_branch_is_gcnconv_over_a_pyg_graph(layers):
    torch.manual_seed(0)
    s = 10
    targets = torch.rand(300, s) < 0.2
    targets[:, 1] |= targets[:, 0]
    emb = torch.randn(s, 300)
    model = at_gcn(num_classes=s, gcn_layers=layers, label_embeddings=emb,
                   train_targets=targets)
    assert len(model.gcn.convs) == layers
    assert all(isinstance(c, GCNConv) for c in model.gcn.convs)
    graph = model.label_graph()
    assert isinstance(graph, Data) and graph.num_nodes == s
    adj = cooccurrence_adjacency(targets)
    torch.testing.assert_close(model.adjacency, adj)
    # dense reference: H <- A' H W (no extra self-loops, no renormalisation)
    h = emb
    for i, conv in enumerate(model.gcn.convs):
        h = adj @ (h @ conv.lin.weight.t())
        if i < layers - 1:
            h = torch.nn.functional.leaky_relu(h, 0.2)
    torch.testing.assert_close(model.label_representations(), h, atol=1e-4, rtol=1e-4)
    x = torch.randn(3, 64, 64)
    logits = model(x)
    assert logits.shape == (3, s)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_embeddings_from_glove_file_and_validation(tmp_path):
    path = tmp_path / "glove.txt"
    words = ["dog", "bark", "cat", "meow"]
    path.write_text("".join(f"{w} {' '.join(str(float(i + j)) for j in range(5))}\n"
                            for i, w in enumerate(words)))
    model = ATGCN(2, label_embeddings=(path, ["Dog_bark", "Cat meow"]),
                  adjacency=torch.eye(2))
    torch.testing.assert_close(model.label_embeddings[0], torch.arange(5.0) + 0.5)
    with pytest.raises(ValueError):
        ATGCN(3, label_embeddings=torch.randn(2, 5), adjacency=torch.eye(3))
    with pytest.warns(UserWarning, match="self-loops only"):
        ATGCN(3, label_embeddings=torch.randn(3, 5))


def test_default_label_embeddings_are_the_hashed_gaussian():
    with pytest.warns(UserWarning, match="pseudo-random"):
        model = ATGCN(4, adjacency=torch.eye(4), embedding_dim=6)
    expected = torch.from_numpy(hashed_gaussian("gnn_audio", (4, 6))).float()
    torch.testing.assert_close(model.label_embeddings, expected, rtol=0, atol=0)


def make_cooccurrence_task(n, seed, s=12, frames=16, mel=32):
    """Four groups of three labels that co-occur; every label draws a band at its own mel
    bin, the third label of a group only faintly (its context helps)."""
    rng = np.random.default_rng(seed)
    y = np.zeros((n, s), dtype=np.float32)
    for i in range(n):
        for g in rng.choice(4, size=rng.integers(1, 3), replace=False):
            y[i, 3 * g] = 1
            y[i, 3 * g + 1] = rng.random() < 0.9
            y[i, 3 * g + 2] = rng.random() < 0.8
    x = rng.normal(0, 1.0, size=(n, frames, mel)).astype(np.float32)
    bins = np.arange(s) * (mel // s) + 2
    strength = np.where(np.arange(s) % 3 == 2, 0.6, 2.0)
    for c in range(s):
        x[:, :, bins[c]] += (y[:, c] * strength[c])[:, None]
    return torch.from_numpy(x), torch.from_numpy(y)


def test_at_gcn_learns_a_cooccurrence_task_quickly(tmp_path):
    torch.manual_seed(0)
    x_tr, y_tr = make_cooccurrence_task(640, seed=0)
    x_te, y_te = make_cooccurrence_task(256, seed=1)
    glove = tmp_path / "glove.txt"
    names = [f"sound{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    glove.write_text("".join(f"{n} " + " ".join(f"{v:.4f}" for v in rng.normal(size=50)) + "\n"
                             for n in names))
    start = time.perf_counter()
    model = at_gcn(num_classes=12, label_embeddings=(glove, names), train_targets=y_tr,
                   mel_bins=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        idx = torch.randint(0, len(x_tr), (16,), generator=g)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x_tr[idx]), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        scores = torch.sigmoid(model(x_te))
    elapsed = time.perf_counter() - start
    m_ap = mean_average_precision(scores, y_te)
    prior = y_tr.mean(0).expand_as(y_te)  # the label-frequency baseline
    baseline = mean_average_precision(prior + 1e-6 * torch.rand_like(prior), y_te)
    print(f"AT-GCN mAP {m_ap:.3f} vs label-frequency baseline {baseline:.3f} "
          f"in {elapsed:.1f} s")
    assert elapsed < 60
    assert m_ap > baseline + 0.3


def _small_at_gcn(seed=0, s=6):
    torch.manual_seed(seed)
    targets = torch.rand(200, s) < 0.3
    return ATGCN(s, label_embeddings=torch.randn(s, 8), train_targets=targets, mel_bins=16)


def test_label_graph_is_built_once_and_not_in_the_state_dict():
    model = _small_at_gcn()
    # checkpoints keep their keys: the edge list is derived, in non-persistent buffers
    assert sorted(k for k in model.state_dict() if not k.startswith("cnn.")) == [
        "adjacency", "gcn.convs.0.lin.weight", "gcn.convs.1.lin.weight", "label_embeddings"]
    dst, src = model.adjacency.nonzero(as_tuple=True)
    assert torch.equal(model.edge_index, torch.stack([src, dst]))
    assert torch.equal(model.edge_weight, model.adjacency[dst, src])
    graph = model.label_graph()
    assert graph.edge_index is model.edge_index and graph.edge_weight is model.edge_weight
    # an in-place change of the adjacency, a reassignment, a loaded one: the edges follow
    model.adjacency.fill_(0.5)
    assert model.label_graph().edge_index.size(1) == 36
    model.adjacency = torch.eye(6)
    assert model.label_graph().edge_index.size(1) == 6
    other = _small_at_gcn(seed=1)
    model.load_state_dict(other.state_dict())  # strict: an old checkpoint's keys
    assert torch.equal(model.edge_index, other.edge_index)
    torch.testing.assert_close(model.label_representations(), other.label_representations())
    model.double()
    assert model.edge_weight.dtype == torch.float64 and model.edge_index.dtype == torch.long


def _uncached(model):
    return model.gcn(model.label_graph())


def test_eval_label_representations_are_cached_and_invalidated():
    model = _small_at_gcn().eval()
    x = torch.randn(2, 32, 16)
    with torch.no_grad():
        h = model.label_representations()
        assert model.label_representations() is h          # cached
        torch.testing.assert_close(h, _uncached(model), rtol=0, atol=0)
        y = model(x)
        assert torch.equal(model(x), y)
        model.gcn.convs[0].lin.weight.mul_(2)               # in place (an optimiser step)
        h2 = model.label_representations()
        assert h2 is not h and torch.equal(h2, _uncached(model))
        model.label_embeddings.add_(1)                      # a buffer it reads
        assert torch.equal(model.label_representations(), _uncached(model))
        model.adjacency.mul_(0.5)
        assert torch.equal(model.label_representations(), _uncached(model))
        # other parameters through functional_call: not the cached ones
        params = {n: p * 3 for n, p in model.named_parameters() if n.startswith("gcn.")}
        out = torch.func.functional_call(model, params, (x,))
        with torch.nn.utils.stateless._reparametrize_module(model, params):
            expected = model.cnn.embed(x) @ _uncached(model).t()
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(model(x), model.cnn.embed(x) @ _uncached(model).t())
    model.load_state_dict(_small_at_gcn(seed=2).state_dict())
    with torch.no_grad():
        assert torch.equal(model.label_representations(), _uncached(model))
    # with autograd on (training, or eval gradients) nothing is cached: gradients reach the GCN
    h = model.label_representations()
    assert h.requires_grad and h is not model.label_representations()
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.gcn.parameters())
    model.train()
    assert model._label_cache is None
