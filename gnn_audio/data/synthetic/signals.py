"""Deterministic synthetic audio: tones, noise bursts, chirps and their mixtures.

Used by the tests (which may not download anything), by ``gnn-audio demo`` and by the
examples to build small FSD50K-format data sets. Every generator takes a
:class:`numpy.random.Generator` or a seed, so the same call always yields the same samples.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import numpy as np

SeedLike = Union[int, np.random.Generator, None]

__all__ = ["tone", "noise_burst", "chirp", "mixture", "SIGNALS", "write_wav", "harmonic_tone",
           "glide", "band_noise", "coloured_noise", "click_train", "modulated_tone", "pip_train"]


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


# --- sound-event prototypes for generated data sets ---------------------------------------
# Each returns ``n`` float32 samples with unit RMS (silence stays zero); the caller applies the
# envelope and the level. They take frequencies in Hz and a Generator for per-instance jitter.


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return (x / rms).astype(np.float32) if rms > 0 else x.astype(np.float32)


def _fast_len(n: int) -> int:
    """A length >= ``n`` whose FFT is fast (noise is generated that long, then cut to ``n``)."""
    from scipy.fft import next_fast_len

    return next_fast_len(n, real=True)


def _time(n: int, sample_rate: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32) / np.float32(sample_rate)


def harmonic_tone(n: int, sample_rate: int, f0: float, num_harmonics: int = 6,
                  tilt_db: float = -6.0, vibrato_hz: float = 0.0, vibrato_oct: float = 0.0,
                  rng: SeedLike = 0) -> np.ndarray:
    """``sum_h 10^(tilt_db (h - 1) / 20) sin(h phi(t) + phase_h)`` below 0.45 x the sample rate,
    with an optional sinusoidal vibrato of ``vibrato_oct`` octaves at ``vibrato_hz``."""
    rng = _rng(rng)
    t = _time(n, sample_rate)
    f = np.float32(f0) * np.exp2(np.float32(vibrato_oct) * np.sin(
        np.float32(2 * np.pi * vibrato_hz) * t + np.float32(rng.uniform(0, 2 * np.pi))))
    phi = np.float32(2 * np.pi / sample_rate) * np.cumsum(f, dtype=np.float64).astype(np.float32)
    h = np.arange(1, max(1, int(num_harmonics)) + 1, dtype=np.float32)
    h = h[h * f0 * 2 ** abs(vibrato_oct) < 0.45 * sample_rate]
    h = h if len(h) else np.ones(1, dtype=np.float32)
    amps = (10.0 ** (tilt_db * (h - 1) / 20.0)).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, len(h)).astype(np.float32)
    x = np.sin(phi[:, None] * h[None, :] + phases[None, :]) @ amps
    return _unit_rms(x)


def glide(n: int, sample_rate: int, f_start: float, f_end: float, fm_hz: float = 0.0,
          fm_oct: float = 0.0, rng: SeedLike = 0) -> np.ndarray:
    """A tone (fundamental + weak 2nd harmonic) gliding log-linearly from ``f_start`` to
    ``f_end``, with an optional frequency modulation of ``fm_oct`` octaves at ``fm_hz``."""
    rng = _rng(rng)
    t = _time(n, sample_rate)
    u = t / max(t[-1], 1e-6) if n > 1 else t
    log_f = (np.log2(f_start) + (np.log2(f_end) - np.log2(f_start)) * u + fm_oct * np.sin(
        np.float32(2 * np.pi * fm_hz) * t + np.float32(rng.uniform(0, 2 * np.pi))))
    f = np.minimum(np.exp2(log_f), 0.45 * sample_rate).astype(np.float32)
    phi = (2 * np.pi / sample_rate) * np.cumsum(f, dtype=np.float64)
    phi = (phi + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    return _unit_rms(np.sin(phi) + np.float32(0.3) * np.sin(2 * phi))


def _shaped_noise(n: int, sample_rate: int, gain, rng: SeedLike) -> np.ndarray:
    """White noise whose spectrum is multiplied by ``gain(frequencies in Hz)``, unit RMS."""
    rng = _rng(rng)
    if n < 2:
        return np.zeros(n, dtype=np.float32)
    m = _fast_len(n)
    spec = np.fft.rfft(rng.standard_normal(m).astype(np.float32))
    spec *= gain(np.fft.rfftfreq(m, 1.0 / sample_rate))
    return _unit_rms(np.fft.irfft(spec, m)[:n].astype(np.float32))


def band_noise(n: int, sample_rate: int, center: float, bandwidth_oct: float = 1.0,
               rng: SeedLike = 0) -> np.ndarray:
    """White noise shaped by a Gaussian band in log-frequency (``bandwidth_oct`` = std in
    octaves) around ``center`` Hz, filtered in the frequency domain."""
    width = max(bandwidth_oct, 1e-3)
    return _shaped_noise(n, sample_rate, lambda f: np.exp(
        -0.5 * (np.log2(np.maximum(f, 1.0) / center) / width) ** 2), rng)


def coloured_noise(n: int, sample_rate: int, exponent: float = 1.0,
                   rng: SeedLike = 0) -> np.ndarray:
    """Noise with power spectrum ``1 / f^exponent`` (0 white, 1 pink, 2 brown) above 20 Hz."""
    return _shaped_noise(n, sample_rate, lambda f: np.maximum(f, 20.0) ** (-exponent / 2.0),
                         rng)


def click_train(n: int, sample_rate: int, rate: float, center: float, decay_ms: float = 3.0,
                jitter: float = 0.2, rng: SeedLike = 0) -> np.ndarray:
    """Clicks at ``rate`` per second (intervals jittered by ``jitter``, random amplitudes), each
    a decaying sinusoid at ``center`` Hz with time constant ``decay_ms``."""
    from scipy.signal import oaconvolve

    rng = _rng(rng)
    period = sample_rate / max(rate, 1e-3)
    count = int(n / period) + 2
    gaps = period * (1.0 + jitter * rng.standard_normal(count)).clip(0.2)
    onsets = (np.cumsum(gaps) - gaps[0] * rng.uniform()).astype(np.int64)
    onsets = onsets[(onsets >= 0) & (onsets < n)]
    pulses = np.zeros(n, dtype=np.float32)
    pulses[onsets] = rng.uniform(0.5, 1.0, len(onsets)).astype(np.float32)
    tau = decay_ms / 1000.0 * sample_rate
    k = np.arange(int(5 * tau) + 1, dtype=np.float32)
    kernel = np.exp(-k / np.float32(tau)) * np.sin(np.float32(2 * np.pi * center / sample_rate) * k)
    return _unit_rms(oaconvolve(pulses, kernel.astype(np.float32))[:n])


def modulated_tone(n: int, sample_rate: int, carrier: float, rate: float, depth: float = 0.9,
                   num_harmonics: int = 2, rng: SeedLike = 0) -> np.ndarray:
    """A harmonic tone at ``carrier`` Hz whose amplitude is modulated at ``rate`` Hz by
    ``depth`` (0: none, 1: full)."""
    rng = _rng(rng)
    t = _time(n, sample_rate)
    am = 1.0 - depth * (0.5 + 0.5 * np.sin(np.float32(2 * np.pi * rate) * t
                                          + np.float32(rng.uniform(0, 2 * np.pi))))
    return _unit_rms(harmonic_tone(n, sample_rate, carrier, num_harmonics, -8.0, rng=rng) * am)


def pip_train(n: int, sample_rate: int, center: float, rate: float, pip_ms: float = 40.0,
              slope_oct: float = 0.5, spread_oct: float = 0.3, rng: SeedLike = 0) -> np.ndarray:
    """Short tonal pips (``pip_ms`` long, Hann-windowed) at about ``rate`` per second, each
    gliding by ``slope_oct`` octaves from a frequency within ``spread_oct`` of ``center``."""
    rng = _rng(rng)
    x = np.zeros(n, dtype=np.float32)
    m = max(8, int(pip_ms / 1000.0 * sample_rate))
    count = max(1, rng.poisson(max(rate * n / sample_rate, 0.5)))
    u = np.arange(m, dtype=np.float32) / m
    window = np.hanning(m).astype(np.float32)
    for start, f in zip(rng.integers(0, max(1, n - m // 2), count),
                        center * np.exp2(spread_oct * rng.standard_normal(count))):
        f_t = np.minimum(f * np.exp2(slope_oct * u), 0.45 * sample_rate)
        pip = window * np.sin((2 * np.pi / sample_rate) * np.cumsum(f_t)).astype(np.float32)
        end = min(n, start + m)
        x[start:end] += pip[:end - start]
    return _unit_rms(x)
