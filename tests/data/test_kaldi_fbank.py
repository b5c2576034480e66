import pytest
import torch

from gnn_audio.data import FbankConfig, fbank
from gnn_audio.data.kaldi_fbank import KaldiFbank
from gnn_audio.data.synthetic.signals import mixture


def _wav(seconds, seed=0, sr=16000):
    return torch.from_numpy(mixture(seconds, sr, {"tone": {}, "noise": {}, "chirp": {}},
                                    seed=seed))


@pytest.mark.parametrize("config", [FbankConfig(), FbankConfig(target_length=None),
                                    FbankConfig(sample_rate=32000, num_mel_bins=64,
                                                frame_length_ms=32.0, target_length=1000,
                                                low_freq=50.0, high_freq=14000.0)])
def test_equals_kaldi_fbank_clip_by_clip(config):
    frontend = KaldiFbank(config)
    for seconds in (0.01, 0.025, 0.3, 2.0, 10.3):
        wav = _wav(seconds, sr=config.sample_rate)
        ref = fbank(wav, config)
        got = frontend(wav[None])[0]
        assert got.shape == ref.shape
        # float32 rounding of the FFT is relative to a frame's energy: the log of bins far
        # below it (fade-ins, empty bands) moves by up to ~0.02, bins within 60 dB by < 1e-4
        torch.testing.assert_close(got, ref, atol=0.05 / config.norm_std, rtol=0)
        raw = frontend(wav[None], normalize=False)[0]
        ref_raw = fbank(wav, config, normalize=False)
        within_60db = ref_raw > ref_raw.max() - 13.82
        assert (raw - ref_raw)[within_60db].abs().max() < 1e-4


def test_padded_batch_with_lengths_equals_each_clip():
    config = FbankConfig(target_length=300)
    wavs = [_wav(s, seed=i) for i, s in enumerate((2.0, 0.7, 0.02, 3.5))]
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    lengths = torch.tensor([len(w) for w in wavs])
    out = KaldiFbank(config)(batch, lengths)
    assert out.shape == (4, 300, 128)
    for i, w in enumerate(wavs):
        torch.testing.assert_close(out[i], fbank(w, config), atol=0.011, rtol=0)
    assert torch.equal(KaldiFbank(config).num_frames(lengths),
                       torch.tensor([198, 68, 1, 348]))


@pytest.mark.parametrize("changes, problem", [
    ({"num_mel_bins": 0}, "num_mel_bins must be an integer >= 4"),
    ({"num_mel_bins": 3}, "num_mel_bins must be an integer >= 4"),
    ({"target_length": 0}, "target_length must be an integer >= 1"),
    ({"target_length": 2.5}, "target_length must be an integer >= 1"),
    ({"sample_rate": 0}, "sample_rate must be an integer >= 1"),
    ({"frame_shift_ms": 0.0}, "frame_shift_ms must be > 0"),
    ({"norm_std": 0.0}, "norm_std must be > 0"),
    ({"high_freq": 9000.0}, "0 <= low_freq < high_freq <= 8000 Hz (got 20 to 9000 Hz)"),
    ({"low_freq": 8000.0}, "0 <= low_freq < high_freq <= 8000 Hz"),
    ({"frame_shift_ms": 30.0}, "frame_shift_ms (30) must not exceed frame_length_ms (25)")])
def test_a_bad_front_end_is_one_line_naming_the_field(changes, problem):
    with pytest.raises(ValueError) as err:
        FbankConfig().replace(**changes)
    message = str(err.value)
    assert message.startswith("front-end (FbankConfig): ") and problem in message
    assert "\n" not in message


def test_the_presets_and_an_unbounded_length_are_valid():
    from gnn_audio.data.features import AST_AUDIOSET_FBANK, AUDIOSET_FBANK, PANNS_FBANK

    for config in (FbankConfig(), AUDIOSET_FBANK, AST_AUDIOSET_FBANK, PANNS_FBANK,
                   FbankConfig(target_length=None, num_mel_bins=4)):
        assert FbankConfig(**config.to_dict()) == config
