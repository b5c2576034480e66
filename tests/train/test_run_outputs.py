"""What a run tells its user: one epoch numbering in the log, history.json, results.json and
best.pt; TensorBoard curves on one axis (the optimiser step) with the recipe and the final
figures as hyper-parameters; where the normalisation statistics come from; the pace of the run,
and a GPU recipe on a CPU said to be one before its first step."""
import json
import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gnn_audio.cli.train import main, summary_line
from gnn_audio.data.readers.sources import get_source
from gnn_audio.train.recipe import get_recipe

from .conftest import tiny_args


@pytest.fixture(scope="module")
def run(tiny_fsd50k, tmp_path_factory):
    run = tmp_path_factory.mktemp("outputs") / "run"
    assert main(tiny_args(tiny_fsd50k, run)) == 0
    return run


def test_one_epoch_numbering_everywhere(run):
    import torch

    results = json.loads((run / "results.json").read_text())
    history = json.loads((run / "history.json").read_text())
    log = (run / "train.log").read_text()
    best = results["best_epoch"]
    assert best in (1, 2) and [h["epoch"] for h in history] == [1, 2]
    best_line = [h for h in history if h["val"]["crop"]["mAP"] == results["best_val_mAP"]]
    assert best_line[0]["epoch"] == best
    assert re.search(rf"epoch {best}/2: .*\(best\)", log)
    assert f"eval (crop, best epoch {best})" in log
    assert torch.load(run / "best.pt", weights_only=True)["extra"]["epoch"] == best
    assert f"best epoch {best}):" in summary_line(results)  # the line on stdout


def test_the_pace_and_the_time_left_are_told_in_the_first_epoch(run):
    log = (run / "train.log").read_text()
    assert log.count("pace: ") == 1
    line = log[log.index("pace: "):].splitlines()[0]
    assert log.index("pace: ") < log.index("epoch 1/2")
    assert re.search(r"pace: [\d.]+ s per step of 8 clips on cpu \(measured over \d step\(s\)\)"
                     r", peak memory [\d.]+ GiB resident: the \d+ steps left take about \d+ s, "
                     r"validation not included$", line), line
    assert "GPU" not in line  # the example recipe is sized for any machine


def test_tensorboard_curves_share_the_step_axis_and_hold_the_hparams(run):
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/epoch", "train/epoch_loss", "val/crop/mAP"} <= set(tags)
    steps_per_epoch = json.loads((run / "history.json").read_text())[0]["steps"]
    val_steps = [e.step for e in events.Scalars("val/crop/mAP")]
    assert val_steps == [steps_per_epoch, 2 * steps_per_epoch]  # the global step, not 1, 2
    assert [e.value for e in events.Scalars("train/epoch")] == [1.0, 2.0]
    assert [e.step for e in events.Scalars("train/epoch_loss")] == val_steps
    assert max(e.step for e in events.Scalars("train/loss")) == val_steps[-1]
    results = json.loads((run / "results.json").read_text())
    hp = events.Scalars("hparam/eval_crop_mAP")
    assert hp[-1].value == pytest.approx(results["eval"]["crop"]["mAP"])
    plugin = events.PluginTagToContent("hparams")
    assert plugin, "no hparams summary"
    content = b"".join(plugin.values())
    assert b"optim.lr" in content and b"data.fbank.target_length" in content


def test_the_log_and_config_say_which_statistics_normalise(run, tiny_fsd50k):
    config = json.loads((run / "config.json").read_text())
    norm = config["normalisation"]
    assert norm["asked"] == "compute" and "computed from" in norm["from"]
    assert norm["mean"] == config["recipe"]["data"]["fbank"]["norm_mean"]
    assert f"log-mel normalisation: mean {norm['mean']}" in (run / "train.log").read_text()


def test_a_paper_recipe_on_other_data_computes_its_statistics_by_default(tiny_fsd50k,
                                                                         tmp_path):
    """atgnn_fsd50k's statistics are FSD50K's: on a data set with another class list (the
    generated one) they are computed from its training split, and the run says so; the
    recipe also tells, before its first step, that it is a GPU recipe on a CPU."""
    assert get_recipe("atgnn_fsd50k").data.norm_stats == "auto"
    run = tmp_path / "run"
    args = tiny_args(tiny_fsd50k, run, "--max-steps", "2", epochs=1)
    args[args.index("example")] = "atgnn_fsd50k"
    assert main(args + ["--augment.mixup", "0"]) == 0
    config = json.loads((run / "config.json").read_text())
    norm = config["normalisation"]
    assert norm["asked"] == "auto"
    assert "not fsd50k's published one" in norm["from"] and norm["mean"] != -4.6476
    log = (run / "train.log").read_text()
    note = log.index("is sized for a GPU and this run is on the CPU")
    pace = log.index("pace: ")
    assert note < log.index("epoch 1/1") and note < pace
    assert "for a quick run on a CPU use --recipe example" in log[note:].splitlines()[0]
    assert re.search(r"pace: [\d.]+ s per step of 8 clips on cpu \(measured over \d step\(s\)"
                     r"\), peak memory [\d.]+ GiB resident; recipe atgnn_fsd50k is sized for "
                     r"a GPU", log)  # the run's last step: no time left to tell



def test_fsd50k_data_keep_the_published_statistics(tiny_fsd50k, monkeypatch):
    """``auto`` on a training split with FSD50K's own class list: the recipe's statistics."""
    from gnn_audio.labels.label_sets import load_label_set
    from gnn_audio.train import data as train_data

    options = {"data_dir": str(tiny_fsd50k)}
    store_like = type("Store", (), {})()
    store_like.label_set = load_label_set("fsd50k")
    store_like.__len__ = lambda: 10
    fb = get_recipe("atgnn_fsd50k").data.fbank
    out, why = train_data._normalisation("auto", fb, get_source("fsd50k"), store_like)
    assert out == fb and "the recipe's, computed on fsd50k" in why
    assert options  # the generated data's own class list differs (the test above)
