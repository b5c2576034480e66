"""Compressed recordings whose header count is an estimate (MP3 from real encoders: libsndfile
announces more frames than decode) are tagged, explained and stored whole, as their decoder
gives them, by every command."""
import json

import numpy as np
import pytest

from gnn_audio.cli import main
from gnn_audio.data.audio import load_audio
from gnn_audio.inference import Tagger

from .data.test_audio_errors import mp3_with_overstated_count


@pytest.fixture(scope="module")
def mp3(tmp_path_factory):
    path = tmp_path_factory.mktemp("mp3") / "field_recording.mp3"
    header, decoded = mp3_with_overstated_count(path, seconds=3.0, channels=2)
    return path, header, decoded


@pytest.mark.parametrize("whole_seconds", [600.0, 0.0], ids=["whole", "streamed"])
def test_the_tagger_tags_the_whole_decoded_recording(fsd50k_checkpoint, mp3, whole_seconds):
    _, ckpt = fsd50k_checkpoint
    path, header, decoded = mp3
    tagger = Tagger(ckpt, hop=0.5)
    tagger.whole_seconds = whole_seconds
    result = tagger.tag(path)
    assert result.ok, result.error
    assert result.duration == pytest.approx(decoded / 44100)
    assert result.window_times[-1][1] == pytest.approx(decoded / 44100, abs=0.02)
    assert np.isfinite(result.scores).all()


def test_tag_and_explain_commands_take_it(fsd50k_checkpoint, mp3, tmp_path, capsys):
    _, ckpt = fsd50k_checkpoint
    path, _, decoded = mp3
    assert main(["tag", str(path), "--checkpoint", str(ckpt), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    entry = out[0] if isinstance(out, list) else out
    assert "error" not in entry and entry["duration"] == pytest.approx(decoded / 44100)
    label = Tagger(ckpt).label_names[0]
    picture = tmp_path / "why.png"
    assert main(["explain", str(path), "--checkpoint", str(ckpt), "--label", label,
                 "--out", str(picture)]) == 0
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_a_data_set_of_mp3_recordings_is_stored_whole(tmp_path, mp3):
    """``prepare`` / training's store: the decoded length, no 'truncated file' skip."""
    from gnn_audio.data.clips import Clip, ClipList
    from gnn_audio.data.store import WaveformStore
    from gnn_audio.labels import LabelSet

    path, _, _ = mp3
    labels = LabelSet("two", ("/m/a", "/m/b"), ("A", "B"))
    clips = ClipList("eval", labels, [Clip("rec", str(path), (0,))])
    store = WaveformStore.build(clips, tmp_path / "store", sample_rate=16000, progress=False)
    expected = load_audio(path, sample_rate=16000)[0]
    assert len(store) == 1
    stored = store.waveform(0)
    assert stored.shape == expected.shape  # the decoded length, not the header's estimate
    # int16 with per-clip peak scaling: within half a step of the clip's scale
    assert (stored - expected).abs().max() <= expected.abs().max() / 32767


def test_a_recording_tagged_whole_is_decoded_once(fsd50k_checkpoint, mp3, monkeypatch):
    import soundfile as sf

    _, ckpt = fsd50k_checkpoint
    path, _, decoded = mp3
    tagger = Tagger(ckpt)
    reads = []
    read = sf.SoundFile.read

    def counted(self, *args, **kwargs):
        reads.append(args[:1] or kwargs.get("frames", -1))
        return read(self, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", counted)
    result = tagger.tag(path)
    assert result.ok and result.duration == pytest.approx(decoded / 44100)
    assert len(reads) == 1  # one whole decode: no counting pass before it
