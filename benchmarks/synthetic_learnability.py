"""How learnable is the generated FSD50K-format data set? Generate it, train small models for a
few epochs on the train split, and print their eval mAP next to the label-frequency baseline.

The generator is tuned so that a small ATGNN lands between the baseline and a perfect score
(aim: eval mAP 0.5-0.9 after a few epochs). CPU-sized defaults::

    python benchmarks/synthetic_learnability.py --models atgnn_pyr_t,atgnn_pyr_t_nomlg \\
        --channels 24,48,96,192 --epochs 5
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import torch

from gnn_audio.data.audio import load_audio
from gnn_audio.data.features import FbankConfig, fbank
from gnn_audio.data.readers import read_fsd50k
from gnn_audio.data.synthetic.fsd50k import SyntheticFSD50KConfig, make_fsd50k_like
from gnn_audio.metrics import tagging_metrics
from gnn_audio.zoo import create_model


def features(root: Path, split: str, config: FbankConfig):
    """``(x [N, frames, mel], y [N, S], label names)`` of one split."""
    clips = read_fsd50k(root, split)
    x = torch.stack([fbank(load_audio(c.path, config.sample_rate), config)
                     for c in clips.clips])
    return x, torch.from_numpy(clips.targets()), clips.label_set.names


def train_and_eval(name: str, data: dict, num_classes: int, label_names, args,
                   channels: Optional[List[int]]) -> dict:
    torch.manual_seed(args.seed)
    kwargs = dict(num_classes=num_classes, label_names=list(label_names))
    if name.startswith("atgnn"):
        kwargs["drop_path_rate"] = 0.0
        if channels:
            kwargs["channels"] = channels
    model = create_model(name, **kwargs)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x, y = data["train"]
    history = []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(args.seed + epoch))
        total = 0.0
        for i in range(0, len(x), args.batch_size):
            idx = order[i:i + args.batch_size]
            if len(idx) < 2:  # BatchNorm needs 2 samples
                continue
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        result = evaluate(model, *data["eval"], args.batch_size)
        history.append(result["mAP"])
        print(f"  {name} epoch {epoch}: train loss {total / len(x):.4f}  eval mAP "
              f"{result['mAP']:.3f}  mAUC {result['mAUC']:.3f}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return dict(name=name, params=params, history=history, seconds=time.perf_counter() - start)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict:
    model.eval()
    scores = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return tagging_metrics(scores, y)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("data")
    g.add_argument("--root", type=Path, default=None,
                   help="data-set folder (default: a temporary folder)")
    g.add_argument("--num-clips", type=int, default=500)
    g.add_argument("--num-classes", type=int, default=SyntheticFSD50KConfig.num_classes)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--frames", type=int, default=400, help="log-mel frames (10 ms each)")
    g.add_argument("--mel", type=int, default=128, help="mel bins")
    g.add_argument("--cache-features", action="store_true",
                   help="keep the log-mel features in the data-set folder and reuse them")
    g = p.add_argument_group("training")
    g.add_argument("--models", default="atgnn_pyr_t,atgnn_pyr_t_nomlg",
                   help="comma-separated zoo names")
    g.add_argument("--channels", default="24,48,96,192",
                   help="ATGNN stage widths ('' for the variant's own)")
    g.add_argument("--epochs", type=int, default=5)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = None
    if args.root is None:
        tmp = tempfile.TemporaryDirectory(prefix="synthetic_fsd50k_")
        args.root = Path(tmp.name)
    config = SyntheticFSD50KConfig(num_clips=args.num_clips, num_classes=args.num_classes,
                                   seed=args.seed)
    start = time.perf_counter()
    make_fsd50k_like(args.root, config)
    print(f"generated {args.num_clips} clips in {time.perf_counter() - start:.1f} s "
          f"-> {args.root}")
    fb = FbankConfig(target_length=args.frames, num_mel_bins=args.mel)
    start = time.perf_counter()
    cache = args.root / f"features_{args.frames}x{args.mel}.pt"
    if args.cache_features and cache.is_file():
        data, names = torch.load(cache, weights_only=True).values()
        data = {k: tuple(v) for k, v in data.items()}
    else:
        data = {}
        for split in ("train", "eval"):
            x, y, names = features(args.root, split, fb)
            data[split] = (x, y)
        if args.cache_features:
            tmp_path = cache.with_name(f".{cache.name}.tmp")
            torch.save({"data": data, "names": list(names)}, tmp_path)
            os.replace(tmp_path, cache)
    print(f"features {fb.target_length} x {fb.num_mel_bins} for "
          f"{sum(len(v[0]) for v in data.values())} clips in {time.perf_counter() - start:.1f} s"
          f" (train {len(data['train'][0])}, eval {len(data['eval'][0])})")
    y_train, y_eval = data["train"][1], data["eval"][1]
    print(f"labels per clip: train {float(y_train.sum(1).mean()):.2f}, "
          f"eval {float(y_eval.sum(1).mean()):.2f}")
    freq = y_train.mean(0, keepdim=True).expand_as(y_eval)
    baseline = tagging_metrics(freq, y_eval)["mAP"]
    print(f"label-frequency baseline: eval mAP {baseline:.3f}")

    channels = [int(c) for c in args.channels.split(",")] if args.channels else None
    results = [train_and_eval(name, data, y_train.size(1), names, args, channels)
               for name in args.models.split(",") if name]
    print("\nmodel                 params   best / last eval mAP   time")
    for r in results:
        print(f"{r['name']:<20} {r['params'] / 1e6:6.2f}M   {max(r['history']):.3f} / "
              f"{r['history'][-1]:.3f}          {r['seconds']:.0f} s")
    print(f"label-frequency baseline        {baseline:.3f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
