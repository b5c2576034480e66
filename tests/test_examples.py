import re
import subprocess
import sys
from pathlib import Path


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
