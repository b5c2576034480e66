"""Shared fixtures: generated audio (no downloads), fixed seeds, the ``gpu`` marker."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch

from gnn_audio.data.synthetic.signals import chirp, mixture, noise_burst, tone, write_wav

SAMPLE_RATES = (8000, 16000, 22050, 44100, 48000)
KINDS = ("tone", "noise", "chirp", "mixture")


@dataclass(frozen=True)
class AudioFile:
    path: Path
    kind: str
    sample_rate: int
    channels: int
    duration: float


def _signal(kind: str, duration: float, sr: int, seed: int) -> np.ndarray:
    if kind == "tone":
        return tone(duration, sr, freq=440.0, harmonics=3, seed=seed)
    if kind == "noise":
        return noise_burst(duration, sr, seed=seed)
    if kind == "chirp":
        return chirp(duration, sr, f0=100.0, seed=seed)
    return mixture(duration, sr, {"tone": {"freq": 660.0}, "noise": {}, "chirp": {}}, seed=seed)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fixed_seeds():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory) -> List[AudioFile]:
    """Tones, noise bursts, chirps and mixtures as 16-bit wav at 8, 16, 22.05, 44.1 and
    48 kHz, mono and stereo (stereo = two differently seeded channels), 1.5 s each."""
    root = tmp_path_factory.mktemp("audio")
    files = []
    seed = 0
    for sr in SAMPLE_RATES:
        for kind in KINDS:
            for channels in (1, 2):
                seed += 1
                sig = np.stack([_signal(kind, 1.5, sr, seed + 1000 * c)
                                for c in range(channels)], axis=1)
                path = root / f"{kind}_{sr}_{channels}ch.wav"
                write_wav(path, sig if channels > 1 else sig[:, 0], sr)
                files.append(AudioFile(path, kind, sr, channels, 1.5))
    return files


@pytest.fixture(scope="session")
def audio_by_name(audio_files) -> Dict[str, AudioFile]:
    return {f.path.stem: f for f in audio_files}
