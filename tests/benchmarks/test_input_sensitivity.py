"""benchmarks/input_sensitivity.py: no noise moves no score (the features are computed the same
way every time), noise moves them, and the table and JSON are written."""
import json

import pytest

from ..script_loader import load_benchmark

sensitivity = load_benchmark("input_sensitivity")


def test_sensitivity_table(fsd50k_checkpoint, tmp_path, capsys):
    root, ckpt = fsd50k_checkpoint
    out = tmp_path / "sens.json"
    assert sensitivity.main(["--checkpoint", str(ckpt), "--data-dir", str(root), "--levels",
                             "0", "1e-2", "--max-clips", "4", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| checkpoint | noise on | level |"), table
    assert table.count("\n") == 6, table
    result = json.loads(out.read_text())["results"][0]
    assert result["clips"] == 4 and 0 <= result["mAP"] <= 1
    for where in ("waveform", "logmel"):
        none, some = result[where]["0"], result[where]["0.01"]
        assert none == {"max_score_change": 0.0, "mean_score_change": 0.0,
                        "share_moved_over_0.01": 0.0, "mAP_change": 0.0}
        assert some["max_score_change"] > 0 and some["mean_score_change"] > 0
        assert some["max_score_change"] >= some["mean_score_change"]
        assert abs(some["mAP_change"]) <= 1


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as err:
        sensitivity.main(["--data-dir", "x"])
    assert err.value.code == 2
