"""Training runs on the other data sources and models: AudioSet-style JSON datafiles and
segment CSVs, the AudioSet embedding TFRecords, AT-GCN with its label graph; ``gnn-audio eval``
on each source."""
import csv
import json

import numpy as np
import pytest
import torch

from gnn_audio.data.readers import read_fsd50k
from gnn_audio.labels.cooccurrence import cooccurrence_adjacency
from gnn_audio.labels.ontology_graph import ontology_adjacency
from gnn_audio.cli.train import main

COMMON = ["--num-workers", "0", "--no-progress", "--device", "cpu", "--eval-batch-size", "8"]


@pytest.fixture(scope="module")
def datafiles(tiny_fsd50k, tmp_path_factory):
    """The tiny FSD50K-layout set as PSLA / AST JSON datafiles with a class CSV."""
    out = tmp_path_factory.mktemp("datafiles")
    labels = read_fsd50k(tiny_fsd50k, "train").label_set
    with open(out / "classes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "display_name"])
        w.writerows([i, m, n] for i, (m, n) in enumerate(zip(labels.mids, labels.names)))
    for split in ("train", "eval"):
        clips = read_fsd50k(tiny_fsd50k, split)
        data = [{"wav": c.path, "labels": ",".join(labels.mids[i] for i in c.labels)}
                for c in clips.clips]
        (out / f"{split}.json").write_text(json.dumps({"data": data}))
    return out


def test_audioset_datafiles_without_validation_split(datafiles, tmp_path):
    run = tmp_path / "run"
    assert main(["--recipe", "atgnn_audioset", "--train-datafile", str(datafiles / "train.json"),
                 "--eval-datafile", str(datafiles / "eval.json"), "--class-csv",
                 str(datafiles / "classes.csv"), "--store-dir", str(tmp_path / "stores"),
                 "--run-dir", str(run), "--epochs", "1", "--batch-size", "8",
                 "--model", "atgnn_pyr_t", "--model-kwargs",
                 '{"channels": [8, 16, 24, 32], "drop_path_rate": 0.0}',
                 "--fbank.target-length", "64", "--fbank.num-mel-bins", "32", *COMMON]) == 0
    assert "the evaluation split validates" in (run / "train.log").read_text()
    results = json.loads((run / "results.json").read_text())
    assert results["eval"]["crop"]["num_clips"] == len(json.loads(
        (datafiles / "eval.json").read_text())["data"])


def test_at_gcn_stores_its_label_graph(tiny_fsd50k, tmp_path):
    run = tmp_path / "run"
    args = ["--recipe", "at_gcn_fsd50k", "--data-dir", str(tiny_fsd50k), "--run-dir", str(run),
            "--epochs", "1", "--batch-size", "8", "--fbank.target-length", "64",
            "--fbank.num-mel-bins", "32", "--label-graph", "eq7", *COMMON]
    assert main(args) == 0
    ckpt = torch.load(run / "best.pt", weights_only=True)
    want = cooccurrence_adjacency(read_fsd50k(tiny_fsd50k, "train").targets(), 0.3, 0.2, "eq7")
    assert torch.allclose(ckpt["state_dict"]["adjacency"], want)
    assert "documented fallback" in (run / "train.log").read_text()
    # the ontology-based graph of the same (real AudioSet) classes
    run2 = tmp_path / "run2"
    args = [str(run2) if a == str(run) else a for a in args]
    args[args.index("eq7")] = "ontology"
    assert main(args) == 0
    mids = read_fsd50k(tiny_fsd50k, "train").label_set.mids
    ckpt = torch.load(run2 / "best.pt", weights_only=True)
    assert torch.allclose(ckpt["state_dict"]["adjacency"], ontology_adjacency(mids, p=0.2))
    assert ckpt["label_ids"] == list(mids)


def test_embedding_baseline_on_tfrecords(tmp_path):
    from gnn_audio.data.audioset_embeddings import write_embedding_records

    rng = np.random.default_rng(0)
    for split, n in (("train", 48), ("eval", 15)):
        clips = []
        for i in range(n):
            labels = sorted(rng.choice(527, size=2, replace=False).tolist())
            emb = rng.uniform(-2, 2, size=(10, 128)).astype(np.float32)
            clips.append((f"{split}{i:03d}", 0.0, 10.0, labels, emb))
        write_embedding_records(tmp_path / f"{split}.tfrecord", clips)
    run = tmp_path / "run"
    assert main(["--recipe", "embedding_audioset", "--model", "lstm_tagger",
                 "--clip-grad-norm", "5", "--train-records", str(tmp_path / "train.tfrecord"),
                 "--eval-records", str(tmp_path / "eval.tfrecord"), "--run-dir", str(run),
                 "--epochs", "2", "--batch-size", "16", *COMMON]) == 0
    results = json.loads((run / "results.json").read_text())
    assert set(results["eval"]) == {"crop"} and results["eval"]["crop"]["num_clips"] == 15
    # gnn-audio eval scores the embedding checkpoint on the TFRecords, in crop mode
    from gnn_audio.cli import main as gnn_audio_main

    out = tmp_path / "eval.json"
    assert gnn_audio_main(["eval", "--checkpoint", str(run / "best.pt"), "--eval-records",
                           str(tmp_path / "eval.tfrecord"), "--out", str(out), "--quiet",
                           "--device", "cpu"]) == 0
    got = json.loads(out.read_text())
    assert set(got["metrics"]) == {"crop"} and got["clips"] == 15
    assert got["metrics"]["crop"]["mAP"] == pytest.approx(results["eval"]["crop"]["mAP"],
                                                          abs=1e-6)
    # an embedding checkpoint has no windows; a log-mel source does not fit it
    assert gnn_audio_main(["eval", "--checkpoint", str(run / "best.pt"), "--eval-records",
                           str(tmp_path / "eval.tfrecord"), "--eval-mode", "windows",
                           "--quiet", "--device", "cpu"]) == 1
    assert gnn_audio_main(["eval", "--checkpoint", str(run / "best.pt"), "--data-dir",
                           str(tmp_path), "--quiet", "--device", "cpu"]) == 1


def test_gnn_audio_eval_on_a_datafile(datafiles, tmp_path):
    from gnn_audio.cli import main as gnn_audio_main

    run = tmp_path / "run"
    stores = tmp_path / "stores"
    assert main(["--recipe", "example", "--model", "cnn10", "--train-datafile",
                 str(datafiles / "train.json"), "--eval-datafile", str(datafiles / "eval.json"),
                 "--class-csv", str(datafiles / "classes.csv"), "--store-dir", str(stores),
                 "--run-dir", str(run), "--epochs", "1", "--batch-size", "8",
                 "--fbank.target-length", "64", "--fbank.num-mel-bins", "32", "--data",
                 "audioset", *COMMON]) == 0
    out = tmp_path / "eval.json"
    assert gnn_audio_main(["eval", "--checkpoint", str(run / "best.pt"), "--datafile",
                           str(datafiles / "eval.json"), "--class-csv",
                           str(datafiles / "classes.csv"), "--store-dir", str(stores),
                           "--out", str(out), "--quiet", "--batch-size", "8"]) == 0
    got = json.loads(out.read_text())["metrics"]
    want = json.loads((run / "results.json").read_text())["eval"]
    for mode in ("crop", "windows"):
        assert got[mode]["mAP"] == pytest.approx(want[mode]["mAP"], abs=1e-6)
    # the same with the source's own option, and the stores training built are reused
    assert gnn_audio_main(["eval", "--checkpoint", str(run / "best.pt"), "--data", "audioset",
                           "--eval-datafile", str(datafiles / "eval.json"), "--class-csv",
                           str(datafiles / "classes.csv"), "--store-dir", str(stores),
                           "--out", str(out), "--batch-size", "8", "--eval-mode", "crop"]) == 0
    got = json.loads(out.read_text())["metrics"]
    assert set(got) == {"crop"}
    assert got["crop"]["mAP"] == pytest.approx(want["crop"]["mAP"], abs=1e-6)


def test_audioset_segment_csvs_train_and_eval(datafiles, tiny_fsd50k, tmp_path, capsys):
    """Segment CSVs over a folder of Y<ytid>.wav files: training and gnn-audio eval read them
    through the same source and the same stores."""
    import shutil

    from gnn_audio.cli import main as gnn_audio_main

    audio = tmp_path / "audio"
    audio.mkdir()
    labels = read_fsd50k(tiny_fsd50k, "train").label_set
    for split in ("train", "eval"):
        lines = ["# YTID, start_seconds, end_seconds, positive_labels"]
        for c in read_fsd50k(tiny_fsd50k, split).clips:
            shutil.copy(c.path, audio / f"Yclip{c.clip_id}.wav")
            mids = ",".join(labels.mids[i] for i in c.labels)
            lines.append(f'clip{c.clip_id}, 0.000, 10.000, "{mids}"')
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert main(["--recipe", "example", "--model", "cnn10", "--data", "audioset",
                 "--train-csv", str(tmp_path / "train.csv"), "--eval-csv",
                 str(tmp_path / "eval.csv"), "--audio-dir", str(audio), "--class-csv",
                 str(datafiles / "classes.csv"), "--run-dir", str(run), "--epochs", "1",
                 "--batch-size", "8", "--fbank.target-length", "64", "--fbank.num-mel-bins",
                 "32", *COMMON]) == 0
    assert (audio / "gnn_audio_stores" / "eval_16000").is_dir()  # AUDIO_DIR/gnn_audio_stores
    out = tmp_path / "eval.json"
    capsys.readouterr()
    assert gnn_audio_main(["eval", "--checkpoint", str(run / "best.pt"), "--eval-csv",
                           str(tmp_path / "eval.csv"), "--audio-dir", str(audio),
                           "--class-csv", str(datafiles / "classes.csv"), "--out", str(out),
                           "--batch-size", "8"]) == 0
    assert "up to date" in capsys.readouterr().err  # training's store, not a new one
    got = json.loads(out.read_text())["metrics"]
    want = json.loads((run / "results.json").read_text())["eval"]
    for mode in ("crop", "windows"):
        assert got[mode]["mAP"] == pytest.approx(want[mode]["mAP"], abs=1e-6)
