import json
import os

import numpy as np
import pytest

from gnn_audio.data.readers import DataError, read_class_csv, read_datafile
from gnn_audio.labels import load_label_set

CLASSES = [("k/0", "Dog, barking"), ("k/1", "Rain"), ("k/2", "Engine \"idling\""),
           ("k/3", "Speech")]


@pytest.fixture
def class_csv(tmp_path):
    import csv
    path = tmp_path / "class_labels_indices.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "display_name"])
        for i, (mid, name) in reversed(list(enumerate(CLASSES))):
            w.writerow([i, mid, name])
    return path


def _write(path, entries):
    """One entry per line: entry ``i`` is on line ``i + 2``."""
    body = ",\n".join(json.dumps(e) for e in entries)
    path.write_text('{"data": [\n' + body + "\n]}\n")
    return path


def _dataset(tmp_path, listing_tools, n=12):
    rng = np.random.default_rng(0)
    entries, truth = [], {}
    for i in range(n):
        mids = list(rng.choice([m for m, _ in CLASSES], size=rng.integers(1, 4), replace=False))
        rel = f"audio/{'a' if i % 2 else 'b'}/clip{i}.wav"
        wav = rel if i % 3 else str(tmp_path / "data" / rel)  # relative and absolute paths
        listing_tools.write_tiny_wav(tmp_path / "data" / rel)
        entries.append({"wav": wav, "labels": ",".join(mids), "extra": i})
        truth[f"clip{i}"] = mids
    return entries, truth


def test_targets_and_paths(tmp_path, class_csv, listing_tools, monkeypatch):
    entries, truth = _dataset(tmp_path, listing_tools)
    path = _write(tmp_path / "data" / "train_data.json", entries)
    monkeypatch.chdir(tmp_path)  # relative wav paths resolve against the JSON's folder
    clips = read_datafile(path, class_csv)
    assert clips.name == "train_data" and clips.skipped == []
    assert clips.label_set.mids == tuple(m for m, _ in CLASSES)
    assert clips.label_set.names == tuple(n for _, n in CLASSES)
    assert [c.clip_id for c in clips.clips] == list(truth)
    expected = np.zeros((len(truth), len(CLASSES)), dtype=np.float32)
    for i, mids in enumerate(truth.values()):
        expected[i, [clips.label_set.mids.index(m) for m in mids]] = 1
    np.testing.assert_array_equal(clips.targets(), expected)
    for i, c in enumerate(clips.clips):
        assert os.path.isabs(c.path) and os.path.exists(c.path)
        assert c.source == f"{path}:{i + 2}"


def test_default_class_list_is_audioset(tmp_path, listing_tools):
    listing_tools.write_tiny_wav(tmp_path / "x.wav")
    clips = read_datafile(_write(tmp_path / "d.json",
                                 [{"wav": "x.wav", "labels": "/m/09x0r,/t/dd00088"}]))
    assert clips.label_set == load_label_set("audioset")
    assert clips.clips[0].labels == tuple(sorted(
        load_label_set("audioset").mids.index(m) for m in ("/m/09x0r", "/t/dd00088")))


def test_clashing_stems_get_relative_ids(tmp_path, class_csv, listing_tools):
    for rel in ("a/x.wav", "b/x.wav", "c/y.wav"):
        listing_tools.write_tiny_wav(tmp_path / rel)
    path = _write(tmp_path / "d.json", [{"wav": "a/x.wav", "labels": "k/0"},
                                        {"wav": "b/x.wav", "labels": "k/1"},
                                        {"wav": "c/y.wav", "labels": "k/2"}])
    assert [c.clip_id for c in read_datafile(path, class_csv).clips] == ["a/x.wav", "b/x.wav",
                                                                         "y"]


BAD_ENTRIES = [
    ({"labels": "k/0"}, "entry has no 'wav'"),
    ({"wav": "", "labels": "k/0"}, "'wav' must be a non-empty path"),
    ({"wav": "ok.wav"}, "entry has no 'labels'"),
    ({"wav": "ok.wav", "labels": "k/0,/m/nope"}, "unknown label id '/m/nope'"),
    ({"wav": "ok.wav", "labels": ""}, "empty label id list"),
    ({"wav": "ok.wav", "labels": 3}, "'labels' must be a string"),
    (["ok.wav", "k/0"], "entry is a list, not an object"),
    ({"wav": "gone.wav", "labels": "k/0"}, "audio file not found: "),
    ({"wav": "./good0.wav", "labels": "k/1"}, "listed twice (first as data[0])"),
]


