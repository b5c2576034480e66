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
