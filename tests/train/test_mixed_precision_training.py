"""The full-width ATGNN-pyr-t trains in bf16 without a non-finite loss (slow: minutes on CPU)."""
import json

import pytest

from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like
from gnn_audio.cli.train import main


@pytest.mark.slow
def test_atgnn_pyr_t_trains_two_epochs_in_bf16(tmp_path):
    data = make_fsd50k_like(tmp_path / "data", num_clips=120, sample_rate=16000)
    run = tmp_path / "run"
    assert main(["--recipe", "example", "--data-dir", str(data), "--run-dir", str(run),
                 "--model-kwargs", '{"drop_path_rate": 0.1}', "--precision", "bf16",
                 "--epochs", "2", "--num-workers", "0", "--no-progress", "--device", "cpu",
                 "--augment.mixup", "0.5"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2
    assert all(h["train_loss"] == h["train_loss"] and h["train_loss"] < 1.0 for h in history)
    results = json.loads((run / "results.json").read_text())
    assert results["eval"]["crop"]["mAP"] == results["eval"]["crop"]["mAP"]  # not NaN
