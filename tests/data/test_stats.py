import numpy as np
import pytest

from gnn_audio.data import FbankConfig, fbank, load_audio
from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.stats import compute_norm_stats
from gnn_audio.data.store import WaveformStore
from gnn_audio.data.synthetic.signals import mixture, write_wav
from gnn_audio.labels import LabelSet


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    items = []
    for i, seconds in enumerate((0.3, 1.0, 2.5, 0.8)):
        path = root / f"c{i}.wav"
        write_wav(path, mixture(seconds, 44100, {"chirp": {}, "noise": {}}, seed=i) * 0.5 ** i,
                  44100)
        items.append(Clip(f"c{i}", str(path), (0,)))
    return ClipList("train", LabelSet("t", ("/m/a",), ("A",)), items)


def _direct(wavs, cfg):
    # un-normalised log-mel of every real frame, no padding frames
    feats = np.concatenate([fbank(w, cfg.replace(target_length=None), normalize=False).numpy()
                            for w in wavs]).astype(np.float64)
    return feats.mean(), feats.std()


def test_stats_equal_a_direct_numpy_computation(clips, tmp_path):
    cfg = FbankConfig()  # target_length 1024: padding must not count
    mean, std = compute_norm_stats(clips, cfg)
    ref_mean, ref_std = _direct([load_audio(c.path)[0] for c in clips.clips], cfg)
    assert mean == pytest.approx(ref_mean, abs=1e-3) and std == pytest.approx(ref_std, abs=1e-3)
    store = WaveformStore.build(clips, tmp_path / "s", progress=False)
    s_mean, s_std = compute_norm_stats(store, cfg)
    ref_mean, ref_std = _direct([store.waveform(i) for i in range(len(store))], cfg)
    assert s_mean == pytest.approx(ref_mean, abs=1e-3) and s_std == pytest.approx(ref_std,
                                                                                abs=1e-3)
    assert s_mean == pytest.approx(mean, abs=0.01)
    assert compute_norm_stats(TaggingDataset(store, cfg), cfg) == (s_mean, s_std)
    # max_clips: evenly spaced subset (first and last clip here)
    sub = compute_norm_stats(store, cfg, max_clips=2)
    ref = _direct([store.waveform(0), store.waveform(3)], cfg)
    assert sub == pytest.approx(ref, abs=1e-3)


def test_empty_data_set_is_an_error():
    with pytest.raises(ValueError, match="no clips"):
        compute_norm_stats(ClipList("x", LabelSet("t", ("/m/a",), ("A",)), []))
