"""gnn_audio.metrics against scikit-learn and against a straightforward lwlrap loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import (average_precision_score, label_ranking_average_precision_score,
                             roc_auc_score)

from gnn_audio.metrics import d_prime, lwlrap, mean_average_precision, tagging_metrics


def _random_data(seed: int, n: int = 60, s: int = 12, ties: bool = False,
                 empty_clip: bool = False):
    """Random scores / targets with an all-negative column (2), and either an all-positive
    column (5) or, with ``empty_clip``, a clip without labels (row 0); with ``ties`` the scores
    are rounded to a few levels."""
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, s)) < 0.3).astype(np.float32)
    targets[:, 2] = 0
    if empty_clip:
        targets[0] = 0
    else:
        targets[:, 5] = 1
    scores = rng.random((n, s)) + 0.5 * targets  # informative but imperfect
    if ties:
        scores = np.round(scores * 3) / 3
    return scores.astype(np.float32), targets


def _lwlrap_loop(scores: np.ndarray, targets: np.ndarray):
    """The DCASE 2019 definition, one (clip, true label) pair at a time; ties pessimistic
    (rank = number of labels scored >= the label)."""
    n, s = scores.shape
    sums, counts = np.zeros(s), np.zeros(s)
    for i in range(n):
        true = [c for c in range(s) if targets[i, c] > 0.5]
        for c in true:
            at_or_above = [j for j in range(s) if scores[i, j] >= scores[i, c]]
            hits = sum(1 for j in at_or_above if targets[i, j] > 0.5)
            sums[c] += hits / len(at_or_above)
            counts[c] += 1
    per_class = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    overall = sums.sum() / counts.sum()
    return overall, per_class


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tagging_metrics_equal_sklearn_per_class(seed):
    scores, targets = _random_data(seed)
    out = tagging_metrics(scores, targets)
    ap, auc = [], []
    for c in range(scores.shape[1]):
        if targets[:, c].sum() == 0:
            assert np.isnan(out["AP"][c]) and np.isnan(out["AUC"][c])
            continue
        ap.append(average_precision_score(targets[:, c], scores[:, c]))
        assert out["AP"][c] == pytest.approx(ap[-1], abs=1e-12)
        if targets[:, c].all():
            assert np.isnan(out["AUC"][c])
            continue
        auc.append(roc_auc_score(targets[:, c], scores[:, c]))
        assert out["AUC"][c] == pytest.approx(auc[-1], abs=1e-12)
    assert out["mAP"] == pytest.approx(np.mean(ap), abs=1e-12)
    assert out["mAUC"] == pytest.approx(np.mean(auc), abs=1e-12)
    assert out["d_prime"] == pytest.approx(np.sqrt(2) * norm.ppf(np.mean(auc)), abs=1e-12)
    assert (out["classes_ap"], out["classes_left_out_ap"]) == (11, 1)  # column 2
    assert (out["classes_auc"], out["classes_left_out_auc"]) == (10, 2)  # columns 2 and 5
    assert out["lwlrap"] == pytest.approx(_lwlrap_loop(scores, targets)[0], abs=1e-12)
    assert mean_average_precision(scores, targets) == out["mAP"]


def test_tagging_metrics_torch_and_numpy_agree():
    scores, targets = _random_data(3)
    a = tagging_metrics(scores, targets)
    b = tagging_metrics(torch.from_numpy(scores).requires_grad_(), torch.from_numpy(targets))
    c = tagging_metrics(torch.from_numpy(scores).to(torch.float64), targets.astype(bool))
    for other in (b, c):
        for key in ("mAP", "mAUC", "d_prime", "lwlrap", "classes_ap", "classes_auc"):
            assert other[key] == pytest.approx(a[key], abs=1e-12)
        np.testing.assert_allclose(other["AP"], a["AP"], atol=1e-12)


def test_perfect_and_reversed_scores():
    targets = np.eye(4)[[0, 1, 2, 3, 0, 1]]
    perfect = tagging_metrics(targets * 2 - 1, targets)
    for key in ("mAP", "mAUC", "lwlrap"):
        assert perfect[key] == pytest.approx(1.0, abs=1e-12)
    reversed_ = tagging_metrics(1 - targets, targets)
    assert reversed_["mAUC"] == pytest.approx(0.0, abs=1e-12) and reversed_["mAP"] < 0.5
    assert reversed_["lwlrap"] == pytest.approx(0.25, abs=1e-12)


def test_all_classes_left_out_gives_nan_not_error():
    out = tagging_metrics(np.random.rand(5, 3), np.zeros((5, 3)))
    assert np.isnan(out["mAP"]) and np.isnan(out["mAUC"]) and np.isnan(out["d_prime"])
    assert np.isnan(out["lwlrap"])
    assert out["classes_left_out_ap"] == out["classes_left_out_auc"] == 3


@pytest.mark.parametrize("scores, targets, match", [
    (np.zeros((4, 3)), np.zeros((4, 2)), r"must both be \[N, S\]"),
    (np.zeros(4), np.zeros(4), r"must both be \[N, S\]"),
    (np.full((2, 2), np.nan), np.zeros((2, 2)), "NaN or infinite"),
    (np.zeros((2, 2)), np.full((2, 2), 2.0), r"targets must be finite values in \[0, 1\]"),
])
def test_bad_input_is_a_clear_error(scores, targets, match):
    with pytest.raises(ValueError, match=match):
        tagging_metrics(scores, targets)
    with pytest.raises(ValueError, match=match):
        lwlrap(scores, targets)


def test_d_prime():
    assert d_prime(0.5) == pytest.approx(0.0)
    assert d_prime(0.9) == pytest.approx(np.sqrt(2) * 1.2815515655446004)


@pytest.mark.parametrize("seed, ties", [(0, False), (1, True), (2, True), (3, False)])
def test_lwlrap_equals_loop_implementation(seed, ties):
    scores, targets = _random_data(seed, ties=ties, empty_clip=True)
    if ties:
        assert any(len(np.unique(row)) < len(row) for row in scores)  # there are ties
    out = lwlrap(scores, targets)
    overall, per_class = _lwlrap_loop(scores, targets)
    assert out["lwlrap"] == pytest.approx(overall, abs=1e-12)
    np.testing.assert_allclose(out["per_class"], per_class, atol=1e-12)  # NaN at the same places
    kept = ~np.isnan(out["per_class"])
    assert out["lwlrap"] == pytest.approx(np.sum(out["per_class"][kept] * out["weight"][kept]))
    assert out["weight"].sum() == pytest.approx(1.0)
    assert out["classes_left_out"] == 1 and out["samples_left_out"] >= 1


@pytest.mark.parametrize("seed, ties, empty_clip", [(4, False, False), (5, True, True)])
def test_lwlrap_equals_sklearn_lrap_weighted_by_labels(seed, ties, empty_clip):
    scores, targets = _random_data(seed, ties=ties, empty_clip=empty_clip)
    expected = label_ranking_average_precision_score(targets, scores,
                                                     sample_weight=targets.sum(axis=1))
    assert lwlrap(scores, targets)["lwlrap"] == pytest.approx(expected, abs=1e-12)


def test_lwlrap_ties_are_pessimistic():
    # one clip, labels 0 and 1 true, label 2 false; label 1 tied with the false label 2
    out = lwlrap(np.array([[0.9, 0.5, 0.5]]), np.array([[1, 1, 0]]))
    # label 0: 1/1; label 1: 2 true among the 3 labels scored >= 0.5 -> 2/3
    np.testing.assert_allclose(out["per_class"], [1.0, 2 / 3, np.nan])
    assert out["lwlrap"] == pytest.approx((1 + 2 / 3) / 2)
    # all scores equal: every true label gets (number true) / S
    out = lwlrap(np.zeros((1, 4)), np.array([[1, 0, 1, 0]]))
    assert out["lwlrap"] == pytest.approx(0.5)


def test_lwlrap_weights_follow_label_frequency():
    targets = np.array([[1, 0], [1, 0], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5]])
    out = lwlrap(scores, targets)
    np.testing.assert_allclose(out["weight"], [0.75, 0.25])
    # class 0: clip 0 -> 1, clip 1 -> 1/2, clip 2 -> 2/2; class 1: clip 2 -> 1/1
    np.testing.assert_allclose(out["per_class"], [2.5 / 3, 1.0])
    assert out["lwlrap"] == pytest.approx(3.5 / 4)
    assert out["samples_left_out"] == 1 and out["classes_left_out"] == 0


def test_lwlrap_large_input_is_vectorised():
    scores, targets = _random_data(6, n=5000, s=200)
    out = lwlrap(scores, targets)
    expected = label_ranking_average_precision_score(targets, scores,
                                                     sample_weight=targets.sum(axis=1))
    assert out["lwlrap"] == pytest.approx(expected, abs=1e-10)
