"""Every way an audio file can be unusable gives one AudioError line naming the file."""
import os

import numpy as np
import pytest
import soundfile as sf

from gnn_audio.data.audio import AudioError, audio_info, load_audio

SR = 44100


def _signal(seconds=1.0, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, (int(seconds * SR), channels)).astype(np.float32)


def _raises(path, reason, load=load_audio):
    with pytest.raises(AudioError) as err:
        load(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and reason in msg[len(f"{path}: "):] and "\n" not in msg
    assert isinstance(err.value, ValueError)
    return msg


def test_missing_empty_and_directory(tmp_path):
    _raises(tmp_path / "nothing.wav", "no such file")
    (tmp_path / "empty.wav").write_bytes(b"")
    _raises(tmp_path / "empty.wav", "empty file (0 bytes)")
    _raises(tmp_path, "is a directory")
    for load in (audio_info, load_audio):
        _raises(tmp_path / "empty.wav", "empty file", load)


@pytest.mark.parametrize("content,reason", [
    (b"hello, this is a text file\n" * 20, "not an audio file libsndfile reads"),
    (bytes(range(256)) * 8, "not an audio file libsndfile reads"),
    (b"RIFF\x00\x00\x00\x00WAVE", "corrupt or truncated file, cannot open it"),
    (b"fLaC" + bytes(100), "corrupt or truncated file, cannot open it")])
def test_non_audio_or_corrupt_file(tmp_path, content, reason):
    path = tmp_path / "fake.wav"
    path.write_bytes(content)
    _raises(path, reason)
    _raises(path, reason, audio_info)


def test_zero_length(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(str(path), np.zeros((0, 1), np.float32), 16000)
    assert os.path.getsize(path) > 0
    _raises(path, "zero-length audio (0 frames)")
    _raises(path, "zero-length audio", audio_info)


@pytest.mark.parametrize("fmt,subtype,suffix", [
    ("WAV", "PCM_U8", "wav"), ("WAV", "PCM_16", "wav"), ("WAV", "PCM_24", "wav"),
    ("WAV", "FLOAT", "wav"), ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg")])
@pytest.mark.parametrize("keep", [0.97, 0.5, 0.1])
def test_truncated(tmp_path, fmt, subtype, suffix, keep):
    full = tmp_path / f"full.{suffix}"
    sf.write(str(full), _signal(), SR, format=fmt, subtype=subtype)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[:int(len(data) * keep)])
    assert load_audio(full, sample_rate=None).shape == (1, SR)
    _raises(cut, "truncated")


def test_header_only_wav(tmp_path):
    path = tmp_path / "head.wav"
    sf.write(str(path), _signal(), SR, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:44])
    _raises(path, "truncated file (header declares 176400 bytes of audio, the file holds 0)")
    _raises(path, "truncated", audio_info)


def test_fewer_frames_than_the_header_says(tmp_path, monkeypatch):
    """Decoders that stop early without an error are caught by the frame count."""
    path = tmp_path / "a.wav"
    sf.write(str(path), _signal(), SR)
    read = sf.SoundFile.read
    monkeypatch.setattr(sf.SoundFile, "read", lambda self, *a, **k: read(self, 1000, *a[1:], **k))
    _raises(path, f"truncated file (decoded 1000 of {SR} frames)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples(tmp_path, bad):
    x = _signal(0.5, channels=1)
    x[3000:3010, 0] = bad
    path = tmp_path / "nan.wav"
    sf.write(str(path), x, SR, subtype="FLOAT")
    _raises(path, "10 frames with NaN or infinite samples (first at 0.068 s)")


@pytest.mark.parametrize("seconds", [0.3, 30.0])
def test_silence_short_and_long_clips_work(tmp_path, seconds):
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(int(seconds * SR), np.float32), SR, subtype="PCM_16")
    wav = load_audio(path)
    assert wav.shape == (1, int(round(seconds * 16000))) and bool((wav == 0).all())
    info = audio_info(path)
    assert (info.sample_rate, info.frames, info.channels) == (SR, int(seconds * SR), 1)
    assert info.duration == pytest.approx(seconds)
