"""Writers of small data-set listings in the exact formats the readers take (FSD50K
ground-truth CSVs with the csv module's quoting, tiny wav files)."""
from __future__ import annotations

import csv
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
import soundfile as sf

from gnn_audio.data.readers import DataError

LAYOUTS = {"FSD50K": ("FSD50K.ground_truth", "FSD50K.dev_audio", "FSD50K.eval_audio"),
           "plain": ("ground_truth", "dev_audio", "eval_audio")}


def one_line_error(call, prefix: str, reason: str) -> str:
    """Run ``call()``: it must raise :class:`DataError` with a one-line message that starts
    with ``prefix`` (the file, and line) and contains ``reason``. Returns the message."""
    with pytest.raises(DataError) as err:
        call()
    msg = str(err.value)
    assert msg.startswith(prefix) and reason in msg and "\n" not in msg, msg
    return msg


def write_tiny_wav(path: Path, sample_rate: int = 44100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(64, dtype=np.float32), sample_rate)  # format from the suffix


def random_vocabulary(num_classes: int, seed: int = 0) -> List[Tuple[str, str]]:
    """``(mid, name)`` pairs with ids and names unlike FSD50K's."""
    rng = random.Random(seed)
    return [(f"/x/{rng.randrange(16 ** 5):05x}{i}", f"Sound_{chr(65 + i % 26)}{i}")
            for i in range(num_classes)]


def random_labels(names: Sequence[str], num_clips: int, seed: int) -> Dict[str, List[str]]:
    """``fname -> mids`` (1-4 labels each, in random order)."""
    rng = random.Random(seed)
    return {str(10000 + rng.randrange(90000) * 100 + i): rng.sample(list(names), rng.randint(1, 4))
            for i in range(num_clips)}


def write_fsd50k(root: Path, vocab: Sequence[Tuple[str, str]], dev: Dict[str, List[str]],
                 splits: Dict[str, str], eval_: Dict[str, List[str]], layout: str = "FSD50K",
                 audio: bool = True) -> Dict[str, Path]:
    """Write an FSD50K-format directory; vocabulary rows are written in shuffled order with
    their indices. Returns the paths of the ground-truth files and audio folders."""
    gt_name, dev_name, eval_name = LAYOUTS[layout]
    gt, dev_dir, eval_dir = root / gt_name, root / dev_name, root / eval_name
    for d in (gt, dev_dir, eval_dir):
        d.mkdir(parents=True, exist_ok=True)
    name_of = dict(vocab)
    order = list(enumerate(vocab))
    random.Random(1).shuffle(order)
    with open(gt / "vocabulary.csv", "w", newline="") as f:
        w = csv.writer(f)
        for i, (mid, name) in order:
            w.writerow([i, name, mid])
    with open(gt / "dev.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fname", "labels", "mids", "split"])
        for fname, mids in dev.items():
            w.writerow([fname, ",".join(name_of[m] for m in mids), ",".join(mids), splits[fname]])
    with open(gt / "eval.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fname", "labels", "mids"])
        for fname, mids in eval_.items():
            w.writerow([fname, ",".join(name_of[m] for m in mids), ",".join(mids)])
    if audio:
        for fname in dev:
            write_tiny_wav(dev_dir / f"{fname}.wav")
        for fname in eval_:
            write_tiny_wav(eval_dir / f"{fname}.wav")
    return {"vocabulary": gt / "vocabulary.csv", "dev": gt / "dev.csv", "eval": gt / "eval.csv",
            "dev_audio": dev_dir, "eval_audio": eval_dir}


@pytest.fixture
def small_fsd50k(tmp_path):
    """A 9-class FSD50K-format set: 24 dev clips (train/val) and 8 eval clips."""
    vocab = random_vocabulary(9, seed=3)
    mids = [m for m, _ in vocab]
    dev = random_labels(mids, 24, seed=4)
    splits = {f: ("val" if i % 4 == 0 else "train") for i, f in enumerate(dev)}
    eval_ = random_labels(mids, 8, seed=5)
    paths = write_fsd50k(tmp_path, vocab, dev, splits, eval_)
    return dict(root=tmp_path, vocab=vocab, dev=dev, splits=splits, eval=eval_, paths=paths)


@pytest.fixture
def listing_tools():
    """The writers above, for tests (test modules cannot import this conftest)."""
    return SimpleNamespace(write_fsd50k=write_fsd50k, write_tiny_wav=write_tiny_wav,
                           random_vocabulary=random_vocabulary, random_labels=random_labels,
                           one_line_error=one_line_error)
