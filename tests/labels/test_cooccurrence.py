import time

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnn_audio.labels.cooccurrence import (SCHEMES, adjacency_to_graph, cooccurrence_adjacency,
                                           cooccurrence_graph, label_cooccurrence_counts)


def numpy_reference(y, tau, p, scheme):
    """Plain loops over label pairs, straight from AT-GCN eq. 5-7 and the scheme table."""
    y = np.asarray(y) != 0
    n, s = y.shape
    counts = np.zeros((s, s))
    for i in range(s):
        for j in range(s):
            counts[i, j] = np.sum(y[:, i] & y[:, j])
    prob = np.zeros((s, s))
    for i in range(s):
        for j in range(s):
            if i != j and counts[i, i] > 0:
                prob[i, j] = counts[i, j] / counts[i, i]
    out = np.zeros((s, s))
    for i in range(s):
        if scheme == "none":
            row = prob[i].copy()
        elif scheme == "eq6":
            row = np.where(prob[i] >= tau, prob[i], 0.0)
        elif scheme == "eq7":
            row = prob[i].copy()
        elif scheme == "both":
            row = np.where(prob[i] >= tau, prob[i], 0.0)
        else:  # binary
            row = ((prob[i] >= tau) & (prob[i] > 0)).astype(float)
        row[i] = 0.0
        total = row.sum()
        if total == 0:
            out[i, i] = 1.0
            continue
        if scheme in ("none", "eq6"):
            out[i] = row
            out[i, i] = 1.0
        else:
            out[i] = p * row / total
            out[i, i] = 1.0 - p
    return out


def random_targets(n, s, seed, never=()):
    rng = np.random.default_rng(seed)
    y = rng.random((n, s)) < 0.15
    y[:, 0] |= y[:, 1]  # a strong dependency: label 1 implies label 0
    for c in never:
        y[:, c] = False
    return y


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("tau", [0.0, 0.3, 0.6, 1.01])  # 1.01: above every probability
def test_matches_numpy_reference(scheme, tau):
    y = random_targets(200, 9, seed=int(tau * 100), never=(4, 7))
    expected = numpy_reference(y, tau, 0.2, scheme)
    got = cooccurrence_adjacency(torch.from_numpy(y), tau=tau, p=0.2, scheme=scheme)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    for c in (4, 7):  # never-seen labels keep only their self-loop, weight 1
        row = np.zeros(9)
        row[c] = 1.0
        np.testing.assert_array_equal(got[c].numpy(), row)


def test_hand_computed_four_labels():
    # clips: {0,1} {0,1} {0,2} {1} {0}; label 3 never occurs
    y = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
    counts = label_cooccurrence_counts(y)
    np.testing.assert_array_equal(counts, [[4, 2, 1, 0], [2, 3, 0, 0], [1, 0, 1, 0],
                                           [0, 0, 0, 0]])
    # P: row 0 = [-, 2/4, 1/4, 0], row 1 = [2/3, -, 0, 0], row 2 = [1, 0, -, 0]
    # tau = 0.3 drops P_02 = 0.25; p = 0.2 then gives 0.2 to the single neighbour left
    expected = np.array([[0.8, 0.2, 0.0, 0.0],
                         [0.2, 0.8, 0.0, 0.0],
                         [0.2, 0.0, 0.8, 0.0],
                         [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(cooccurrence_adjacency(y, 0.3, 0.2).numpy(), expected, atol=1e-7)
    # eq. 7 alone keeps P_02: row 0 = 0.2 * [2/4, 1/4] / (3/4)
    eq7 = cooccurrence_adjacency(y, 0.3, 0.2, scheme="eq7").numpy()
    np.testing.assert_allclose(eq7[0], [0.8, 0.2 * 2 / 3, 0.2 / 3, 0.0], atol=1e-7)


def test_input_types_agree():
    y = random_targets(100, 6, seed=3)
    ref = cooccurrence_adjacency(y)
    for variant in (torch.from_numpy(y).float(), torch.from_numpy(y).to_sparse(),
                    sp.csr_matrix(y.astype(np.int8)), y.astype(np.float32)):
        torch.testing.assert_close(cooccurrence_adjacency(variant), ref)
    with pytest.raises(ValueError):
        cooccurrence_adjacency(y, scheme="ontology")


def test_graph_data():
    y = random_targets(300, 8, seed=4)
    adj = cooccurrence_adjacency(y, tau=0.2)
    data = cooccurrence_graph(y, tau=0.2, label_names=[f"label {i}" for i in range(8)])
    assert data.num_nodes == 8
    dense = torch.zeros(8, 8)
    dense[data.edge_index[1], data.edge_index[0]] = data.edge_weight
    torch.testing.assert_close(dense, adj)
    assert bool((data.edge_index[0] == data.edge_index[1]).sum() == 8)  # one self-loop each
    assert adjacency_to_graph(torch.eye(3)).edge_index.shape == (2, 3)


def test_audioset_scale_under_30_seconds():
    rng = np.random.default_rng(0)
    n, s = 2_000_000, 527
    per_clip = rng.integers(1, 4, size=n)  # 1-3 labels per clip, about 2 on average
    rows = np.repeat(np.arange(n), per_clip)
    cols = rng.integers(0, s, size=rows.size)
    y = sp.csr_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape=(n, s))
    start = time.perf_counter()
    adj = cooccurrence_adjacency(y)
    elapsed = time.perf_counter() - start
    print(f"2,000,000 x 527 ({y.nnz} labels): {elapsed:.2f} s")
    assert elapsed < 30
    assert adj.shape == (527, 527)
    torch.testing.assert_close(adj.sum(1), torch.ones(527), atol=1e-5, rtol=0)
