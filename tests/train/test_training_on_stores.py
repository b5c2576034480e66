"""Issue 9 acceptance: the waveform store changes nothing a model can see.

On a generated FSD50K-format data set, features from the store equal features from the source
wav files within :data:`~gnn_audio.data.store.FEATURE_TOLERANCE` (int16 per-clip peak scaling
adds rounding noise about 98 dB below the clip's peak, below the 16-bit source's own), and a
model trained on one gives the same eval mAP on the other within 0.002, both ways: trained on
source features and evaluated on store features, and trained on store features and evaluated on
source features.

The fast test trains a small CNN: ATGNN's outputs are not continuous in its input (a patch's k
nearest neighbours change under a 1e-3 shift of the features; measured: a trained tiny ATGNN's
logits move by up to 4.8 for source vs store features, 4.6 for a constant 1e-3 offset), so on a
small eval set its mAP moves by more than 0.002 for any perturbation, quantisation or not.
The slow test repeats the check on the default generated data set (500 clips, 400 frames).

Tolerances: ``int16`` waveforms within half a step (peak / 32767 / 2) of the decoded source, so
log-mel within :data:`FEATURE_TOLERANCE` (0.01 normalised units) on every bin within 60 dB of
the clip's loudest (the argument is in :mod:`gnn_audio.data.store`); ``float16`` keeps 11 bits
relative to each sample (rounding noise about 66 dB below the signal, not below the peak), so
its bins may move by up to 0.05 (measured here: 0.03).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, Tuple

import pytest
import torch
from torch import Tensor

from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.readers import read_fsd50k
from gnn_audio.data.store import FEATURE_TOLERANCE, WaveformStore
from gnn_audio.data.synthetic import SyntheticFSD50KConfig, make_fsd50k_like
from gnn_audio.metrics import tagging_metrics

MAP_TOLERANCE = 0.002
#: a small, short data set: 60 train + 60 eval clips of about 1.5 s (a large eval share: with
#: few eval clips one swapped rank moves the mAP by more than the tolerance)
SMALL = SyntheticFSD50KConfig(num_clips=120, num_classes=8, median_duration=1.5,
                              max_duration=4.0, split_fractions=(0.5, 0.0, 0.5), seed=4)
SMALL_FBANK = FbankConfig(target_length=200)

Split = Tuple[Tensor, Tensor]  # features [N, frames, mel], targets [N, S]


def _prepare(root: Path, config: SyntheticFSD50KConfig, fb: FbankConfig,
             dtype: str = "int16") -> Dict[str, Dict[str, Split]]:
    """``{"source" | "store": {"train" | "eval": (x, y)}}`` of a generated data set."""
    make_fsd50k_like(root / "data", config)
    out: Dict[str, Dict[str, Split]] = {"source": {}, "store": {}}
    for split in ("train", "eval"):
        clips = read_fsd50k(root / "data", split)
        store = WaveformStore.build(clips, root / f"store_{split}", dtype=dtype, progress=False)
        for kind, source in (("source", clips), ("store", store)):
            items = [TaggingDataset(source, fb)[i] for i in range(len(clips))]
            assert [c for _, _, c in items] == [c.clip_id for c in clips.clips]
            out[kind][split] = (torch.stack([f for f, _, _ in items]),
                                torch.stack([t for _, t, _ in items]))
        assert torch.equal(out["source"][split][1], out["store"][split][1])
    return out


def small_cnn(num_classes: int) -> torch.nn.Module:
    """Three conv blocks, max over time and frequency, a linear classifier (about 25k
    parameters); input ``[B, frames, mel]``."""
    def block(c_in: int, c_out: int) -> list:
        return [torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                torch.nn.BatchNorm2d(c_out), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]

    return torch.nn.Sequential(torch.nn.Unflatten(1, (1, -1)), *block(1, 16), *block(16, 32),
                               *block(32, 48), torch.nn.AdaptiveMaxPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(48, num_classes))


def _train(make_model: Callable[[int], torch.nn.Module], x: Tensor, y: Tensor, *, epochs: int,
           batch_size: int = 16, seed: int = 0) -> torch.nn.Module:
    """A plain loop: Adam 1e-3, binary cross-entropy, shuffled mini-batches."""
    torch.manual_seed(seed)
    model = make_model(y.size(1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(0, len(x) - 1, batch_size):  # BatchNorm needs 2 samples a batch
            idx = order[i:i + batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def _scores(model: torch.nn.Module, x: Tensor, batch_size: int = 32) -> Tensor:
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def _check_both_ways(data: Dict[str, Dict[str, Split]], make_model: Callable, epochs: int,
                     tolerance: float = MAP_TOLERANCE) -> dict:
    """Train on each of source / store, evaluate on both; return the mAPs."""
    torch.set_num_threads(1)
    maps = {}
    y_train, y_eval = data["source"]["train"][1], data["source"]["eval"][1]
    baseline = tagging_metrics(y_train.mean(0, keepdim=True).expand_as(y_eval), y_eval)["mAP"]
    for trained_on in ("source", "store"):
        model = _train(make_model, *data[trained_on]["train"], epochs=epochs)
        scores = {kind: _scores(model, data[kind]["eval"][0]) for kind in ("source", "store")}
        # the model is not constant: a vacuous equality would prove nothing
        assert float(scores["source"].std(0).min()) > 1e-4
        for kind in ("source", "store"):
            maps[trained_on, kind] = tagging_metrics(scores[kind], y_eval)["mAP"]
        diff = abs(maps[trained_on, "source"] - maps[trained_on, "store"])
        assert diff <= tolerance, (trained_on, maps)
    maps["baseline"] = baseline
    return maps


def _format(maps: dict) -> str:
    return ", ".join(f"{k if isinstance(k, str) else ' on '.join(k)} {v:.4f}"
                     for k, v in maps.items())


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Dict[str, Dict[str, Split]]:
    return _prepare(tmp_path_factory.mktemp("store_training"), SMALL, SMALL_FBANK)


def test_store_features_equal_source_features(tmp_path):
    """Every clip of a generated split, full length (no padding): within the store's stated
    tolerance on every bin within 60 dB of the clip's loudest, small everywhere."""
    root = make_fsd50k_like(tmp_path / "data",
                            SMALL.replace(num_clips=20, split_fractions=(0.7, 0.1, 0.2)))
    clips = read_fsd50k(root, "train")
    fb = SMALL_FBANK.replace(target_length=None)
    for dtype, tolerance in (("int16", FEATURE_TOLERANCE), ("float16", 0.05)):
        store = WaveformStore.build(clips, tmp_path / dtype, dtype=dtype, progress=False)
        a, b = TaggingDataset(clips, fb), TaggingDataset(store, fb)
        for i, clip in enumerate(clips.clips):
            wa, wb = a.waveform(i), b.waveform(i)
            assert wa.shape == wb.shape
            if dtype == "int16":  # half a step of peak / 32767, plus float32 rounding
                peak = float(wa.abs().max())
                assert float((wa - wb).abs().max()) <= peak * (0.5 / 32767 + 4 * 2.0 ** -24)
            fa, fb_ = a.features(wa), b.features(wb)  # what a[i] returns, without decoding again
            assert fa.shape == fb_.shape == (1 + (len(wa) - 400) // 160, 128)
            diff = (fa - fb_).abs()
            power = fa * fb.norm_std + fb.norm_mean  # natural-log mel power
            within_60db = power > power.max() - 6 * math.log(10)
            assert within_60db.float().mean() > 0.5, clip.clip_id
            assert float(diff[within_60db].max()) < tolerance, (dtype, clip.clip_id)
            assert float(diff.mean()) < tolerance / 10, (dtype, clip.clip_id)


def test_trained_model_map_same_on_store_and_source_both_ways(small):
    maps = _check_both_ways(small, small_cnn, epochs=8)
    print(_format(maps))
    # trained, not random: both models beat the label-frequency baseline
    assert min(maps["source", "source"], maps["store", "store"]) > maps["baseline"] + 0.05, maps


@pytest.mark.slow
def test_trained_model_map_same_on_default_data_set(tmp_path):
    """The thorough version: the default generated data set (500 clips: 350 train, 100 eval)
    at 400 frames, the small CNN trained 8 epochs (minutes on one CPU core)."""
    data = _prepare(tmp_path, SyntheticFSD50KConfig(), FbankConfig(target_length=400))
    maps = _check_both_ways(data, small_cnn, epochs=8)
    print(_format(maps))
    # the model learned something: both trained models beat the label-frequency baseline
    assert min(maps["source", "source"], maps["store", "store"]) > maps["baseline"] + 0.1
