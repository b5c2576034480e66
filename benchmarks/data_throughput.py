"""Clips per second per CPU core: wav -> features against store -> features.

Generates ``--clips`` 10-s 44.1 kHz mixtures (``gnn_audio.data.synthetic.signals``), builds a
16 kHz int16 :class:`~gnn_audio.data.store.WaveformStore` from them, then times
:class:`~gnn_audio.data.dataset.TaggingDataset` items in training mode (mixup p = 0.5 on
waveforms, SpecAugment 48 / 192, the FSD50K front-end: 1024 x 128 log-mel) in one process with
one torch thread, over

* the clip list: decode + resample every wav (and the mixup partner's), then features;
* the store: memory-mapped int16 waveforms, then features (KaldiFbank);
* the store with ``torchaudio.compliance.kaldi.fbank`` (:func:`gnn_audio.data.features.fbank`)
  instead of KaldiFbank, to show what the front-end costs.

Repeats are interleaved (each repeat runs every path once, a new epoch each time) and the median
is printed. Run:

    .venv/bin/python benchmarks/data_throughput.py [--clips 32] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gnn_audio.data.augment import AugmentConfig, mix, sample_mixup, spec_augment
from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.dataset import TaggingDataset, item_generator
from gnn_audio.data.features import FSD50K_FBANK, fbank
from gnn_audio.data.store import WaveformStore
from gnn_audio.data.synthetic.signals import mixture, write_wav
from gnn_audio.labels import LabelSet


def make_clips(root: Path, n: int, seconds: float, num_classes: int = 10) -> ClipList:
    rng = np.random.default_rng(0)
    labels = LabelSet("bench", tuple(f"/m/{c}" for c in range(num_classes)),
                      tuple(f"class {c}" for c in range(num_classes)))
    clips = []
    for i in range(n):
        x = mixture(seconds, 44100, {"tone": {"freq": float(rng.uniform(100, 4000)),
                                              "harmonics": 3}, "noise": {}, "chirp": {}}, seed=i)
        path = root / f"clip{i:04d}.wav"
        write_wav(path, x, 44100)
        chosen = rng.choice(num_classes, size=int(rng.integers(1, 4)), replace=False)
        clips.append(Clip(f"clip{i:04d}", str(path), tuple(sorted(int(c) for c in chosen))))
    return ClipList("train", labels, clips)


class KaldiStorePath:
    """Store -> mixup -> ``kaldi.fbank`` -> SpecAugment, the same steps as TaggingDataset."""

    def __init__(self, store: WaveformStore, augment: AugmentConfig, seed: int = 0) -> None:
        self.store, self.augment, self.seed, self.epoch = store, augment, seed, 0
        self.targets = torch.from_numpy(store.targets)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int):
        g = item_generator(self.seed, self.epoch, i)
        wav, target = self.store.waveform(i), self.targets[i]
        lam = sample_mixup(g, self.augment)
        if lam is not None:
            j = int(torch.randint(len(self.store), (1,), generator=g))
            wav = mix(wav, self.store.waveform(j), lam)
            target = mix(target, self.targets[j], lam, match_length=False)
        feats = spec_augment(fbank(wav, FSD50K_FBANK, normalize=False), self.augment, g)
        return (feats - FSD50K_FBANK.norm_mean) / FSD50K_FBANK.norm_std, target


def clips_per_second(dataset, epoch: int) -> tuple:
    """``(clips per wall-clock second, clips per CPU second of this process)``; on a busy
    machine the second is the per-core figure (one torch thread)."""
    dataset.set_epoch(epoch)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(len(dataset)):
        dataset[i]
    return (len(dataset) / (time.perf_counter() - wall),
            len(dataset) / (time.process_time() - cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build-workers", type=int, default=0)
    parser.add_argument("--dir", default=None, help="working folder (default: a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir or tmp)
        (root / "audio").mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        clips = make_clips(root / "audio", args.clips, args.seconds)
        print(f"generated {len(clips)} x {args.seconds:g}-s 44.1 kHz clips in "
              f"{time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        store = WaveformStore.build(clips, root / "store", num_workers=args.build_workers,
                                    progress=False)
        build = time.perf_counter() - t
        print(f"built {store} in {build:.1f} s ({len(clips) / build:.1f} clips/s, "
              f"{args.build_workers} workers)")

        torch.set_num_threads(1)
        augment = AugmentConfig()  # mixup 0.5 (Beta(10, 10)), freq mask 48, time mask 192
        paths = {
            "wav -> features": TaggingDataset(clips, FSD50K_FBANK, augment, train=True),
            "store -> features": TaggingDataset(store, FSD50K_FBANK, augment, train=True),
            "store -> features (kaldi.fbank)": KaldiStorePath(store, augment),
        }
        for dataset in paths.values():  # warm-up: page cache, lazy kernels
            for i in range(min(4, len(dataset))):
                dataset[i]
        rates = {name: [] for name in paths}
        for epoch in range(args.repeats):
            for name, dataset in paths.items():
                rates[name].append(clips_per_second(dataset, epoch))
        print(f"\none process, torch threads: {torch.get_num_threads()}, {len(clips)} clips, "
              f"median of {args.repeats} interleaved repeats (mixup 0.5 + SpecAugment on)")
        print(f"  {'':34s} {'per CPU s':>9s} {'per wall s':>10s}")
        cpu = {name: statistics.median(v[1] for v in values) for name, values in rates.items()}
        for name, values in rates.items():
            wall = statistics.median(v[0] for v in values)
            print(f"  {name:34s} {cpu[name]:9.1f} {wall:10.1f} clips/s   (per CPU s: "
                  f"{', '.join(f'{v[1]:.1f}' for v in values)})")
        ratio = cpu["store -> features"] / cpu["wav -> features"]
        print(f"  store / wav (per CPU s): {ratio:.2f}x")


if __name__ == "__main__":
    main()
