"""Tags over time: window scores as evaluation windows a clip, and the picture."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn_audio.data.windows import Windowing
from gnn_audio.viz import plot_tags_over_time, tags_over_time_file, window_scores

from .conftest import FBANK, LABELS, assert_png


def test_window_scores_follow_the_evaluation_windows(tiny_model):
    model = tiny_model
    logmel = torch.randn(150, 32, generator=torch.Generator().manual_seed(1))
    times, scores = window_scores(model, logmel, window_hop=0.5, batch_size=2)
    starts = Windowing.from_fraction(64, 0.5).starts(150)
    assert starts == [0, 32, 64, 86]
    assert np.allclose(times, np.array([[s, s + 64] for s in starts]) * 0.01)
    with torch.no_grad():
        expect = torch.sigmoid(model(torch.stack([logmel[s:s + 64] for s in starts])))
    assert scores.shape == (4, 5)
    assert np.allclose(scores, expect.numpy(), atol=1e-6)
    # shorter than a window: one window, padded as training padded clips
    times, scores = window_scores(model, logmel[:40])
    pad = -FBANK.norm_mean / FBANK.norm_std
    with torch.no_grad():
        padded = torch.cat([logmel[:40], torch.full((24, 32), pad)])
        expect = torch.sigmoid(model(padded[None]))
    assert np.allclose(times, [[0.0, 0.4]]) and np.allclose(scores, expect.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="window_hop must be in"):
        window_scores(model, logmel, window_hop=0.0)


def test_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    logmel = rng.normal(size=(7000, 32))  # > 3000 frames: drawn averaged down
    starts = np.arange(0, 6937, 32)
    times = np.stack([starts, starts + 64], 1) * 0.01
    scores = rng.uniform(size=(len(starts), 5))
    out = plot_tags_over_time(logmel, times, scores, LABELS, tmp_path / "tags.png", top_k=3,
                              title="random", dpi=40)
    assert out == tmp_path / "tags.png"
    assert_png(out)
    chosen = plot_tags_over_time(torch.from_numpy(logmel[:200]), times[:3], scores[:3],
                                 LABELS, tmp_path / "chosen.png", labels=["cat", 0], dpi=40)
    assert_png(chosen)
    none = plot_tags_over_time(logmel[:200], times[:3], scores[:3] * 0.1, LABELS,
                               tmp_path / "none.png", threshold=0.5, dpi=40)
    assert_png(none)


def test_plot_checks_its_input(tmp_path):
    logmel, times, scores = np.zeros((100, 32)), np.array([[0.0, 0.64]]), np.zeros((1, 5))
    with pytest.raises(ValueError, match=r"scores must be \[windows, labels\] = \[1, 5\]"):
        plot_tags_over_time(logmel, times, np.zeros((1, 4)), LABELS, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"window_times must be \[W, 2\]"):
        plot_tags_over_time(logmel, np.array([[0.5, 0.1]]), scores, LABELS, tmp_path / "a.png")
    with pytest.raises(ValueError, match="scores holds NaN"):
        plot_tags_over_time(logmel, times, np.full((1, 5), np.nan), LABELS, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"unknown label 'Dog' \(closest: Dog_bark"):
        plot_tags_over_time(logmel, times, scores, LABELS, tmp_path / "a.png", labels=["Dog"])
    assert list(tmp_path.iterdir()) == []


def test_tags_over_time_of_a_file(tiny_checkpoint, wav_file, tmp_path):
    out = tags_over_time_file(tiny_checkpoint, wav_file, tmp_path / "file.png",
                              window_hop=0.25, top_k=4, dpi=40)
    assert_png(out)
    with pytest.raises(ValueError, match=r"tiny_atgnn.pt: unknown label 'Horn'"):
        tags_over_time_file(tiny_checkpoint, wav_file, tmp_path / "x.png", labels=["Horn"])
