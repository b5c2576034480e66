import pytest
import torch

from gnn_audio.data.features import FbankConfig, pad_value
from gnn_audio.data.kaldi_fbank import KaldiFbank
from gnn_audio.data.windows import Windowing, logmel_windows, window_starts


def test_window_starts():
    assert window_starts(20, 32, 16) == [0]
    assert window_starts(32, 32, 16) == [0]
    assert window_starts(40, 32, 16) == [0, 8]
    assert window_starts(64, 32, 16) == [0, 16, 32]
    assert window_starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert window_starts(100, 32, 32) == [0, 32, 64, 68]
    assert window_starts(100, 32, 1) == list(range(69))


def test_windowing_defaults_and_fraction():
    assert (Windowing(32).window, Windowing(32).hop) == (32, 16)
    assert Windowing(32, 10).hop == 5
    assert Windowing.from_fraction(32, 0.5) == Windowing(32, 32, 16)
    assert Windowing.from_fraction(32, 0.01).hop == 1
    assert Windowing.from_fraction(100, 0.5).starts(250) == [0, 50, 100, 150]


@pytest.mark.parametrize("kwargs,message", [
    (dict(frames=0), "frames must be"), (dict(frames=8, window=9), "window must be in"),
    (dict(frames=8, window=4, hop=5), "hop must be in"), (dict(frames=8, hop=0), "hop must")])
def test_windowing_refuses_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Windowing(**kwargs)
    with pytest.raises(ValueError, match="window_hop"):
        Windowing.from_fraction(8, 1.5)


def test_cut_pads_short_windows_with_the_pad_value():
    logmel = torch.arange(30.0).reshape(10, 3)
    w = Windowing(8, 6, 3)
    starts, windows = w.windows(logmel, pad=-1.0)
    assert starts == [0, 3, 4] and windows.shape == (3, 8, 3)
    assert torch.equal(windows[1, :6], logmel[3:9]) and torch.all(windows[:, 6:] == -1.0)
    first, crop = w.windows(logmel, pad=-1.0, first_only=True)
    assert first == [0] and torch.equal(crop[0], windows[0])
    short = Windowing(8).cut(logmel[:3], 0, -2.0)
    assert torch.equal(short[:3], logmel[:3]) and torch.all(short[3:] == -2.0)


def test_streamed_windows_are_the_whole_signals_windows():
    """Blocks of any size give the windows the whole signal gives, placed by Windowing."""
    fb = FbankConfig(num_mel_bins=16, target_length=None)
    x = torch.randn(16000 * 3, generator=torch.Generator().manual_seed(0)) * 0.1
    whole = KaldiFbank(fb)(x[None])[0]
    w = Windowing(64, 50, 20)
    for block in (x.numel(), 4093, 160):
        got = list(logmel_windows(x.split(block), x.numel(), fb, w))
        assert [s for s, _, _ in got] == w.starts(whole.size(0))
        for start, end, feats in got:
            assert end == w.end(start, whole.size(0)) and feats.shape == (64, 16)
            torch.testing.assert_close(feats, w.cut(whole, start, pad_value(fb)),
                                       atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="num_samples says"):
        list(logmel_windows([x[:100]], 200, fb, w))
    with pytest.raises(ValueError, match="more than num_samples"):
        list(logmel_windows([x[:300]], 200, fb, w))
