import numpy as np
import pytest
import soundfile as sf
import torch

from gnn_audio.data import FbankConfig, fbank, load_audio
from gnn_audio.data.synthetic.signals import chirp, mixture, noise_burst, tone


def test_fixture_covers_rates_kinds_and_channels(audio_files):
    assert {f.sample_rate for f in audio_files} == {8000, 16000, 22050, 44100, 48000}
    assert {f.kind for f in audio_files} == {"tone", "noise", "chirp", "mixture"}
    assert {f.channels for f in audio_files} == {1, 2}
    for f in audio_files:
        info = sf.info(str(f.path))
        assert info.samplerate == f.sample_rate and info.channels == f.channels


def test_load_audio_resamples_and_downmixes(audio_files):
    for f in audio_files:
        wav = load_audio(f.path, sample_rate=16000)
        assert wav.shape == (1, int(round(f.duration * 16000)))
        assert wav.dtype == torch.float32
        assert torch.isfinite(wav).all() and wav.abs().max() > 0.05
        stereo = load_audio(f.path, sample_rate=16000, mono=False)
        assert stereo.size(0) == f.channels


def test_resampled_tone_keeps_its_pitch(audio_by_name):
    wav = load_audio(audio_by_name["tone_44100_1ch"].path, sample_rate=16000)[0].numpy()
    spectrum = np.abs(np.fft.rfft(wav))
    peak_hz = np.argmax(spectrum) * 16000 / len(wav)
    assert abs(peak_hz - 440.0) < 2.0


def test_generators_are_deterministic():
    for gen in (tone, noise_burst, chirp):
        np.testing.assert_array_equal(gen(0.5, 16000, seed=3), gen(0.5, 16000, seed=3))
        assert not np.array_equal(gen(0.5, 16000, seed=3), gen(0.5, 16000, seed=4))
    mix = mixture(0.5, 16000, {"tone": {}, "noise": {}}, seed=1)
    assert np.abs(mix).max() <= 0.9 + 1e-6


def test_fbank_matches_the_psla_recipe(audio_by_name):
    wav = load_audio(audio_by_name["mixture_48000_2ch"].path)
    feats = fbank(wav)
    assert feats.shape == (1024, 128)
    frames = 1 + (wav.size(1) - 400) // 160  # 25 ms windows every 10 ms at 16 kHz
    assert torch.all(feats[frames:] == (0 - (-4.6476)) / 4.5699)  # zero padding, normalised
    raw = fbank(wav, FbankConfig(target_length=None), normalize=False)
    assert raw.shape == (frames, 128)
    assert torch.allclose(raw[:10] , (feats[:10] * 4.5699 - 4.6476), atol=1e-4)


def test_fbank_short_and_cut():
    assert fbank(torch.zeros(10)).shape == (1024, 128)
    long = torch.from_numpy(tone(12.0, 16000))
    assert fbank(long).shape == (1024, 128)
    assert fbank(long, FbankConfig(target_length=None)).shape == (1198, 128)


@pytest.mark.parametrize("sr", [8000, 22050])
def test_fbank_other_rates(sr):
    feats = fbank(torch.from_numpy(tone(1.0, sr)), FbankConfig(sample_rate=sr, num_mel_bins=64,
                                                             target_length=None))
    assert feats.shape == (98, 64)


@pytest.mark.parametrize("fmt,subtype,channels,atol", [
    ("WAV", "PCM_U8", 1, 1 / 64), ("WAV", "PCM_16", 1, 1e-4), ("WAV", "PCM_24", 2, 1e-6),
    ("WAV", "FLOAT", 2, 0.0), ("FLAC", "PCM_16", 2, 1e-4), ("FLAC", "PCM_24", 1, 1e-6),
    ("OGG", "VORBIS", 2, None)])
def test_formats_decode(tmp_path, fmt, subtype, channels, atol):
    """8/16/24-bit, float and stereo wav, FLAC and Ogg Vorbis decode to the written samples."""
    from gnn_audio.data.audio import audio_info

    sig = np.stack([tone(0.5, 16000, freq=440.0 * (c + 1), seed=c) for c in range(channels)], 1)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(str(path), sig, 16000, format=fmt, subtype=subtype)
    info = audio_info(path)
    assert (info.sample_rate, info.frames, info.channels) == (16000, 8000, channels)
    wav = load_audio(path, sample_rate=None, mono=False)
    assert wav.shape == (channels, 8000) and wav.dtype == torch.float32
    if atol is None:  # lossy: compare spectra, not samples
        for c in range(channels):
            peak = np.argmax(np.abs(np.fft.rfft(wav[c].numpy()))) * 16000 / 8000
            assert abs(peak - 440.0 * (c + 1)) < 4.0
    else:
        np.testing.assert_allclose(wav.numpy(), sig.T, atol=atol, rtol=0)
    mono = load_audio(path, sample_rate=16000)
    assert mono.shape == (1, 8000)
    torch.testing.assert_close(mono[0], wav.mean(0))


