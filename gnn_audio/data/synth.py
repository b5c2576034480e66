"""Deterministic synthetic audio: tones, noise bursts, chirps and their mixtures.

Used by the tests (which may not download anything), by ``gnn-audio demo`` and by the
examples to build small FSD50K-format data sets. Every generator takes a
:class:`numpy.random.Generator` or a seed, so the same call always yields the same samples.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import numpy as np

SeedLike = Union[int, np.random.Generator, None]

__all__ = ["tone", "noise_burst", "chirp", "mixture", "SIGNALS", "write_wav"]


def _rng(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _fade(x: np.ndarray, sample_rate: int, ms: float = 5.0) -> np.ndarray:
    n = min(len(x) // 2, int(sample_rate * ms / 1000))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=x.dtype)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def tone(duration: float, sample_rate: int, freq: float = 440.0, amplitude: float = 0.5,
         harmonics: int = 1, seed: SeedLike = 0) -> np.ndarray:
    """A (harmonic) tone with a random phase: ``sum_h a/h * sin(2 pi h f t + phi)``."""
    rng = _rng(seed)
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    x = np.zeros_like(t)
    for h in range(1, harmonics + 1):
        if h * freq < sample_rate / 2:
            x += np.sin(2 * np.pi * h * freq * t + rng.uniform(0, 2 * np.pi)) / h
    x *= amplitude / max(np.abs(x).max(), 1e-9)
    return _fade(x.astype(np.float32), sample_rate)


def noise_burst(duration: float, sample_rate: int, amplitude: float = 0.3,
                burst: float = 0.2, num_bursts: int = 3, seed: SeedLike = 0) -> np.ndarray:
    """Silence with ``num_bursts`` white-noise bursts of ``burst`` seconds at random onsets."""
    rng = _rng(seed)
    n = int(round(duration * sample_rate))
    x = np.zeros(n, dtype=np.float32)
    width = max(1, min(n, int(burst * sample_rate)))
    for _ in range(num_bursts):
        start = int(rng.integers(0, max(1, n - width + 1)))
        seg = rng.standard_normal(width).astype(np.float32)
        x[start:start + width] += _fade(seg, sample_rate)
    peak = np.abs(x).max()
    return x * (amplitude / peak) if peak > 0 else x


def chirp(duration: float, sample_rate: int, f0: float = 100.0, f1: Optional[float] = None,
          amplitude: float = 0.5, seed: SeedLike = 0) -> np.ndarray:
    """A logarithmic sweep from ``f0`` to ``f1`` (default: 0.4 x the sample rate)."""
    rng = _rng(seed)
    f1 = 0.4 * sample_rate if f1 is None else min(f1, 0.49 * sample_rate)
    n = int(round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    k = np.log(f1 / f0) / max(duration, 1e-9)
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k + rng.uniform(0, 2 * np.pi)
    return _fade((amplitude * np.sin(phase)).astype(np.float32), sample_rate)


SIGNALS = {"tone": tone, "noise": noise_burst, "chirp": chirp}


def mixture(duration: float, sample_rate: int, components: Dict[str, dict],
            snr_jitter_db: float = 3.0, seed: SeedLike = 0) -> np.ndarray:
    """Sum of named components, e.g. ``{"tone": {"freq": 880}, "noise": {}}``, each scaled by a
    random gain of +-``snr_jitter_db`` dB, then peak-normalised to 0.9."""
    rng = _rng(seed)
    x = np.zeros(int(round(duration * sample_rate)), dtype=np.float32)
    for name, kwargs in components.items():
        gain = 10 ** (rng.uniform(-snr_jitter_db, snr_jitter_db) / 20)
        x += gain * SIGNALS[name](duration, sample_rate, seed=rng, **kwargs)
    peak = np.abs(x).max()
    return x * (0.9 / peak) if peak > 0.9 else x


def write_wav(path, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write ``[T]`` (mono) or ``[T, channels]`` samples with soundfile."""
    import soundfile as sf

    sf.write(str(path), np.asarray(samples, dtype=np.float32), sample_rate, subtype=subtype)
