"""``gnn-audio prepare`` end to end on a tiny FSD50K-layout folder written here."""
import json

import numpy as np

from gnn_audio.cli import main
from gnn_audio.data.stats import compute_norm_stats
from gnn_audio.data.store import WaveformStore
from gnn_audio.data.synthetic.signals import mixture, write_wav

VOCAB = [("Bark", "/m/05tny_"), ("Dog", "/m/0bt9lr"), ("Music", "/m/04rlf")]


def _fsd50k(root):
    gt = root / "FSD50K.ground_truth"
    dev, ev = root / "FSD50K.dev_audio", root / "FSD50K.eval_audio"
    for d in (gt, dev, ev):
        d.mkdir(parents=True)
    (gt / "vocabulary.csv").write_text("".join(f"{i},{n},{m}\n" for i, (n, m) in enumerate(VOCAB)))
    rows = [("101", [0, 1], "train"), ("102", [2], "train"), ("103", [1], "val"),
            ("104", [0, 1, 2], "train")]
    lines = ["fname,labels,mids,split"]
    for k, (fname, labels, split) in enumerate(rows):
        names = ",".join(VOCAB[c][0] for c in labels)
        mids = ",".join(VOCAB[c][1] for c in labels)
        lines.append(f'{fname},"{names}","{mids}",{split}')
        write_wav(dev / f"{fname}.wav", mixture(0.5 + 0.2 * k, 44100, {"tone": {}}, seed=k), 44100)
    (gt / "dev.csv").write_text("\n".join(lines) + "\n")
    (gt / "eval.csv").write_text(f'fname,labels,mids\n201,"{VOCAB[2][0]}","{VOCAB[2][1]}"\n')
    write_wav(ev / "201.wav", mixture(0.4, 44100, {"noise": {}}, seed=9), 44100)
    return rows


def test_prepare_builds_one_store_per_split_and_stats(tmp_path, capsys):
    rows = _fsd50k(tmp_path / "FSD50K")
    out = tmp_path / "stores"
    assert main(["prepare", "--data-dir", str(tmp_path / "FSD50K"), "--out", str(out),
                 "--stats", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "train: 3 clips, 3 classes" in text and "val: 1 clips" in text
    assert "eval: 1 clips" in text and "norm_mean" in text
    train = WaveformStore(out / "train")
    assert list(train.clip_ids) == ["101", "102", "104"]
    assert train.label_set.mids == tuple(m for _, m in VOCAB)
    expected = np.zeros((3, 3), dtype=np.float32)
    for k, (_, labels, _) in enumerate(r for r in rows if r[2] == "train"):
        expected[k, labels] = 1
    np.testing.assert_array_equal(train.targets, expected)
    assert WaveformStore(out / "eval").labels(0) == (2,)
    stats = json.loads((out / "norm_stats.json").read_text())
    mean, std = compute_norm_stats(train)
    assert abs(stats["norm_mean"] - mean) < 1e-9 and abs(stats["norm_std"] - std) < 1e-9
    # running again finds every store up to date
    assert main(["prepare", "--data-dir", str(tmp_path / "FSD50K"), "--out", str(out),
                 "--splits", "train", "--quiet"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_prepare_reports_a_bad_file_in_one_line(tmp_path, capsys):
    _fsd50k(tmp_path / "FSD50K")
    bad = tmp_path / "FSD50K" / "FSD50K.dev_audio" / "102.wav"
    bad.write_bytes(b"not audio at all")
    args = ["prepare", "--data-dir", str(tmp_path / "FSD50K"), "--out", str(tmp_path / "s"),
            "--splits", "train", "--quiet"]
    assert main(args) == 1  # a data failure (usage mistakes exit 2)
    err = capsys.readouterr().err
    assert "102.wav" in err and err.count("\n") == 1
    assert main(args + ["--skip-bad", "--workers", "2"]) == 0
    assert "1 skipped" in capsys.readouterr().out
    assert "102.wav" in (tmp_path / "s" / "train" / "skipped.txt").read_text()


def test_prepare_stats_without_train_is_a_usage_error(tmp_path, capsys):
    args = ["prepare", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "s"),
            "--splits", "eval", "--stats", "--quiet"]
    assert main(args) == 2
    assert "--stats needs the train split" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before any work
