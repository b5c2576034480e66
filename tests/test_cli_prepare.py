"""``gnn-audio prepare`` end to end on a tiny FSD50K-layout folder written here, on datafiles and
on embedding TFRecords: it writes the stores training and ``gnn-audio eval`` read."""
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
    # the layout training reads: STORE_DIR/SPLIT_RATE
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "eval_16000", "train_16000", "val_16000"]
    train = WaveformStore(out / "train_16000")
    assert list(train.clip_ids) == ["101", "102", "104"]
    assert train.label_set.mids == tuple(m for _, m in VOCAB)
    expected = np.zeros((3, 3), dtype=np.float32)
    for k, (_, labels, _) in enumerate(r for r in rows if r[2] == "train"):
        expected[k, labels] = 1
    np.testing.assert_array_equal(train.targets, expected)
    assert WaveformStore(out / "eval_16000").labels(0) == (2,)
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
    assert "102.wav" in (tmp_path / "s" / "train_16000" / "skipped.txt").read_text()


def test_prepare_stats_without_train_is_a_usage_error(tmp_path, capsys):
    args = ["prepare", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "s"),
            "--splits", "eval", "--stats", "--quiet"]
    assert main(args) == 2
    assert "--stats needs the train split" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused before any work


def test_prepare_writes_the_stores_training_reads(tmp_path, capsys):
    """Without --store-dir the stores go where training puts them (DATA_DIR/gnn_audio_stores),
    and training's store building then finds every split up to date."""
    from gnn_audio.data.readers import get_source
    from gnn_audio.train.data import DataPaths, build_split_store, store_folder

    root = tmp_path / "FSD50K"
    _fsd50k(root)
    assert main(["prepare", "--data-dir", str(root), "--sample-rate", "8000", "--quiet"]) == 0
    assert f"-> {root / 'gnn_audio_stores' / 'train_8000'}" in capsys.readouterr().out
    source, paths = get_source("fsd50k"), DataPaths(data_dir=str(root))
    for split in ("train", "val", "eval"):
        assert store_folder(paths, source, split, 8000) == root / "gnn_audio_stores" / \
            f"{split}_8000"
        store = build_split_store(source.read(paths.options, split), split, paths, source, 8000,
                                  progress=False, log=None)
        assert store.report.up_to_date, split


def test_prepare_datafiles_and_embeddings(tmp_path, capsys):
    import csv

    from gnn_audio.data.audioset_embeddings import write_embedding_records
    from gnn_audio.data.readers import read_fsd50k

    root = tmp_path / "FSD50K"
    _fsd50k(root)
    labels = read_fsd50k(root, "train").label_set
    with open(tmp_path / "classes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "display_name"])
        w.writerows([i, m, n] for i, (m, n) in enumerate(zip(labels.mids, labels.names)))
    for split in ("train", "eval"):
        data = [{"wav": c.path, "labels": ",".join(labels.mids[i] for i in c.labels)}
                for c in read_fsd50k(root, split).clips]
        (tmp_path / f"{split}.json").write_text(json.dumps({"data": data}))
    stores = tmp_path / "stores"
    assert main(["prepare", "--train-datafile", str(tmp_path / "train.json"),
                 "--eval-datafile", str(tmp_path / "eval.json"), "--class-csv",
                 str(tmp_path / "classes.csv"), "--store-dir", str(stores), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["train", "eval"]  # no validation split
    assert WaveformStore(stores / "train_16000").label_set.mids == labels.mids
    # embeddings: nothing to decode, said in one line; what was found on stdout
    write_embedding_records(tmp_path / "train.tfrecord",
                            [(f"v{i}", 0.0, 10.0, [i % 5], np.zeros((10, 128), np.float32))
                             for i in range(6)])
    assert main(["prepare", "--data", "embeddings", "--train-records",
                 str(tmp_path / "train.tfrecord"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "nothing to decode" in captured.err
    assert captured.out == f"train: 6 clips, 527 classes <- {tmp_path / 'train.tfrecord'}\n"


def test_prepare_options_that_name_no_data_set_are_usage_errors(tmp_path, capsys):
    assert main(["prepare", "--store-dir", str(tmp_path / "s")]) == 2
    assert "cannot tell the data source" in capsys.readouterr().err
    assert main(["prepare", "--data", "audioset", "--train-csv", "t.csv",
                 "--eval-datafile", "e.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--audio-dir is required" in err
    assert not (tmp_path / "s").exists()


def test_prepare_skip_bad_warns_of_a_class_left_without_clips(tmp_path, capsys):
    """--skip-bad never drops a whole class silently: the class whose every train clip was
    skipped is named in a warning line on stderr (the store is still built)."""
    root = tmp_path / "FSD50K"
    _fsd50k(root)
    for fname in ("102", "104"):  # the train clips of Music
        (root / "FSD50K.dev_audio" / f"{fname}.wav").unlink()
    args = ["prepare", "--data-dir", str(root), "--out", str(tmp_path / "s"), "--splits",
            "train", "--quiet", "--skip-bad"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "train: 1 clips, 3 classes" in captured.out and "2 skipped" in captured.out
    assert captured.err == (f"gnn-audio prepare: warning: {root / 'FSD50K.ground_truth'}/dev.csv: "
                            "after skip_bad the train split has no clip of class 'Music' "
                            "(2 rows skipped)\n")
    assert main(args[:-1]) == 1  # without --skip-bad the first missing file is the error
    assert "102.wav" in capsys.readouterr().err
