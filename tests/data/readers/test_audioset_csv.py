import numpy as np
import pytest

from gnn_audio.data.readers import DataError, read_audioset_csv
from gnn_audio.labels import load_label_set

HEAD = ("# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=3, num_segs=3, num_unique_labels=4, num_positive_labels=5\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n")
SEGMENTS = [("--PJHxphWEs", 30.0, 40.0, ["/m/09x0r", "/t/dd00088"]),
            ("--ZhevVpy1s", 50.0, 60.0, ["/m/012xff"]),
            ("-0DdlOuIFUI", 0.0, 10.0, ["/m/04rlf", "/m/09x0r", "/m/0bt9lr"]),
            ("-0DdlOuIFUI", 120.0, 130.0, ["/m/0bt9lr"])]


def _csv(path, segments=SEGMENTS):
    rows = [f'{y}, {s:.3f}, {e:.3f}, "{",".join(m)}"' for y, s, e, m in segments]
    path.write_text(HEAD + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("pattern,name", [
    ("Y{ytid}.wav", lambda y, s, e: f"Y{y}.wav"),
    ("{ytid}_{start_int}.wav", lambda y, s, e: f"{y}_{int(s)}.wav"),
    ("{ytid}_{start:.3f}_{end:.3f}.flac", lambda y, s, e: f"{y}_{s:.3f}_{e:.3f}.flac"),
    ("sub/{ytid}_{start_ms}-{end_ms}.ogg", lambda y, s, e: f"sub/{y}_{int(s * 1000)}-"
                                                           f"{int(e * 1000)}.ogg"),
])
def test_targets_with_file_name_patterns(tmp_path, listing_tools, pattern, name):
    segments = SEGMENTS if "start" in pattern else SEGMENTS[:3]  # one segment per video
    audio = tmp_path / "audio"
    for y, s, e, _ in segments:
        listing_tools.write_tiny_wav(audio / name(y, s, e))
    path = _csv(tmp_path / "eval_segments.csv", segments)
    clips = read_audioset_csv(path, audio, pattern=pattern)
    labels = load_label_set("audioset")
    assert clips.name == "eval_segments" and clips.label_set == labels and not clips.skipped
    assert [c.clip_id for c in clips.clips] == [f"{y}_{s:g}" for y, s, _, _ in segments]
    assert [c.path for c in clips.clips] == [str(audio / name(y, s, e)) for y, s, e, _ in segments]
    assert [c.source for c in clips.clips] == [f"{path}:{4 + i}" for i in range(len(segments))]
    expected = np.zeros((len(segments), len(labels)), dtype=np.float32)
    for i, (_, _, _, mids) in enumerate(segments):
        expected[i, [labels.mids.index(m) for m in mids]] = 1
    np.testing.assert_array_equal(clips.targets(), expected)


def test_own_class_list(tmp_path, listing_tools):
    classes = tmp_path / "classes.csv"
    classes.write_text('index,mid,display_name\n0,/m/0bt9lr,"Dog"\n1,/m/09x0r,"Speech"\n')
    path = tmp_path / "s.csv"
    path.write_text('# c\nabc, 1.5, 11.5, "/m/09x0r,/m/0bt9lr"\nxyz, 0, 10, "/m/0bt9lr"\n')
    listing_tools.write_tiny_wav(tmp_path / "Yabc.wav")
    listing_tools.write_tiny_wav(tmp_path / "Yxyz.wav")
    clips = read_audioset_csv(path, tmp_path, classes)
    assert clips.num_classes == 2 and clips.label_set.names == ("Dog", "Speech")
    assert [c.clip_id for c in clips.clips] == ["abc_1.5", "xyz_0"]
    np.testing.assert_array_equal(clips.targets(), [[1, 1], [1, 0]])


def test_missing_audio_is_an_error_or_a_reported_skip(tmp_path, listing_tools):
    path = _csv(tmp_path / "s.csv")
    for y, s, e, _ in SEGMENTS[::2]:
        listing_tools.write_tiny_wav(tmp_path / f"{y}_{int(s)}.wav")
    with pytest.raises(DataError) as err:
        read_audioset_csv(path, tmp_path, pattern="{ytid}_{start_int}.wav")
    assert str(err.value) == f"{path}:5: audio file not found: {tmp_path}/--ZhevVpy1s_50.wav"
    clips = read_audioset_csv(path, tmp_path, pattern="{ytid}_{start_int}.wav", skip_bad=True)
    assert [c.clip_id for c in clips.clips] == ["--PJHxphWEs_30", "-0DdlOuIFUI_0"]
    assert [s.where for s in clips.skipped] == [f"{path}:5", f"{path}:7"]


@pytest.mark.parametrize("row,reason", [
    ('abc, 30.000, 40.000', "expected 4 columns"),
    ('abc, 30.000, 40.000, "/m/09x0r", extra', "expected 4 columns"),
    (', 30.000, 40.000, "/m/09x0r"', "empty YTID"),
    ('abc, thirty, 40.000, "/m/09x0r"', "start_seconds 'thirty' is not a number"),
    ('abc, 30.000, nan, "/m/09x0r"', "end_seconds 'nan' is not a time >= 0"),
    ('abc, 30.000, 20.000, "/m/09x0r"', "end_seconds 20 is not after start_seconds 30"),
    ('abc, 30.000, 40.000, "/m/09x0r,/m/nope"', "unknown label id '/m/nope'"),
    ('abc, 30.000, 40.000, ""', "empty label id list"),
    ('--PJHxphWEs, 30.000, 40.000, "/m/09x0r"', "listed twice (first at line 4)"),
])
def test_bad_row_names_file_and_line(tmp_path, listing_tools, row, reason):
    listing_tools.write_tiny_wav(tmp_path / "Yabc.wav")
    for y, *_ in SEGMENTS:
        listing_tools.write_tiny_wav(tmp_path / f"Y{y}.wav")
    path = tmp_path / "s.csv"
    path.write_text(HEAD + f'--PJHxphWEs, 30.000, 40.000, "/m/09x0r"\n{row}\n'
                    'abc, 0.000, 10.000, "/m/09x0r"\n')
    listing_tools.one_line_error(lambda: read_audioset_csv(path, tmp_path), f"{path}:5: ",
                                 reason)
    clips = read_audioset_csv(path, tmp_path, skip_bad=True)
    assert [c.clip_id for c in clips.clips] == ["--PJHxphWEs_30", "abc_0"]
    assert [(s.where, reason in s.reason) for s in clips.skipped] == [(f"{path}:5", True)]


def test_bad_pattern_and_folders(tmp_path):
    path = _csv(tmp_path / "s.csv")
    for pattern in ("{ytid}_{start_sec}.wav", "audio.wav", "{ytid}_{0}.wav", "{ytid"):
        with pytest.raises(ValueError, match="pattern"):
            read_audioset_csv(path, tmp_path, pattern=pattern)
    with pytest.raises(DataError, match=f"{tmp_path / 'nothing'}: no such directory"):
        read_audioset_csv(path, tmp_path / "nothing")
    with pytest.raises(DataError, match=f"{tmp_path / 'no.csv'}: no such file"):
        read_audioset_csv(tmp_path / "no.csv", tmp_path)