@pytest.mark.parametrize("case", range(len(BAD_ENTRIES)))
def test_bad_entry_names_file_line_and_index(tmp_path, class_csv, listing_tools, case):
    for name in ("good0.wav", "good1.wav", "ok.wav"):
        listing_tools.write_tiny_wav(tmp_path / name)
    bad, reason = BAD_ENTRIES[case]
    entries = [{"wav": "good0.wav", "labels": "k/0"}, bad, {"wav": "good1.wav", "labels": "k/3"}]
    path = _write(tmp_path / "d.json", entries)
    listing_tools.one_line_error(lambda: read_datafile(path, class_csv),
                                 f"{path}:3: data[1]: ", reason)
    clips = read_datafile(path, class_csv, skip_bad=True)
    assert [c.clip_id for c in clips.clips] == ["good0", "good1"]
    assert [s.where for s in clips.skipped] == [f"{path}:3: data[1]"]
    assert reason in clips.skipped[0].reason


def test_entry_lines_in_pretty_printed_json(tmp_path, class_csv, listing_tools):
    listing_tools.write_tiny_wav(tmp_path / "a.wav")
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"note": {"data": [1, 2]}, "data": [
        {"wav": "a.wav", "labels": "k/0"}, {"wav": "a.wav", "labels": "k/9"}]}, indent=2))
    # line 1 "{", 2-7 the "note" object, 8 '"data": [', 9-12 data[0], 13 "{" of data[1]
    with pytest.raises(DataError, match=f"^{path}:13: data\\[1\\]: unknown label id 'k/9'$"):
        read_datafile(path, class_csv)


@pytest.mark.parametrize("text,where,reason", [
    ('{"data": [\n  {"wav": "a.wav", "labels": "k/0"},\n]}', ":3:1: ", "invalid JSON"),
    ('{"data": [\n  {"wav": "a.wav" "labels": "k/0"}\n]}', ":2:19: ", "invalid JSON"),
    ("", ":1:1: ", "invalid JSON"),
    ('[{"wav": "a.wav", "labels": "k/0"}]', ": ", "expected a JSON object"),
    ('{"items": []}', ": ", "without 'data'"),
    ('{"data": {"wav": "a.wav"}}', ": ", "'data' must be a list"),
])
def test_bad_json_names_file(tmp_path, class_csv, text, where, reason):
    path = tmp_path / "d.json"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        read_datafile(path, class_csv, skip_bad=True)  # not skippable: the whole file is bad
    msg = str(err.value)
    assert msg.startswith(f"{path}{where}") and reason in msg and "\n" not in msg


def test_missing_files(tmp_path, class_csv):
    with pytest.raises(DataError, match=f"{tmp_path / 'none.json'}: no such file"):
        read_datafile(tmp_path / "none.json", class_csv)
    _write(tmp_path / "d.json", [])
    with pytest.raises(DataError, match=f"{tmp_path / 'none.csv'}: no such file"):
        read_datafile(tmp_path / "d.json", tmp_path / "none.csv")
    assert len(read_datafile(tmp_path / "d.json", class_csv)) == 0


@pytest.mark.parametrize("text,line,reason", [
    ("index,mid\n0,a\n", 1, "lacks column(s) display_name"),
    ("index,mid,display_name\n0,a,A\n1,b\n", 3, "expected 3 columns"),
    ("index,mid,display_name\n0,a,A\none,b,B\n", 3, "'one' is not an integer"),
    ("index,mid,display_name\n0,a,A\n1,a,B\n", 3, "class id 'a' appears twice (also line 2)"),
    ("index,mid,display_name\n0,a,A\n0,b,B\n", 3, "class index 0 appears twice"),
    ("index,mid,display_name\n0,a,A\n2,b,B\n", None, "must run 0..1; missing 1"),
    ("index,mid,display_name\n0,a,\"A\n", None, "malformed CSV"),
    ("index,mid,display_name\n", None, "no classes listed"),
])
def test_bad_class_csv_names_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "classes.csv"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        read_class_csv(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}: " if line else f"{path}") and reason in msg
    assert "\n" not in msg


def test_class_csv_not_utf8(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_bytes(b"index,mid,display_name\n0,a,A\n1,b,\xff\xfe\n")
    with pytest.raises(DataError, match=f"{path}:3: not UTF-8"):
        read_class_csv(path)
