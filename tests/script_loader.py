"""Loading the scripts of ``benchmarks/`` and ``scripts/`` (not packages) as modules, for their
tests."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"


def load_benchmark(name: str, folder: Path = BENCH_DIR):
    """``benchmarks/<name>.py`` (or ``folder/<name>.py``) as the module ``name`` (once per
    session)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def load_script(name: str):
    """``scripts/<name>.py`` as the module ``name``."""
    return load_benchmark(name, ROOT / "scripts")
