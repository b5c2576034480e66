"""The ``kind="panns"`` front-end: PANNs' / torchlibrosa's log-mel, per clip and batched."""
import numpy as np
import pytest
import torch

from gnn_audio.data.audio import resample
from gnn_audio.data.features import (PANNS_FBANK, PANNS_LOGMEL, FbankConfig, fbank,
                                     pad_value)
from gnn_audio.data.kaldi_fbank import KaldiFbank
from gnn_audio.data.panns_logmel import PannsLogmel, log_mel_module
from gnn_audio.zoo import create_model

RAW = PANNS_LOGMEL.replace(target_length=None)


def _signal(sample_rate, seconds, channels, seed=0):
    """``[channels, T]`` float32: a tone, a chirp to 15 kHz, white and pink noise under a slow
    envelope, peak 0.9 per channel."""
    rng = np.random.default_rng(seed)
    n = int(round(sample_rate * seconds))
    t = np.arange(n) / sample_rate
    out = []
    for c in range(channels):
        x = 0.3 * np.sin(2 * np.pi * 220 * (c + 1) * t + rng.uniform(0, 2 * np.pi))
        top = min(sample_rate / 2, 15000.0)
        x += 0.2 * np.sin(2 * np.pi * (100 * t + 0.5 * (top - 100) / seconds * t ** 2))
        x += 0.05 * rng.standard_normal(n)
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / sample_rate)
        spec[1:] /= np.sqrt(freqs[1:])
        spec[0] = 0
        pink = np.fft.irfft(spec, n)
        x += 0.1 * pink / pink.std()
        x *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t) ** 2
        out.append(0.9 * x / np.abs(x).max())
    return torch.from_numpy(np.stack(out)).float()


@pytest.fixture(scope="module")
def torchlibrosa_logmel():
    stft = pytest.importorskip("torchlibrosa.stft")
    spectrogram = stft.Spectrogram(n_fft=1024, hop_length=320, win_length=1024, window="hann",
                                   center=True, pad_mode="reflect", freeze_parameters=True)
    logmel = stft.LogmelFilterBank(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000,
                                   ref=1.0, amin=1e-10, top_db=None, freeze_parameters=True)

    def run(wav):
        with torch.no_grad():
            return logmel(spectrogram(wav[None]))[0, 0]  # [1, 1, frames, mel] -> [frames, mel]
    return run


@pytest.mark.parametrize("sample_rate, seconds, channels", [
    (32000, 0.3, 1), (16000, 1.0, 2), (22050, 3.0, 1), (44100, 10.0, 2), (48000, 30.0, 1),
    (32000, 10.0, 2)])
