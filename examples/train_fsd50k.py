"""Train a tagger on FSD50K (or any folder in FSD50K's layout) with the published recipes.

With no arguments it generates the default FSD50K-format data set (16 generated sound classes
with a two-level hierarchy, 500 clips; cached under ~/.cache/gnn_audio/datasets) and trains a
small ATGNN (recipe ``example``) that finishes on two CPU cores in minutes, then prints the
evaluation mAP next to the label-frequency baseline. With ``--data-dir`` it runs the ATGNN
paper's FSD50K recipe (``atgnn_fsd50k``) unless ``--recipe`` says otherwise::

    python examples/train_fsd50k.py                                   # generated data, CPU
    python examples/train_fsd50k.py --data-dir /data/FSD50K --pretrained-vig pvig_s_82.1.pth.tar
    torchrun --nproc_per_node 4 examples/train_fsd50k.py --data-dir /data/FSD50K
    python examples/train_fsd50k.py --resume runs/atgnn_fsd50k-20261121-101500
    python examples/train_fsd50k.py --data-dir D --recipe cnn10_fsd50k --precision bf16
    python examples/train_fsd50k.py --help                            # every recipe option

The run directory holds config.json, train.log, tensorboard/, curves.png, last.pt, best.pt
and results.json (see gnn_audio/train/trainer.py).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def default_data_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "gnn_audio" / "datasets" / "synthetic_fsd50k_v1"


def prepare(args) -> None:
    """No --data-dir and no --resume: generate (once) the default data set and train the small
    ``example`` recipe on it."""
    if args.resume or getattr(args, "data_dir", None):
        return
    from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like

    root = default_data_dir()
    print(f"no --data-dir: using the generated FSD50K-format data set in {root}",
          file=sys.stderr)
    make_fsd50k_like(root, progress=not args.no_progress)
    args.data_dir = str(root)
    if args.recipe == "atgnn_fsd50k":
        args.recipe = "example"


if __name__ == "__main__":
    from gnn_audio.cli.train import main

    sys.exit(main(prog="train_fsd50k.py", default_recipe="atgnn_fsd50k", prepare=prepare))