# --- block reading: AudioBlocks and StreamResampler ------------------------------------------


@pytest.mark.parametrize("orig,target", [(44100, 16000), (8000, 16000), (48000, 32000),
                                         (22050, 16000), (16000, 16000)])
def test_stream_resampler_equals_whole_signal_resampling(orig, target):
    from gnn_audio.data.audio import StreamResampler, resample, resampled_length

    rng = np.random.default_rng(orig)
    x = torch.from_numpy(rng.standard_normal((2, 3 * orig // 2 + 7)).astype(np.float32))
    whole = resample(x, orig, target)
    assert whole.size(1) == resampled_length(x.size(1), orig, target)
    for sizes in ([1, 2, 3, 500], [4096], [x.size(1)], [97, 1, 10000]):
        stream = StreamResampler(orig, target)
        parts, pos, i = [], 0, 0
        while pos < x.size(1):
            n = sizes[i % len(sizes)]
            parts.append(stream.push(x[:, pos:pos + n]))
            pos, i = pos + n, i + 1
        parts.append(stream.finish())
        got = torch.cat(parts, dim=1)
        assert got.shape == whole.shape and stream.num_out == whole.size(1)
        torch.testing.assert_close(got, whole, atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError):
        stream.push(x)


def test_resampled_length_is_exact_for_long_signals():
    from gnn_audio.data.audio import resampled_length

    # an hour at 44.1 kHz: ceil(158760001 * 160 / 441), beyond float32's exact integers
    assert resampled_length(158_760_001, 44100, 16000) == 57_600_001
    assert resampled_length(1, 48000, 16000) == 1 and resampled_length(3, 48000, 16000) == 1


@pytest.mark.parametrize("fmt,subtype,channels", [("WAV", "PCM_16", 2), ("FLAC", "PCM_24", 1),
                                                  ("WAV", "FLOAT", 2), ("OGG", "VORBIS", 2)])
@pytest.mark.parametrize("block_frames", [1000, 1 << 16])
def test_audio_blocks_put_together_equal_load_audio(tmp_path, fmt, subtype, channels,
                                                    block_frames):
    from gnn_audio.data.audio import AudioBlocks

    sig = np.stack([chirp(2.3, 44100, seed=c) for c in range(channels)], 1)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(str(path), sig, 44100, format=fmt, subtype=subtype)
    for mono in (True, False):
        blocks = AudioBlocks(path, sample_rate=16000, mono=mono, block_frames=block_frames)
        parts = list(blocks)
        got = torch.cat(parts, dim=1)
        want = load_audio(path, sample_rate=16000, mono=mono)
        assert got.shape == want.shape == (blocks.channels, blocks.num_samples)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        # a block's worth of output, give or take the filter's groups of 160 samples
        assert max(p.size(1) for p in parts) <= block_frames * 16000 // 44100 + 2 * 160
    assert AudioBlocks(path, sample_rate=None).num_samples == sf.info(str(path)).frames


def test_audio_blocks_report_bad_files_in_one_line(tmp_path, monkeypatch):
    from gnn_audio.data.audio import AudioBlocks, AudioError

    with pytest.raises(AudioError, match=f"^{tmp_path / 'no.wav'}: no such file$"):
        AudioBlocks(tmp_path / "no.wav")
    x = tone(3.0, 16000)
    x[40000:40003] = np.inf
    path = tmp_path / "inf.wav"
    sf.write(str(path), x, 16000, subtype="FLOAT")
    blocks = AudioBlocks(path, block_frames=5000)  # the header is fine
    with pytest.raises(AudioError, match=rf"^{path}: NaN or infinite samples \(first at "
                                         r"2\.500 s\)$"):
        list(blocks)
    good = tmp_path / "good.wav"
    sf.write(str(good), tone(1.0, 16000), 16000)
    read = sf.SoundFile.read
    calls = []

    def stops_early(self, frames=-1, *args, **kwargs):  # a decoder that ends too soon
        calls.append(frames)
        return read(self, frames, *args, **kwargs) if len(calls) < 2 else \
            np.zeros((0, 1), np.float32)
    monkeypatch.setattr(sf.SoundFile, "read", stops_early)
    with pytest.raises(AudioError, match=rf"^{good}: truncated file \(decoded 4000 of 16000 "
                                         r"frames\)$"):
        list(AudioBlocks(good, block_frames=4000))