def test_equals_torchlibrosa(torchlibrosa_logmel, sample_rate, seconds, channels):
    # stereo is down-mixed as load_audio does: the mean of the channels, then resampled
    wav = resample(_signal(sample_rate, seconds, channels).mean(dim=0), sample_rate, 32000)
    ref = torchlibrosa_logmel(wav)
    got = fbank(wav, RAW, normalize=False)
    batched = PannsLogmel(RAW)(wav[None], normalize=False)[0]
    assert got.shape == ref.shape == (1 + wav.numel() // 320, 64)
    assert torch.equal(batched, got)
    # both are float32: their FFTs round relative to a frame's energy. Every bin within 60 dB
    # of its frame's loudest agrees to 1e-4 dB (measured <= 5.4e-5); bins far below that (the
    # empty band above 8 kHz of a 16-kHz source, near the 1e-10 floor) hold rounding noise of
    # either side, bounded in power: < 1e-5 of the frame's loudest bin (measured <= 3.1e-6)
    loudest = ref.max(dim=1, keepdim=True).values
    near = ref > loudest - 60.0
    assert near.float().mean() > 0.9
    assert (got - ref)[near].abs().max() < 1e-4
    power = (10 ** (got.double() / 10) - 10 ** (ref.double() / 10)).abs()
    assert (power / 10 ** (loudest.double() / 10)).max() < 1e-5


def test_equals_torchlibrosa_on_clips_shorter_than_one_window(torchlibrosa_logmel):
    wav = _signal(32000, 700 / 32000, 1)[0]  # 700 samples: shorter than 1024, reflectable
    ref = torchlibrosa_logmel(wav)
    got = fbank(wav, RAW, normalize=False)
    assert got.shape == ref.shape == (3, 64)
    assert (got - ref)[ref > ref.max(dim=1, keepdim=True).values - 60].abs().max() < 1e-4


def test_a_clip_too_short_to_reflect_is_zero_padded_to_half_a_window_plus_one():
    wav = _signal(32000, 200 / 32000, 1)[0]
    got = fbank(wav, RAW, normalize=False)
    padded = torch.nn.functional.pad(wav, (0, 513 - 200))
    assert got.shape == (2, 64)
    assert torch.equal(got, fbank(padded, RAW, normalize=False))
    assert fbank(torch.zeros(1), RAW, normalize=False).eq(-100.0).all()  # the 1e-10 floor
    assert torch.equal(PannsLogmel(RAW).num_frames(torch.tensor([0, 200, 513, 700, 320000])),
                       torch.tensor([2, 2, 2, 3, 1001]))


def test_padded_batch_with_lengths_equals_each_clip():
    config = PANNS_LOGMEL.replace(target_length=700, norm_mean=-20.0, norm_std=15.0)
    lengths = [64000, 200, 700, 513, 512, 1, 100000, 33333]
    g = torch.Generator().manual_seed(0)
    wavs = [0.3 * torch.randn(n, generator=g) for n in lengths]
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    batch[1, 200:] = 1.0  # whatever the batch holds past a clip's end is ignored
    out = PannsLogmel(config)(batch, torch.tensor(lengths))
    assert out.shape == (8, 700, 64)
    for i, w in enumerate(wavs):
        ref = fbank(w, config)
        torch.testing.assert_close(out[i], ref, atol=1e-4 / config.norm_std, rtol=0)
        frames = 1 + max(lengths[i], 513) // 320
        assert out[i, frames:].eq(pad_value(config)).all()  # like pad_or_cut's padding
    # the whole batch without lengths: every row its own full length (here the batch's)
    full = torch.stack([w[:33333] for w in wavs if len(w) >= 33333])
    whole = PannsLogmel(config)(full)
    for row, w in zip(whole, full):
        torch.testing.assert_close(row, fbank(w, config), atol=1e-4, rtol=0)


def test_same_bits_whatever_the_thread_count():
    wav = _signal(32000, 4.0, 2)
    module = PannsLogmel(RAW)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        many = module(wav, torch.tensor([128000, 90001]))
        torch.set_num_threads(1)
        one = module(wav, torch.tensor([128000, 90001]))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(many, one)


def test_the_preset_and_the_factory():
    assert PANNS_LOGMEL.kind == "panns" and PANNS_FBANK.kind == "kaldi"
    assert fbank(torch.zeros(320000), PANNS_LOGMEL).shape == (1001, 64)  # 10 s, centred
    assert isinstance(log_mel_module(PANNS_LOGMEL), PannsLogmel)
    assert isinstance(log_mel_module(PANNS_FBANK), KaldiFbank)
    assert log_mel_module(PANNS_FBANK)(torch.zeros(1, 320000)).shape == (1, 1000, 64)
    with pytest.raises(ValueError, match="PannsLogmel computes kind 'panns'"):
        PannsLogmel(PANNS_FBANK)
    with pytest.raises(NotImplementedError, match="cannot be streamed"):
        PannsLogmel().window_size


def test_an_old_dict_without_kind_loads_as_kaldi():
    old = PANNS_FBANK.to_dict()
    del old["kind"]
    assert FbankConfig(**old) == PANNS_FBANK and FbankConfig(**old).kind == "kaldi"
    assert create_model("cnn10", num_classes=527, fbank=old).bundle.fbank == PANNS_FBANK
    assert PANNS_LOGMEL.to_dict()["kind"] == "panns"
    assert FbankConfig(**PANNS_LOGMEL.to_dict()) == PANNS_LOGMEL


@pytest.mark.parametrize("changes, problem", [
    ({"kind": "librosa"}, "kind must be one of 'kaldi', 'panns' (got 'librosa')"),
    ({"high_freq": 0.0}, "high_freq must be > 0 Hz for kind 'panns'"),
    ({"high_freq": -1000.0}, "high_freq must be > 0 Hz for kind 'panns'"),
    ({"high_freq": 17000.0}, "0 <= low_freq < high_freq <= 16000 Hz (got 50 to 17000 Hz)"),
    ({"num_mel_bins": 0}, "num_mel_bins must be an integer >= 1 (got 0)"),
    ({"frame_length_ms": 0.01, "frame_shift_ms": 0.01},
     "must give a window of >= 2 samples and a hop of >= 1"),
    ({"frame_shift_ms": 40.0}, "frame_shift_ms (40) must not exceed frame_length_ms (32)")])
def test_a_bad_panns_front_end_is_one_line_naming_the_field(changes, problem):
    with pytest.raises(ValueError) as err:
        PANNS_LOGMEL.replace(**changes)
    message = str(err.value)
    assert "\n" not in message and message.startswith("front-end (FbankConfig): ")
    assert problem in message
    assert PANNS_LOGMEL.replace(num_mel_bins=2).num_mel_bins == 2  # kaldi's >= 4 is kaldi's
