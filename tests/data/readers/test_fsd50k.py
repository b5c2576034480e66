import os

import numpy as np
import pytest

from gnn_audio.data.readers import DataError, read_fsd50k, read_fsd50k_vocabulary


def _expected(clips, label_set, truth):
    """Multi-hot targets from the generated ``fname -> mids`` dict, via the label set."""
    y = np.zeros((len(clips), len(label_set)), dtype=np.float32)
    for i, clip in enumerate(clips):
        for mid in truth[clip.clip_id]:
            y[i, label_set.mids.index(mid)] = 1.0
    return y


@pytest.mark.parametrize("layout", ["FSD50K", "plain"])
@pytest.mark.parametrize("num_classes", [5, 13])
def test_every_split_gets_the_right_targets(tmp_path, listing_tools, layout, num_classes):
    vocab = listing_tools.random_vocabulary(num_classes, seed=num_classes)
    mids = [m for m, _ in vocab]
    dev = listing_tools.random_labels(mids, 30, seed=1)
    splits = {f: ("val" if i % 3 == 0 else "train") for i, f in enumerate(dev)}
    eval_ = listing_tools.random_labels(mids, 10, seed=2)
    paths = listing_tools.write_fsd50k(tmp_path, vocab, dev, splits, eval_, layout=layout)

    for split, truth in (("train", dev), ("val", dev), ("eval", eval_)):
        clips = read_fsd50k(tmp_path, split)
        assert clips.name == split and clips.skipped == []
        assert clips.label_set.mids == tuple(mids)  # ordered by the vocabulary's index column
        assert clips.label_set.names == tuple(n for _, n in vocab)
        assert clips.num_classes == num_classes
        listed = [f for f in truth if split == "eval" or splits[f] == split]
        assert [c.clip_id for c in clips.clips] == listed
        np.testing.assert_array_equal(clips.targets(), _expected(clips.clips, clips.label_set,
                                                                 truth))
        audio = paths["eval_audio" if split == "eval" else "dev_audio"]
        for c in clips.clips:
            assert c.path == str(audio / f"{c.clip_id}.wav") and os.path.isabs(c.path)
            assert c.source.startswith(str(paths["eval" if split == "eval" else "dev"]) + ":")
            assert list(c.labels) == sorted(set(c.labels))


def test_quoted_rows_as_distributed(tmp_path, listing_tools):
    """Hand-written lines in FSD50K's own quoting, a BOM and CRLF line ends."""
    gt = tmp_path / "FSD50K.ground_truth"
    gt.mkdir()
    (gt / "vocabulary.csv").write_text(
        "0,Electric_guitar,/m/02sgy\n1,Guitar,/m/0342h\n2,Plucked_string_instrument,/m/0fx80y\n"
        "3,Musical_instrument,/m/04szw\n4,Music,/m/04rlf\n5,Bark,/m/05tny_\n")
    (gt / "dev.csv").write_bytes(
        b"\xef\xbb\xbffname,labels,mids,split\r\n"
        b'64760,"Electric_guitar,Guitar,Plucked_string_instrument,Musical_instrument,Music",'
        b'"/m/02sgy,/m/0342h,/m/0fx80y,/m/04szw,/m/04rlf",train\r\n'
        b"16399,Bark,/m/05tny_,val\r\n"
        b'16400,"Music,Bark","/m/04rlf,/m/05tny_",train\r\n')
    (gt / "eval.csv").write_text('fname,labels,mids\n37199,"Guitar,Music","/m/0342h,/m/04rlf"\n')
    for d, names in (("FSD50K.dev_audio", ("64760", "16399", "16400")),
                     ("FSD50K.eval_audio", ("37199",))):
        for n in names:
            listing_tools.write_tiny_wav(tmp_path / d / f"{n}.wav")
    train = read_fsd50k(tmp_path, "train")
    assert [c.clip_id for c in train.clips] == ["64760", "16400"]
    np.testing.assert_array_equal(train.targets(), [[1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1]])
    assert train.clips[1].source == f"{gt / 'dev.csv'}:4"
    assert [c.labels for c in read_fsd50k(tmp_path, "val").clips] == [(5,)]
    assert [c.labels for c in read_fsd50k(tmp_path, "eval").clips] == [(1, 4)]


def test_vocabulary_with_header_and_other_ids(tmp_path):
    path = tmp_path / "vocabulary.csv"
    path.write_text("index,name,mid\n1,Beta,b-2\n0,Alpha,a-1\n")
    labels = read_fsd50k_vocabulary(path)
    assert labels.mids == ("a-1", "b-2") and labels.names == ("Alpha", "Beta")


@pytest.mark.parametrize("text,line,reason", [
    ("0,A,/m/a\n1,B\n", 2, "expected 3 columns"),
    ("0,A,/m/a\nx,B,/m/b\n", 2, "not an integer"),
    ("0,A,/m/a\n1,B,/m/a\n", 2, "class id '/m/a' appears twice"),
    ("0,A,/m/a\n1,A,/m/b\n", 2, "class name 'A' appears twice"),
    ("0,A,/m/a\n0,B,/m/b\n", 2, "index 0 appears twice"),
    ("0,A,/m/a\n1,,/m/b\n", 2, "empty class name"),
    ("0,A,/m/a\n2,B,/m/b\n", None, "must run 0..1"),
    ("", None, "no classes"),
])
def test_bad_vocabulary_names_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "vocabulary.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=reason) as err:
        read_fsd50k_vocabulary(path)
    assert str(err.value).startswith(f"{path}:{line}: " if line else f"{path}: ")
    assert "\n" not in str(err.value)


def _edit_line(path, line, new):
    lines = path.read_text().splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    path.write_text("\n".join(lines) + "\n")


