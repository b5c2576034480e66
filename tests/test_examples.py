import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


def run_example(name, *args, timeout=300):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_reuse_layers_learns():
    out = run_example("reuse_layers.py", "--steps", "80")
    acc = float(re.search(r"final test accuracy ([0-9.]+)", out).group(1))
    assert acc > 0.6  # chance is 0.25 (four shapes)


def test_train_audioset_help_lists_the_recipes():
    out = run_example("train_audioset.py", "--help", timeout=120)
    assert "--train-csv" in out and "atgnn_audioset" in out and "--eval-mode" in out


@pytest.mark.slow
def test_train_fsd50k_default_run(tmp_path):
    """The README's first command: generated data, the small recipe, well above the
    label-frequency baseline (about 5 minutes on two idle cores)."""
    run = tmp_path / "run"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train_fsd50k.py"),
                           "--run-dir", str(run), "--no-progress"], capture_output=True,
                          text=True, timeout=1800, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((run / "results.json").read_text())
    baseline = results["label_frequency_baseline_mAP"]
    assert results["eval"]["crop"]["mAP"] > 2 * baseline
    assert results["eval"]["windows"]["mAP"] > 2 * baseline
