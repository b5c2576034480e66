"""The tagger's notes: digital silence and audio much shorter than the model's window are
still tagged, and every output (the Python result, ``gnn-audio tag`` as a table, JSON and
CSV) says so; a normal file has no note."""
import csv
import io
import json

import numpy as np
import pytest
import torch

from gnn_audio.cli import main
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.synthetic.signals import chirp, tone, write_wav
from gnn_audio.inference import (SHORT_FRACTION, SILENCE_NOTE, SILENCE_PEAK, Tagger,
                                 tag_notes)
from gnn_audio.zoo import create_model, save_checkpoint

NAMES = ["Tone", "Chirp", "Rumble"]
#: 64 frames of 10 ms: the model's window is 0.64 s, a quarter of it 0.16 s
FB = FbankConfig(num_mel_bins=32, target_length=64, norm_mean=-3.1, norm_std=3.7)
SHORT = "short: 0.05 s of audio for the model's 0.64-s window"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("atgnn_pyr_t", num_classes=3, label_names=NAMES, fbank=FB,
                         channels=[8, 16, 24, 32], input_size=(64, 32), drop_path_rate=0.0)
    path = tmp_path_factory.mktemp("ck") / "best.pt"
    save_checkpoint(model, path)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Digital silence (16-bit zeros, 1.5 s), a 0.05-s tone, a normal 1.5-s chirp, float
    samples just under and just over the silence threshold, and a file that is both silent
    and short."""
    root = tmp_path_factory.mktemp("notes")
    out = {"silence": root / "silence.wav", "short": root / "short.wav",
           "normal": root / "normal.wav", "hiss": root / "hiss.wav",
           "quiet": root / "quiet.wav", "blip": root / "blip.wav"}
    write_wav(out["silence"], np.zeros(int(1.5 * 22050)), 22050)
    write_wav(out["short"], tone(0.05, 16000), 16000)
    write_wav(out["normal"], chirp(1.5, 16000, seed=1), 16000)
    write_wav(out["hiss"], np.full(16000, 0.5 * SILENCE_PEAK), 16000, subtype="FLOAT")
    write_wav(out["quiet"], np.full(16000, 4 * SILENCE_PEAK), 16000, subtype="FLOAT")
    write_wav(out["blip"], np.zeros(800), 16000)  # 0.05 s of zeros
    return {k: str(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def tagger(ckpt):
    return Tagger(ckpt)


def test_the_rules():
    assert SILENCE_PEAK == 1e-6 and SHORT_FRACTION == 0.25
    assert tag_notes(1.0, 0.0, 0.64) == (SILENCE_NOTE,)
    assert tag_notes(1.0, 0.99e-6, 0.64) == ("digital silence",)
    assert tag_notes(1.0, 1e-6, 0.64) == ()  # at the threshold: not silence
    assert tag_notes(1.0, 2 ** -15, 0.64) == ()  # one 16-bit step is not silence
    assert tag_notes(0.16, 0.5, 0.64) == ()  # a quarter of the window: not short
    assert tag_notes(0.159, 0.5, 0.64) == ("short: 0.159 s of audio for the model's 0.64-s "
                                           "window",)
    assert tag_notes(2.0, 0.5, 10.24) == ("short: 2 s of audio for the model's 10.24-s "
                                          "window",)
    assert tag_notes(0.05, 0.0, 0.64) == ("digital silence", SHORT)


def test_results_carry_the_notes_and_still_the_tags(tagger, files):
    assert tagger.model_window == pytest.approx(0.64)
    expected = {"silence": ("digital silence",), "short": (SHORT,), "normal": (),
                "hiss": ("digital silence",), "quiet": (), "blip": ("digital silence", SHORT)}
    for name, notes in expected.items():
        result = tagger.tag(files[name], top_k=3)
        assert result.notes == notes, name
        assert len(result.tags) == 3  # the scores are computed and listed all the same
        assert result.to_dict()["notes"] == list(notes)
    assert tagger.tag(files["silence"]).peak == 0.0
    assert tagger.tag(files["normal"]).peak == pytest.approx(0.5, abs=0.02)


def test_streamed_files_and_waveforms_get_the_same_notes(ckpt, files):
    streamed = Tagger(ckpt)
    streamed.whole_seconds = 0.5  # every file longer than this is read block by block
    streamed.block_frames = 4096
    assert streamed.tag(files["silence"]).notes == ("digital silence",)
    assert streamed.tag(files["normal"]).notes == ()
    r = streamed.tag(np.zeros(8000, np.float32), sample_rate=8000)
    assert r.notes == ("digital silence",) and r.source == "<waveform>"
    r = streamed.tag(tone(0.05, 44100), sample_rate=44100)
    assert r.notes == (SHORT,)
    r = streamed.tag(np.stack([tone(2.0, 16000), -tone(2.0, 16000)]), sample_rate=16000)
    assert r.notes == ("digital silence",)  # what the model hears: the down-mix cancels out
    results = list(streamed.tag_files([files["short"], files["normal"], files["silence"]]))
    assert [r.notes for r in results] == [(SHORT,), (), ("digital silence",)]


def test_error_results_have_no_notes(tagger, files, tmp_path):
    result, = tagger.tag_files([tmp_path / "missing.wav"])
    assert not result.ok and result.notes == () and "notes" not in result.to_dict()


def test_table_output_says_so(ckpt, files, capsys):
    order = [files["silence"], files["short"], files["normal"]]
    assert main(["tag", *order, "-c", ckpt, "--top-k", "2", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{files['silence']}:", "    note: digital silence", *lines[2:4],
                     f"{files['short']}:", f"    note: {SHORT}", *lines[6:8],
                     f"{files['normal']}:", *lines[9:11]]
    assert len(lines) == 11
    for line in lines[2:4] + lines[6:8] + lines[9:11]:  # the tags: "   0.512  Tone"
        score, label = line.split(None, 1)
        assert 0 <= float(score) <= 1 and label in NAMES


def test_json_output_says_so(ckpt, files, capsys):
    order = [files["silence"], files["short"], files["normal"]]
    assert main(["tag", *order, "-c", ckpt, "--format", "json", "--windows", "-q"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["notes"] for d in doc] == [["digital silence"], [SHORT], []]
    assert doc[0]["peak"] == 0.0 and doc[2]["peak"] > 0.1
    assert all(len(d["tags"]) == 3 and d["windows"] for d in doc)


def test_csv_output_says_so(ckpt, files, capsys):
    order = [files["silence"], files["short"], files["normal"]]
    assert main(["tag", *order, "-c", ckpt, "--format", "csv", "--top-k", "1", "-q"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["file", "label", "score", "notes"]
    assert [(r[0], r[3]) for r in rows[1:]] == [(files["silence"], "digital silence"),
                                                (files["short"], SHORT),
                                                (files["normal"], "")]
    assert main(["tag", files["blip"], files["normal"], "-c", ckpt, "--format", "csv",
                 "--windows", "--top-k", "1", "-q"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    blip = [r for r in rows if r["file"] == files["blip"]]
    assert [r["window"] for r in blip] == ["all", "0"]
    assert {r["notes"] for r in blip} == {f"digital silence; {SHORT}"}
    assert {r["notes"] for r in rows if r["file"] == files["normal"]} == {""}
