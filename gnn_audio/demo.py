"""The embedded default job of ``gnn-audio demo`` / ``make demo``: the whole pipeline on
generated audio, small enough for two CPU cores.

wav files (tones, chirps, noise bursts and their mixtures, written at 8-48 kHz) -> log-mel
features -> a zoo model (ATGNN pyr-t by default: kNN graphs over the spectrogram, PLG / LLG
label graphs) trained for a few dozen steps -> logits -> mAP on held-out clips and the top tags
of a few of them.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from gnn_audio.data.features import FbankConfig
from gnn_audio.data.synthetic.signals import chirp, noise_burst, tone, write_wav
from gnn_audio.inference import Tagger
from gnn_audio.metrics import tagging_metrics
from gnn_audio.zoo import create_model
from gnn_audio.zoo.summary import count_parameters

__all__ = ["DEMO_CLASSES", "make_demo_clips", "recalibrate_batchnorm", "run_demo"]

DEMO_CLASSES = ["Harmonic tone", "Chirp", "Noise bursts"]
SAMPLE_RATES = (8000, 16000, 22050, 44100, 48000)


def make_demo_clips(folder: Path, n: int, seconds: float, seed: int) -> List[tuple]:
    """``n`` wav files with 1-3 of :data:`DEMO_CLASSES` each; returns ``(path, multi-hot)``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        sr = int(rng.choice(SAMPLE_RATES))
        y = np.zeros(len(DEMO_CLASSES), dtype=np.float32)
        while y.sum() == 0:
            y = (rng.random(len(DEMO_CLASSES)) < 0.45).astype(np.float32)
        x = np.zeros(int(seconds * sr), dtype=np.float32)
        if y[0]:
            x += tone(seconds, sr, freq=float(rng.uniform(200, 1200)), harmonics=4, seed=rng)
        if y[1]:
            x += chirp(seconds, sr, f0=float(rng.uniform(80, 300)),
                       f1=float(rng.uniform(2000, 3800)), seed=rng)
        if y[2]:
            x += noise_burst(seconds, sr, burst=0.15, num_bursts=3, seed=rng)
        x = 0.8 * x / max(1e-6, float(np.abs(x).max()))
        path = folder / f"clip{i:03d}_{sr}Hz.wav"
        write_wav(path, x, sr)
        out.append((path, y))
    return out


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, batches) -> None:
    """Recompute every batch-norm layer's running mean / variance as the plain average over
    ``batches`` (forward passes in train mode, no gradients)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for x in batches:
        model(x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum


def run_demo(model: str = "atgnn_pyr_t", steps: int = 60, batch_size: int = 8,
             seconds: float = 2.0, out: Optional[Path] = None, top: int = 3,
             seed: int = 0, log=print) -> Dict[str, float]:
    torch.manual_seed(seed)
    start = time.perf_counter()
    out = Path(out or tempfile.mkdtemp(prefix="gnn_audio_demo_"))
    train = make_demo_clips(out / "train", 48, seconds, seed)
    test = make_demo_clips(out / "test", 24, seconds, seed + 1)
    frames = int(seconds * 100)
    config = FbankConfig(target_length=frames)  # 16 kHz, 128 mel, 10 ms hop (ATGNN front end)
    # the demo trains on short clips: the model's front-end says so, and the tagger follows it
    net = create_model(model, num_classes=len(DEMO_CLASSES), label_names=DEMO_CLASSES,
                       drop_path_rate=0.0, fbank=config)
    tagger = Tagger(net)

    def features(items):  # each clip's one window, as the tagger feeds it to the model
        x = torch.stack([next(tagger.windows(p))[2] for p, _ in items])
        return x, torch.from_numpy(np.stack([y for _, y in items]))

    x_tr, y_tr = features(train)
    x_te, y_te = features(test)
    log(f"gnn-audio demo: {len(train)} training / {len(test)} test clips of {seconds:.0f} s "
        f"({frames} frames x {config.num_mel_bins} mel) written to {out}")
    log(f"model {model}: {count_parameters(net) / 1e6:.1f} M parameters, training {steps} "
        f"steps of {batch_size} clips on the CPU")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        net.train()
        idx = torch.randint(0, len(x_tr), (batch_size,), generator=g)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x_tr[idx]), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps:
            log(f"  step {step:3d}  loss {loss.item():.3f}")
    # After a few dozen steps the batch-norm running averages still lag the weights:
    # re-estimate them over the training clips ("precise BN") before evaluating.
    recalibrate_batchnorm(net, x_tr.split(batch_size))
    net.eval()
    with torch.no_grad():
        probs = torch.sigmoid(net(x_te))
    metrics = tagging_metrics(probs, y_te)
    for (path, y), p in zip(test[:4], probs[:4].tolist()):
        truth = ", ".join(n for n, t in zip(DEMO_CLASSES, y) if t)
        best = sorted(range(len(p)), key=lambda j: -p[j])[:top]
        log("\n".join([f"{path.name} (truth: {truth}):"] +
                       [f"    {p[j]:6.3f}  {DEMO_CLASSES[j]}" for j in best]))
    chance = y_te.mean().item()
    log(f"held-out mAP {metrics['mAP']:.3f} (label-frequency baseline about {chance:.2f}), "
        f"mAUC {metrics['mAUC']:.3f}; {time.perf_counter() - start:.0f} s in all")
    return {"mAP": metrics["mAP"], "mAUC": metrics["mAUC"]}
