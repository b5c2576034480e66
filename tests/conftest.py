"""Shared fixtures: generated audio and data sets (no downloads), a checkpoint for them, fixed
seeds, the ``gpu`` marker."""
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


@pytest.fixture
def small_tmpfs(tmp_path):
    """``mount(size)``: a folder on a tmpfs of ``size`` bytes, a disk that really fills up
    (unmounted at the end); the test is skipped where this process may not mount one (not
    root, no mount permission in the container)."""
    import subprocess

    mounted = []

    def mount(size: int):
        folder = tmp_path / f"tmpfs{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


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


def calibrate_batch_norm(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Batch-norm statistics of one forward pass of ``x``: a fresh model's eval-mode scores
    are saturated at 0 or 1 (|logit| ~1e7), those of this one are not, so that a change of a
    feature's last bit shows in them. Returns the model in eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # the average over the pass
    with torch.no_grad():
        model.train()(x)
    return model.eval()


@pytest.fixture(scope="session")
def fsd50k_checkpoint(tmp_path_factory):
    """``(data_dir, checkpoint)``: a generated FSD50K-layout data set of 24 clips and an
    (untrained, batch-norm calibrated) ATGNN checkpoint of its class list, with a 64-mel,
    256-frame front-end."""
    from gnn_audio.data.features import FbankConfig
    from gnn_audio.data.readers.sources import get_source
    from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like
    from gnn_audio.zoo import create_model, save_checkpoint

    fb = FbankConfig(num_mel_bins=64, target_length=256)
    root = make_fsd50k_like(tmp_path_factory.mktemp("fsd50k_ckpt") / "FSD50K", num_clips=24,
                            max_duration=5.0, median_duration=3.0)
    source = get_source("fsd50k")
    options = {"data_dir": str(root)}
    labels = source.label_set(options, source.read(options, "eval"))
    torch.manual_seed(0)
    model = create_model("atgnn_pyr_t", num_classes=len(labels), label_names=labels.names,
                         channels=[8, 16, 24, 32], input_size=(256, 64), drop_path_rate=0.0,
                         fbank=fb)
    calibrate_batch_norm(model, torch.randn(8, 256, 64))
    ckpt = root.parent / "best.pt"
    save_checkpoint(model, ckpt)
    return root, ckpt
