"""A tiny generated FSD50K-layout data set whose vocabulary is six real FSD50K classes (not the
generator's), and the command-line arguments of a tiny training run on it."""
from __future__ import annotations

import csv
import json
import multiprocessing
import socket
from pathlib import Path

import pytest

from gnn_audio.data.readers import read_fsd50k
from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like

#: ATGNN-pyr-t at a quarter of its widths on 64 frames x 32 mel: seconds per epoch on a CPU
TINY_MODEL = {"channels": [8, 16, 24, 32], "drop_path_rate": 0.0}


#: generated class -> a real FSD50K class (name, AudioSet MID) with the same place in the
#: hierarchy (the two parents, each with two or three children)
REAL_CLASSES = {
    "Harmonic_tone": ("Domestic_animals_and_pets", "/m/068hy"),
    "Deep_tone": ("Dog", "/m/0bt9lr"), "Mid_tone": ("Cat", "/m/01yrx"),
    "Glide": ("Musical_instrument", "/m/04szw"),
    "Falling_glide": ("Keyboard_(musical)", "/m/05148p4"),
    "Rising_glide": ("Plucked_string_instrument", "/m/0fx80y")}


def _relabel(root: Path) -> None:
    """Rewrite the ground truth with :data:`REAL_CLASSES` (vocabulary, dev.csv, eval.csv)."""
    gt = root / "FSD50K.ground_truth"
    rows = list(csv.reader(open(gt / "vocabulary.csv", newline="")))
    assert {r[1] for r in rows} == set(REAL_CLASSES), rows
    with open(gt / "vocabulary.csv", "w", newline="") as f:
        csv.writer(f).writerows([i, *REAL_CLASSES[name]] for i, name, _ in rows)
    for listing in ("dev.csv", "eval.csv"):
        rows = list(csv.reader(open(gt / listing, newline="")))
        out = [rows[0]]
        for row in rows[1:]:
            names = [REAL_CLASSES[n] for n in row[1].split(",")]
            out.append([row[0], ",".join(n for n, _ in names), ",".join(m for _, m in names),
                        *row[3:]])
        with open(gt / listing, "w", newline="") as f:
            csv.writer(f).writerows(out)


@pytest.fixture(scope="session")
def tiny_fsd50k(tmp_path_factory) -> Path:
    """43 clips (30 train / 4 val / 9 eval: an odd number of evaluation clips) of the six
    classes of :data:`REAL_CLASSES`."""
    root = tmp_path_factory.mktemp("tiny_fsd50k")
    make_fsd50k_like(root, num_clips=43, num_classes=6, class_seed=5, max_duration=5.0,
                     sample_rate=16000)
    _relabel(root)
    return root


def tiny_args(data_dir, run_dir, *extra, epochs: int = 2) -> list:
    return ["--recipe", "example", "--data-dir", str(data_dir), "--run-dir", str(run_dir),
            "--epochs", str(epochs), "--model-kwargs", json.dumps(TINY_MODEL),
            "--fbank.target-length", "64", "--fbank.num-mel-bins", "32", "--batch-size", "8",
            "--num-workers", "0", "--eval-batch-size", "8", "--no-progress", "--device", "cpu",
            *extra]


def split_size(root, split: str) -> int:
    return len(read_fsd50k(root, split))


#: the real multi-process tests fork the pytest process (spawned children cannot import test
#: functions under ``--import-mode=importlib``)
needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="needs the fork start method")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
