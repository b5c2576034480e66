"""gnn_audio.data.augment: config validation, mixup statistics, SpecAugment vs torchaudio."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torchaudio
from scipy import stats

from gnn_audio.data.augment import (NO_AUGMENT, AugmentConfig, mask_along_axis, mix,
                                    sample_mixup, spec_augment)


def test_config_defaults_are_the_psla_recipe_and_frozen():
    cfg = AugmentConfig()
    assert cfg.to_dict() == {"mixup": 0.5, "mixup_alpha": 10.0, "freq_mask": 48,
                             "time_mask": 192}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.mixup = 0.1
    assert cfg.replace(mixup=0.0).mixup == 0.0 and cfg.mixup == 0.5
    assert NO_AUGMENT.mixup == 0 and NO_AUGMENT.freq_mask == NO_AUGMENT.time_mask == 0


@pytest.mark.parametrize("changes, match", [
    ({"mixup": -0.1}, "mixup must be a probability"),
    ({"mixup": 1.5}, "mixup must be a probability"),
    ({"mixup": float("nan")}, "mixup must be a probability"),
    ({"mixup_alpha": 0.0}, "mixup_alpha must be > 0"),
    ({"mixup_alpha": float("nan")}, "mixup_alpha must be > 0"),
    ({"freq_mask": -1}, "freq_mask must be an integer >= 0"),
    ({"time_mask": 1.5}, "time_mask must be an integer >= 0"),
    ({"time_mask": True}, "time_mask must be an integer >= 0"),
])
def test_config_validation(changes, match):
    with pytest.raises(ValueError, match=match):
        AugmentConfig(**changes)


def test_mixup_rate_and_beta_statistics():
    g = torch.Generator().manual_seed(0)
    cfg = AugmentConfig()
    draws = [sample_mixup(g, cfg) for _ in range(20000)]
    lams = np.array([d for d in draws if d is not None])
    rate = len(lams) / len(draws)
    assert abs(rate - 0.5) < 4 * np.sqrt(0.25 / len(draws))  # ~0.014
    assert ((lams > 0) & (lams < 1)).all()
    # Beta(10, 10): mean 1/2, variance a*b / ((a+b)^2 (a+b+1)) = 100 / (400 * 21)
    assert abs(lams.mean() - 0.5) < 0.005
    assert lams.var() == pytest.approx(100 / (400 * 21), rel=0.05)
    assert stats.kstest(lams, stats.beta(10, 10).cdf).pvalue > 1e-3


@pytest.mark.parametrize("p", [0.0, 0.2, 1.0])
def test_mixup_probability_edges(p):
    g = torch.Generator().manual_seed(1)
    draws = [sample_mixup(g, AugmentConfig(mixup=p, mixup_alpha=0.5)) for _ in range(4000)]
    rate = np.mean([d is not None for d in draws])
    assert abs(rate - p) < 0.03
    if p == 1.0:  # Beta(0.5, 0.5) is U-shaped: many draws near 0 and 1
        lams = np.array(draws)
        assert stats.kstest(lams, stats.beta(0.5, 0.5).cdf).pvalue > 1e-3


def test_mixup_is_deterministic_with_a_seeded_generator():
    cfg = AugmentConfig()
    a = [sample_mixup(torch.Generator().manual_seed(7), cfg) for _ in range(3)]
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert [sample_mixup(g1, cfg) for _ in range(50)] == [sample_mixup(g2, cfg) for _ in range(50)]
    assert a[0] == a[1] == a[2]
    g3 = torch.Generator().manual_seed(8)
    assert [sample_mixup(g3, cfg) for _ in range(50)] != [
        sample_mixup(torch.Generator().manual_seed(7), cfg) for _ in range(50)]


def test_mix_pads_or_cuts_the_partner():
    a, long_b, short_b = torch.ones(10), torch.full((15,), 3.0), torch.full((4,), 3.0)
    out = mix(a, long_b, 0.25)
    assert out.shape == (10,) and torch.allclose(out, torch.full((10,), 0.25 + 0.75 * 3))
    out = mix(a, short_b, 0.25)
    assert torch.allclose(out[:4], torch.full((4,), 2.5))
    assert torch.allclose(out[4:], torch.full((6,), 0.25))  # partner zero-padded
    stereo = mix(torch.ones(2, 10), torch.zeros(2, 3), 0.5)
    assert stereo.shape == (2, 10) and stereo[:, 3:].eq(0.5).all() and stereo[:, :3].eq(0.5).all()
    assert mix(torch.ones(5, dtype=torch.int16), torch.zeros(5), 0.5).dtype == torch.float32


def test_mix_targets_like_psla():
    a, b = torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 1.0, 0.0])
    lam = 0.7
    # PSLA: += lam for each label of a, += 1 - lam for each label of b
    expected = torch.zeros(4)
    expected[a > 0] += lam
    expected[b > 0] += 1 - lam
    assert torch.allclose(mix(a, b, lam, match_length=False), expected)


@pytest.mark.parametrize("a, b, lam, match_length, match", [
    (torch.ones(3), torch.ones(3), 1.5, True, r"lam must be in \[0, 1\]"),
    (torch.ones(3), torch.ones(3), float("nan"), True, r"lam must be in \[0, 1\]"),
    (torch.ones(2, 3), torch.ones(3, 3), 0.5, True, "cannot mix tensors of shapes"),
    (torch.tensor(1.0), torch.tensor(1.0), 0.5, True, "cannot mix tensors of shapes"),
    (torch.ones(4), torch.ones(5), 0.5, False, "cannot mix tensors of shapes"),
])
def test_mix_bad_input(a, b, lam, match_length, match):
    with pytest.raises(ValueError, match=match):
        mix(a, b, lam, match_length=match_length)


def _torchaudio_psla(feats: torch.Tensor, freqm: int, timem: int) -> torch.Tensor:
    """PSLA's dataloader: [T, F] -> [1, F, T] -> FrequencyMasking -> TimeMasking -> [T, F]."""
    x = feats.t().unsqueeze(0)
    if freqm:
        x = torchaudio.transforms.FrequencyMasking(freqm)(x)
    if timem:
        x = torchaudio.transforms.TimeMasking(timem)(x)
    return x.squeeze(0).t()


