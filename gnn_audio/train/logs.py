"""What a person sees of a training run: lines on stderr and in ``RUN_DIR/train.log``, a tqdm
bar per epoch (steps/s, clips/s, loss), TensorBoard scalars in ``RUN_DIR/tensorboard`` (every
curve against the optimiser step, the epoch a curve of its own; the recipe and the final
figures in the HPARAMS tab) and a PNG of the training curves (``RUN_DIR/curves.png``: loss,
validation mAP, learning rate).

Only the main DDP rank writes; the other ranks get a logger that does nothing.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from gnn_audio.files import atomic_open

__all__ = ["RunLogger", "plot_curves", "format_duration", "flat_hparams"]


def format_duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``7.6 h``, ``3.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def flat_hparams(values: Dict[str, Any], prefix: str = "") -> Dict[str, Union[str, float,
                                                                              int, bool]]:
    """A nested mapping as the flat ``{"optim.lr": 5e-4, ...}`` TensorBoard's HPARAMS tab
    takes: numbers, strings and booleans as they are, anything else as its JSON text."""
    out: Dict[str, Union[str, float, int, bool]] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value)
    return out


class RunLogger:
    """Run log of the main rank (``enabled=False``: a silent stand-in for the others)."""

    def __init__(self, run_dir: Optional[Path], enabled: bool = True,
                 tensorboard: bool = True, progress: bool = True) -> None:
        self.enabled = enabled and run_dir is not None
        self.progress = progress and self.enabled
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._file = None
        self._writer = None
        if self.enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.run_dir / "train.log", "a", encoding="utf-8")
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(os.fspath(self.run_dir / "tensorboard"))

    def __call__(self, message: str) -> None:
        """One line to stderr and the log file, time-stamped in the file."""
        if not self.enabled:
            return
        print(message, file=sys.stderr, flush=True)
        self._file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {message}\n")
        self._file.flush()

    def scalars(self, values: Dict[str, float], step: int) -> None:
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)

    def hparams(self, recipe: Dict[str, Any], metrics: Dict[str, float], step: int) -> None:
        """The recipe (:meth:`~gnn_audio.train.recipe.Recipe.to_dict`, flattened) with the
        run's final figures, for TensorBoard's HPARAMS tab (in the run's own folder)."""
        if self._writer is not None:
            self._writer.add_hparams(flat_hparams(recipe), metrics, run_name=".",
                                     global_step=step)
            self._writer.flush()

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def bar(self, total: int, desc: str):
        """A tqdm bar on stderr (disabled off the main rank or with ``progress=False``)."""
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False,
                    dynamic_ncols=True, disable=not self.progress)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None


def plot_curves(history: List[dict], path: Path) -> None:
    """Three panels over epochs: training loss, validation mAP (each evaluation mode) and the
    learning rate at the end of the epoch; written atomically to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]  # counted from 1
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    axes[0].plot(epochs, [h["train_loss"] for h in history], "o-")
    axes[0].set(title="training loss (BCE)", xlabel="epoch")
    modes = sorted({m for h in history for m in h.get("val", {})})
    for mode in modes:
        axes[1].plot(epochs, [h["val"].get(mode, {}).get("mAP", float("nan"))
                              for h in history], "o-", label=mode)
    axes[1].set(title="validation mAP", xlabel="epoch")
    if modes:
        axes[1].legend()
    axes[2].plot(epochs, [h["lr"] for h in history], "o-")
    axes[2].set(title="learning rate (end of epoch)", xlabel="epoch", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    try:
        with atomic_open(path) as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)
