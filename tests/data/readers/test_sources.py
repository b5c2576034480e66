"""The registry of data sources: names, options, checks, splits; a new source is one
registration and appears in every command."""
import json

import numpy as np
import pytest

from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.readers import sources
from gnn_audio.data.readers.sources import (SPLITS, Source, SourceOption, get_source,
                                            infer_source, list_sources, register_source,
                                            source_options)
from gnn_audio.labels import LabelSet


def test_the_sources_and_what_they_read():
    assert list_sources() == ["fsd50k", "audioset", "embeddings"]
    assert [get_source(n).reads for n in list_sources()] == ["logmel", "logmel", "embedding"]
    options = source_options()
    assert list(options)[:3] == ["data_dir", "audio_dir", "class_csv"]
    assert {f"{s}_{kind}" for s in SPLITS for kind in ("csv", "datafile", "records")} <= set(
        options)
    assert options["train_csv"].flag == "--train-csv" and all(o.help for o in options.values())
    with pytest.raises(ValueError, match="unknown data source 'wav'.*fsd50k, audioset"):
        get_source("wav")


@pytest.mark.parametrize("name,options,message", [
    ("fsd50k", {}, "--data-dir (an FSD50K-layout folder) is required"),
    ("audioset", {"eval_csv": "e.csv"}, "AudioSet data needs --train-csv (with --audio-dir) or "
                                        "--train-datafile"),
    ("audioset", {"train_csv": "t.csv", "eval_datafile": "e.json"}, "--audio-dir is required"),
    ("embeddings", {"train_records": "t.tfrecord"}, "embedding data needs --eval-records")])
def test_checks_name_the_flag_in_one_line(name, options, message):
    with pytest.raises(ValueError) as err:
        get_source(name).check(options)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_splits_given_and_checked_per_split():
    audioset = get_source("audioset")
    options = {"train_datafile": "t.json", "eval_csv": "e.csv", "audio_dir": "a"}
    assert audioset.splits(options) == ("train", "eval")
    audioset.check(options)
    audioset.check({"eval_datafile": "e.json"}, ("eval",))  # eval alone: enough to score
    with pytest.raises(ValueError, match="--val-csv"):
        audioset.check(options, ("val",))
    assert get_source("fsd50k").splits({"data_dir": "D"}) == SPLITS
    assert get_source("embeddings").splits({"val_records": "v", "train_records": "t"}) == (
        "train", "val")
    assert audioset.where(options, "eval") == "e.csv"


def test_infer_source_from_the_options_given():
    assert infer_source({"data_dir": "D"}).name == "fsd50k"
    assert infer_source({"eval_datafile": "e.json", "class_csv": "c.csv"}).name == "audioset"
    assert infer_source({"eval_records": "e.tfrecord", "class_csv": "c.csv"}).name == \
        "embeddings"
    with pytest.raises(ValueError, match="no source's options given; name it with --data"):
        infer_source({"class_csv": "c.csv"})  # shared by two sources: tells nothing
    with pytest.raises(ValueError, match="the options of audioset and fsd50k"):
        infer_source({"data_dir": "D", "train_csv": "t.csv"})


def test_the_readers_behind_the_sources(tmp_path):
    from gnn_audio.data.audioset_embeddings import write_embedding_records
    from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like

    root = make_fsd50k_like(tmp_path / "FSD50K", num_clips=12, max_duration=4.0,
                            sample_rate=8000)
    clips = get_source("fsd50k").read({"data_dir": str(root)}, "val")
    assert isinstance(clips, ClipList) and len(clips) > 0
    train = get_source("fsd50k").read({"data_dir": str(root)}, "train")
    data = [{"wav": c.path, "labels": ",".join(train.label_set.mids[i] for i in c.labels)}
            for c in train.clips]
    (tmp_path / "train.json").write_text(json.dumps({"data": data}))
    (tmp_path / "classes.csv").write_text("index,mid,display_name\n" + "".join(
        f"{i},{m},{n}\n" for i, (m, n) in enumerate(zip(train.label_set.mids,
                                                        train.label_set.names))))
    options = {"train_datafile": str(tmp_path / "train.json"),
               "class_csv": str(tmp_path / "classes.csv")}
    from_json = get_source("audioset").read(options, "train")
    assert [c.path for c in from_json.clips] == [c.path for c in train.clips]
    write_embedding_records(tmp_path / "e.tfrecord", [
        ("v0", 0.0, 10.0, [3], np.zeros((10, 128), np.float32)),
        ("v1", 0.0, 10.0, [1, 2], np.ones((10, 128), np.float32))])
    emb = get_source("embeddings")
    data = emb.read({"eval_records": str(tmp_path / "e.tfrecord")}, "eval")
    assert len(data) == 2 and data[1][1].tolist()[:3] == [0.0, 1.0, 1.0]
    assert len(emb.label_set({}, data)) == 527  # AudioSet's class list without --class-csv


@pytest.fixture
def toy_source(monkeypatch):
    """A source registered for one test: a folder with one text file per clip."""
    monkeypatch.setattr(sources, "_SOURCES", dict(sources._SOURCES))
    labels = LabelSet("toy", ("/t/a", "/t/b"), ("A", "B"))

    def read(options, split, skip_bad):
        folder = options["toy_dir"]
        return ClipList(split, labels, [Clip(f"{split}{i}", f"{folder}/{split}{i}.wav",
                                             (i % 2,)) for i in range(3)])

    def check(options, split):
        if not options.get("toy_dir"):
            raise ValueError("--toy-dir is required")
    return register_source(Source(
        name="toy", reads="logmel", description="one folder of clips",
        options=(SourceOption("toy_dir", "the toy folder"),),
        splits_given=lambda options: SPLITS, check_split=check, read_split=read,
        where=lambda options, split: options["toy_dir"], store_base="toy_dir"))


def test_a_new_source_is_one_registration(toy_source, capsys):
    from gnn_audio.cli.train import build_parser
    from gnn_audio.train.data import DataPaths
    from gnn_audio.train.recipe import get_recipe

    assert "toy" in list_sources() and infer_source({"toy_dir": "x"}) is toy_source
    assert toy_source.read({"toy_dir": "x"}, "eval").clips[0].clip_id == "eval0"
    # training's recipe, data paths and command line take it
    assert get_recipe("example").replace(data="toy").data.source == "toy"
    assert DataPaths(toy_dir="x").options == {"toy_dir": "x"}
    with pytest.raises(ValueError, match="--toy-dir is required"):
        DataPaths().check("toy")
    args = build_parser().parse_args(["--data", "toy", "--toy-dir", "x"])
    assert args.toy_dir == "x"
    from gnn_audio.cli import main

    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    assert "--toy-dir" in capsys.readouterr().out
    with pytest.raises(ValueError, match="already registered"):
        register_source(toy_source)
    with pytest.raises(ValueError, match="differs"):
        register_source(Source(name="toy2", reads="logmel", description="",
                               options=(SourceOption("toy_dir", "another help"),),
                               splits_given=lambda o: SPLITS, check_split=lambda o, s: None,
                               read_split=lambda o, s, b: None, where=lambda o, s: ""))