@pytest.mark.parametrize("freqm, timem, frames", [(48, 192, 1024), (48, 0, 300),
                                                   (0, 192, 400), (48, 192, 100)])
def test_spec_augment_equals_torchaudio_with_the_same_uniforms(freqm, timem, frames):
    cfg = AugmentConfig(freq_mask=freqm, time_mask=timem)
    feats = torch.randn(frames, 128)
    for seed in range(8):
        torch.manual_seed(seed)
        expected = _torchaudio_psla(feats, freqm, timem)
        got = spec_augment(feats, cfg, torch.Generator().manual_seed(seed))
        assert torch.equal(got, expected)
        torch.manual_seed(seed)  # generator=None draws from the global generator
        assert torch.equal(spec_augment(feats, cfg), expected)


def _masked_bins(out: torch.Tensor, axis: int) -> torch.Tensor:
    """Indices along ``axis`` that are entirely masked (zero) in ``out``."""
    return torch.nonzero((out == 0).all(dim=1 - axis)).flatten()


def test_spec_augment_mask_widths_and_positions():
    cfg = AugmentConfig(freq_mask=48, time_mask=192)
    feats = torch.rand(240, 64) + 1.0  # no natural zeros; both axes longer than the masks
    g = torch.Generator().manual_seed(0)
    widths = {0: [], 1: []}
    for _ in range(3000):
        out = spec_augment(feats, cfg, g)
        assert out.shape == feats.shape
        for axis in (0, 1):
            idx = _masked_bins(out, axis)
            if len(idx):  # one contiguous band, inside the axis
                assert idx[-1] - idx[0] + 1 == len(idx)
                assert 0 <= idx[0] and idx[-1] < feats.size(axis)
            widths[axis].append(len(idx))
        # nothing but the two bands is masked
        masked = out == 0
        assert masked.sum() == (widths[0][-1] * 64 + widths[1][-1] * 240
                                - widths[0][-1] * widths[1][-1])
    assert feats.min() >= 1.0  # the input is left untouched
    for axis, param in ((1, 48), (0, 192)):
        w = np.array(widths[axis])
        assert w.min() == 0 and w.max() == param - 1  # uniform over 0 .. param - 1
        assert set(w.tolist()) == set(range(param))
        assert abs(w.mean() - (param - 1) / 2) < 0.05 * param
        counts = np.bincount(w, minlength=param)
        assert stats.chisquare(counts).pvalue > 1e-3


def test_spec_augment_mask_value_and_determinism():
    feats = torch.randn(500, 64)
    cfg = AugmentConfig(freq_mask=20, time_mask=100)
    a = spec_augment(feats, cfg, torch.Generator().manual_seed(3), mask_value=1.017)
    b = spec_augment(feats, cfg, torch.Generator().manual_seed(3), mask_value=1.017)
    assert torch.equal(a, b)
    changed = a != feats
    assert changed.any() and (a[changed] == 1.017).all()
    assert torch.equal(spec_augment(feats, NO_AUGMENT), feats)


def test_spec_augment_bad_shape():
    with pytest.raises(ValueError, match=r"expects features \[frames, mel\]"):
        spec_augment(torch.zeros(1, 100, 128), AugmentConfig())


def test_mask_along_axis_bounds_when_param_exceeds_the_axis():
    x = torch.ones(10, 5)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        out = mask_along_axis(x, 50, 0, 0.0, g)
        assert out.shape == x.shape and ((out == 0).all(1) | (out == 1).all(1)).all()