BAD_DEV_ROWS = [  # (replacement for the row of the first train clip, expected reason)
    (lambda f, m, n: f'{f},"{n[0]}","/m/xyz",train', "unknown label id '/m/xyz'"),
    (lambda f, m, n: f'{f},"","",train', "empty label id list"),
    (lambda f, m, n: f'{f},"{n[0]}","{m[0]},",train', "empty label id in"),
    (lambda f, m, n: f'{f},"{n[0]}","{m[0]}"', "expected 4 columns"),
    (lambda f, m, n: f'{f},"{n[0]}","{m[0]}",train,extra', "expected 4 columns"),
    (lambda f, m, n: f'{f},"{n[0]}","{m[0]}",', "missing split value"),
    (lambda f, m, n: f'{f},"{n[0]}","{m[0]}",test', "split 'test' is neither train nor val"),
    (lambda f, m, n: f',"{n[0]}","{m[0]}",train', "empty fname"),
    (lambda f, m, n: f'{f},"{n[1]}","{m[0]}",train', "does not match id"),
    (lambda f, m, n: f'{f},"{n[0]},{n[1]}","{m[0]}",train', "2 label names for 1 label ids"),
]


@pytest.mark.parametrize("case", range(len(BAD_DEV_ROWS)))
def test_bad_dev_row_names_file_and_line(small_fsd50k, listing_tools, case):
    dev_csv = small_fsd50k["paths"]["dev"]
    fname = next(f for f, s in small_fsd50k["splits"].items() if s == "train")
    line = list(small_fsd50k["dev"]).index(fname) + 2
    mids = [m for m, _ in small_fsd50k["vocab"]]
    names = [n for _, n in small_fsd50k["vocab"]]
    make, reason = BAD_DEV_ROWS[case]
    _edit_line(dev_csv, line, make(fname, mids, names))
    for split in ("train", "val"):  # the file is bad whichever split is read
        listing_tools.one_line_error(lambda: read_fsd50k(small_fsd50k["root"], split),
                                     f"{dev_csv}:{line}: ", reason)

    clips = read_fsd50k(small_fsd50k["root"], "train", skip_bad=True)
    assert fname not in [c.clip_id for c in clips.clips]
    assert len(clips) == sum(s == "train" for s in small_fsd50k["splits"].values()) - 1
    assert [s.where for s in clips.skipped] == [f"{dev_csv}:{line}"]
    assert reason in clips.skipped[0].reason
    # the other split is read in full; it records the row only when its split is unknown
    val = read_fsd50k(small_fsd50k["root"], "val", skip_bad=True)
    assert len(val) == sum(s == "val" for s in small_fsd50k["splits"].values())
    unknown = "columns" in reason or "split" in reason
    assert len(val.skipped) == (1 if unknown else 0)


def test_duplicate_fname(small_fsd50k):
    dev_csv = small_fsd50k["paths"]["dev"]
    rows = dev_csv.read_text().splitlines()
    dev_csv.write_text("\n".join(rows + [rows[3]]) + "\n")
    fname = rows[3].split(",")[0]
    with pytest.raises(DataError, match=f"{dev_csv}:{len(rows) + 1}: fname '{fname}' listed "
                                        "twice \\(first at line 4\\)"):
        read_fsd50k(small_fsd50k["root"], "train")
    split = small_fsd50k["splits"][fname]
    clips = read_fsd50k(small_fsd50k["root"], split, skip_bad=True)
    assert [c.clip_id for c in clips.clips].count(fname) == 1
    assert [s.where for s in clips.skipped] == [f"{dev_csv}:{len(rows) + 1}"]


@pytest.mark.parametrize("split", ["train", "eval"])
def test_missing_audio_file(small_fsd50k, split):
    truth = small_fsd50k["eval"] if split == "eval" else {
        f: m for f, m in small_fsd50k["dev"].items() if small_fsd50k["splits"][f] == "train"}
    gone = list(truth)[2:4]
    folder = small_fsd50k["paths"]["eval_audio" if split == "eval" else "dev_audio"]
    for f in gone:
        os.remove(folder / f"{f}.wav")
    listing = small_fsd50k["paths"]["eval" if split == "eval" else "dev"]
    with pytest.raises(DataError, match=f"audio file not found: {folder / gone[0]}.wav") as err:
        read_fsd50k(small_fsd50k["root"], split)
    assert str(err.value).startswith(f"{listing}:")
    clips = read_fsd50k(small_fsd50k["root"], split, skip_bad=True)
    assert [c.clip_id for c in clips.clips] == [f for f in truth if f not in gone]
    assert [s.reason for s in clips.skipped] == [
        f"audio file not found: {folder / f}.wav" for f in gone]


def test_missing_folders_and_columns(small_fsd50k, tmp_path):
    with pytest.raises(DataError, match="neither FSD50K.ground_truth/ nor ground_truth/"):
        read_fsd50k(tmp_path / "FSD50K.dev_audio", "train")
    with pytest.raises(ValueError, match="unknown FSD50K split 'test'"):
        read_fsd50k(small_fsd50k["root"], "test")
    eval_csv = small_fsd50k["paths"]["eval"]
    _edit_line(eval_csv, 1, "fname,labels")
    with pytest.raises(DataError, match=f"{eval_csv}:1: header 'fname,labels' lacks "
                                        "column\\(s\\) mids"):
        read_fsd50k(small_fsd50k["root"], "eval")
    os.remove(small_fsd50k["paths"]["vocabulary"])
    with pytest.raises(DataError, match=f"{small_fsd50k['paths']['vocabulary']}: no such file"):
        read_fsd50k(small_fsd50k["root"], "train")
