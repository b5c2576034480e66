"""Tiny models, checkpoints and clips for the picture tests (fast on 2 CPU cores)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn_audio.data.features import FbankConfig
from gnn_audio.data.synthetic.signals import chirp, noise_burst, tone, write_wav
from gnn_audio.zoo import create_model, save_checkpoint

LABELS = ["Dog_bark", "Cat", "Car horn", "Speech", "Water_drip"]
PNG = b"\x89PNG\r\n\x1a\n"
#: the tiny models' front-end: 64 frames x 32 mel bins
FBANK = FbankConfig(target_length=64, num_mel_bins=32)


def tiny_atgnn(seed: int = 0, name: str = "atgnn_pyr_t", label_names=LABELS,
               **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs = dict(num_classes=len(label_names), label_names=list(label_names),
                  channels=[8, 16, 24, 32],
                  input_size=(64, 32), drop_path_rate=0.0, fbank=FBANK, **extra)
    return create_model(name, **kwargs).eval()


def assert_png(path) -> None:
    """A complete PNG: signature, IHDR first, IEND last, some size; no temporary file
    left beside it."""
    data = open(path, "rb").read()
    assert data[:8] == PNG
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    assert len(data) > 5000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_atgnn()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny_atgnn.pt"
    save_checkpoint(tiny_atgnn(), path)
    return path


@pytest.fixture(scope="module")
def wav_file(tmp_path_factory):
    """2.4 s at 16 kHz: a tone, then a noise burst, then a chirp (longer than one 0.64 s
    window of the tiny models)."""
    sr = 16000
    x = np.concatenate([tone(0.8, sr, 440.0, harmonics=3, seed=0),
                        noise_burst(0.8, sr, seed=1), chirp(0.8, sr, 200.0, seed=2)])
    path = tmp_path_factory.mktemp("audio") / "three events.wav"
    write_wav(path, x, sr)
    return path


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny models run faster on one thread than on a shared, busy machine's two (module
    scope: set before the module's other fixtures build and run models)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
