"""``gnn-audio prepare --stats`` and training read one layout: the stores training builds are
those prepare built (``STORE_DIR/SPLIT_RATE``, found up to date), and a run whose log-mel
normalisation is computed takes the statistics prepare wrote (``STORE_DIR/norm_stats.json``)
when they are those of its training store under its front-end."""
import json
import shutil

from gnn_audio.cli import main as gnn_audio_main
from gnn_audio.cli.train import main

from .conftest import tiny_args


def test_training_reads_the_stores_and_statistics_of_prepare(tiny_fsd50k, tmp_path, capsys):
    data, stores = tmp_path / "data", tmp_path / "stores"
    shutil.copytree(tiny_fsd50k, data, ignore=shutil.ignore_patterns("gnn_audio_stores"))
    assert gnn_audio_main(["prepare", "--data-dir", str(data), "--out", str(stores),
                           "--stats", "--quiet"]) == 0
    stats = json.loads((stores / "norm_stats.json").read_text())
    # 128 mel bins: the settings prepare --stats computes with (FSD50K's front-end)
    args = tiny_args(data, tmp_path / "run", "--store-dir", str(stores),
                     "--fbank.num-mel-bins", "128", "--max-steps", "1", epochs=1)
    capsys.readouterr()
    assert main(args) == 0
    log = capsys.readouterr().err
    assert log.count("(up to date)") == 3, log  # train, val, eval: nothing decoded again
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    norm = config["normalisation"]
    assert (norm["mean"], norm["std"]) == (round(stats["norm_mean"], 4),
                                           round(stats["norm_std"], 4))
    assert "norm_stats.json (gnn-audio prepare --stats)" in norm["from"]
    # another front-end (32 mel bins) does not take them: the run computes its own
    assert main(tiny_args(data, tmp_path / "run32", "--store-dir", str(stores),
                          "--max-steps", "1", epochs=1)) == 0
    norm = json.loads((tmp_path / "run32" / "config.json").read_text())["normalisation"]
    assert norm["from"] == "computed from 30 of the training split's 30 clips", norm
