"""Every way an audio file can be unusable gives one AudioError line naming the file."""
import os

import numpy as np
import pytest
import soundfile as sf

import torch

from gnn_audio.data.audio import AudioBlocks, AudioError, audio_info, load_audio

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


def test_fifo_symlink_loop_broken_link_and_unreadable(tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    loop_a, loop_b = tmp_path / "a.wav", tmp_path / "b.wav"
    os.symlink(loop_b, loop_a)
    os.symlink(loop_a, loop_b)
    broken = tmp_path / "broken.wav"
    os.symlink(tmp_path / "gone.wav", broken)
    for load in (audio_info, load_audio, AudioBlocks):
        _raises(fifo, "is a FIFO (named pipe), not an audio file", load)
        _raises(loop_a, "symbolic link loop", load)
        _raises(broken, f"broken symbolic link (to {tmp_path / 'gone.wav'}, which does not "
                "exist)", load)
    good = tmp_path / "good.wav"
    sf.write(str(good), _signal(0.1), SR)
    link = tmp_path / "link.wav"
    os.symlink(good, link)  # a working link is a file like any other
    assert load_audio(link, sample_rate=None).shape == (1, int(0.1 * SR))
    if os.geteuid() != 0:  # root reads every file
        good.chmod(0)
        _raises(good, "cannot read it (permission denied)")


def mp3_with_overstated_count(path, seconds=3.0, channels=1, extra_frames=1):
    """An MP3 whose Xing header counts ``extra_frames`` MPEG frames more than the stream holds,
    as some encoders write them: libsndfile's frame count then exceeds what decodes, with no
    decoder error (a real recording: 152,064 announced, 150,912 decoded)."""
    x = _signal(seconds, channels)
    sf.write(str(path), x, SR, format="MP3")
    raw = bytearray(path.read_bytes())
    at = raw.find(b"Xing") + 8  # "Xing", 4 flag bytes, then the frame count (big-endian)
    count = int.from_bytes(raw[at:at + 4], "big")
    raw[at:at + 4] = (count + extra_frames).to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    with sf.SoundFile(str(path)) as f:
        header, decoded = f.frames, f.read().shape[0]
    assert header > decoded  # the file is made as intended
    return header, decoded


@pytest.mark.parametrize("channels", [1, 2])
def test_mp3_with_an_estimated_frame_count_decodes_whole(tmp_path, channels):
    path = tmp_path / "field_recording.mp3"
    header, decoded = mp3_with_overstated_count(path, channels=channels)
    info = audio_info(path)
    assert info.estimated and info.frames == header
    wav = load_audio(path, sample_rate=None)
    assert wav.shape == (1, decoded)
    blocks = AudioBlocks(path, sample_rate=None, block_frames=10000)
    assert blocks.info.frames == decoded and not blocks.info.estimated
    assert blocks.num_samples == decoded
    streamed = torch.cat(list(blocks), dim=1)
    # libmpg123's float output may round differently at a read's edges (1.2e-7 measured)
    assert streamed.shape == wav.shape and torch.allclose(streamed, wav, rtol=0, atol=1e-6)
    at_16k = load_audio(path, sample_rate=16000)
    resampled = AudioBlocks(path, sample_rate=16000, block_frames=7000)
    assert resampled.num_samples == at_16k.size(1)
    assert torch.allclose(torch.cat(list(resampled), dim=1), at_16k, atol=1e-5)


def test_a_truncated_pcm_wav_is_still_refused_and_a_broken_mp3_too(tmp_path):
    full = tmp_path / "full.wav"
    sf.write(str(full), _signal(), SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:30000])
    for load in (load_audio, AudioBlocks):
        _raises(cut, "truncated file", lambda p: list(load(p)) if load is AudioBlocks
                else load(p))
    garbage = tmp_path / "garbage.mp3"
    sf.write(str(garbage), _signal(channels=1), SR, format="MP3")
    raw = bytearray(garbage.read_bytes())
    raw[2000:] = bytes(len(raw) - 2000)  # the stream's frames after the first ones zeroed
    garbage.write_bytes(bytes(raw))
    for load in (load_audio, AudioBlocks):  # the decoder fails: then it is an error
        _raises(garbage, "corrupt or truncated file, decoding failed", lambda p: list(load(p))
                if load is AudioBlocks else load(p))
