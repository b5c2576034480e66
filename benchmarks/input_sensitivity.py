"""How much a trained tagger's scores move when its input changes by a little: what a
difference in the third decimal of an mAP means.

ATGNN builds its graphs from the kNN of L2-normalised patch features, and a neighbour swaps
under changes of the input far below anything audible; a swapped neighbour changes a max over
edges, and the scores follow. The authors' code, given the same weights, does the same: it is
the architecture, not the implementation. This script measures it: for each checkpoint, the
crop-mode scores of the evaluation split (the papers' protocol: the first window of each clip)
on the clean waveforms and on the waveforms plus Gaussian noise of each level (absolute, in
full-scale units: 1e-5 is about 90 dB below a full-scale sine), and, for reference, on the
log-mel input plus noise of the same levels (normalised units). Printed per level: the largest
and the mean change of a score, the share of scores that move by more than 0.01, and the change
of the split's mAP (one draw of the noise per level; ``--draws`` averages more).

    .venv/bin/python benchmarks/input_sensitivity.py --checkpoint RUN/best.pt [RUN2/best.pt]
        --data-dir FSD50K_DIR [--split eval] [--levels 1e-7 1e-6 1e-5 1e-4 1e-3] [--json OUT]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.readers.sources import get_source
from gnn_audio.metrics import tagging_metrics
from gnn_audio.zoo import bundle_of, load_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import write_json  # noqa: E402

LEVELS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3)


def _scores(model: torch.nn.Module, inputs: List[torch.Tensor], batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            out.append(torch.sigmoid(model(torch.stack(inputs[i:i + batch_size]))).numpy())
    return np.concatenate(out).astype(np.float64)


def _change(clean: np.ndarray, noisy: np.ndarray, targets: np.ndarray) -> Dict[str, float]:
    diff = np.abs(noisy - clean)
    return {"max_score_change": float(diff.max()), "mean_score_change": float(diff.mean()),
            "share_moved_over_0.01": float((diff > 0.01).mean()),
            "mAP_change": float(tagging_metrics(noisy, targets)["mAP"]
                                - tagging_metrics(clean, targets)["mAP"])}


def measure(checkpoint: str, data_dir: str, split: str = "eval",
            levels: Sequence[float] = LEVELS, draws: int = 1, batch_size: int = 16,
            max_clips: Optional[int] = None, seed: int = 0) -> Dict[str, object]:
    """The sensitivity of one checkpoint (see the module docstring)."""
    model = load_model(checkpoint).eval()
    fb = bundle_of(model).require_logmel(checkpoint).fbank
    clips = get_source("fsd50k").read({"data_dir": data_dir}, split)
    data = TaggingDataset(clips, fb)
    n = len(data) if max_clips is None else min(len(data), max_clips)
    waves = [data.waveform(i) for i in range(n)]
    targets = np.stack([data.targets[i].numpy() for i in range(n)])
    feats = [data.features(w) for w in waves]
    clean = _scores(model, feats, batch_size)
    result: Dict[str, object] = {
        "checkpoint": str(checkpoint), "model": bundle_of(model).name, "clips": n,
        "mAP": float(tagging_metrics(clean, targets)["mAP"]), "waveform": {}, "logmel": {}}
    gen = torch.Generator().manual_seed(seed)
    for level in levels:
        for where in ("waveform", "logmel"):
            rows = []
            for _ in range(draws):
                if where == "waveform":
                    noisy = [data.features(w + level * torch.randn(w.shape, generator=gen))
                             for w in waves]
                else:
                    noisy = [x + level * torch.randn(x.shape, generator=gen) for x in feats]
                rows.append(_change(clean, _scores(model, noisy, batch_size), targets))
            result[where][f"{level:g}"] = {k: float(np.mean([r[k] for r in rows]))
                                           for k in rows[0]}
    return result


def print_table(results: Sequence[Dict[str, object]]) -> None:
    print("| checkpoint | noise on | level | max score change | mean score change | "
          "scores moved > 0.01 | mAP change |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        name = f"{Path(str(r['checkpoint'])).parent.name} (mAP {r['mAP']:.4f}, {r['clips']} clips)"
        for where in ("waveform", "logmel"):
            for level, m in r[where].items():
                print(f"| {name} | {where} | {level} | {m['max_score_change']:.4f} | "
                      f"{m['mean_score_change']:.5f} | {100 * m['share_moved_over_0.01']:.2f} % "
                      f"| {m['mAP_change']:+.4f} |")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", nargs="+", required=True, help="gnn_audio checkpoints")
    p.add_argument("--data-dir", required=True, help="an FSD50K-layout folder")
    p.add_argument("--split", default="eval", choices=["train", "val", "eval"])
    p.add_argument("--levels", type=float, nargs="+", default=list(LEVELS))
    p.add_argument("--draws", type=int, default=1, help="noise draws averaged per level")
    p.add_argument("--max-clips", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", default=None, help="write the figures as JSON")
    args = p.parse_args(argv)
    results = [measure(c, args.data_dir, args.split, args.levels, args.draws, args.batch_size,
                       args.max_clips) for c in args.checkpoint]
    print_table(results)
    if args.json:
        write_json(args.json, {"results": results, "torch": torch.__version__,
                               "threads": torch.get_num_threads()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
