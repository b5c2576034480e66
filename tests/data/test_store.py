import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from gnn_audio.data import FbankConfig, fbank, load_audio
from gnn_audio.data.clips import Clip, ClipList, Skipped
from gnn_audio.data.store import FEATURE_TOLERANCE, StoreError, WaveformStore
from gnn_audio.data.synthetic.signals import mixture, tone, write_wav
from gnn_audio.labels import LabelSet

LABELS = LabelSet("test", ("/m/a", "/m/b", "/m/c"), ("A", "B", "C"))


def _signal(seconds, sr, seed, channels=1, amplitude=0.9):
    x = mixture(seconds, sr, {"tone": {"freq": 300.0 + 100 * seed}, "noise": {}, "chirp": {}},
                seed=seed) * amplitude / 0.9
    if channels == 1:
        return x
    return np.stack([x, np.roll(x, 100) * 0.5], axis=1)


def make_clips(root, specs, name="train"):
    """``specs``: (sample_rate, channels, seconds, amplitude) per clip."""
    root.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, (sr, ch, sec, amp) in enumerate(specs):
        path = root / f"clip{i}.wav"
        write_wav(path, _signal(sec, sr, i, ch, amp), sr)
        clips.append(Clip(f"id{i}", str(path), tuple(sorted({i % 3, (i + 1) % 3} if i % 2
                                                              else {i % 3})), f"list.csv:{i + 2}"))
    return ClipList(name, LABELS, clips)


SPECS = [(44100, 1, 1.0, 0.9), (22050, 1, 0.7, 0.5), (44100, 2, 1.2, 0.9),
         (16000, 1, 0.3, 0.01), (48000, 2, 0.8, 0.3)]


@pytest.fixture()
def clips(tmp_path):
    return make_clips(tmp_path / "audio", SPECS)


def test_round_trip_ids_targets_and_waveforms(clips, tmp_path):
    store = WaveformStore.build(clips, tmp_path / "store", progress=False)
    assert store.report.decoded == len(clips) and store.report.reused == 0
    assert len(store) == len(clips) and list(store.clip_ids) == [c.clip_id for c in clips.clips]
    np.testing.assert_array_equal(store.targets, clips.targets())
    assert store.label_set == LABELS and store.sample_rate == 16000 and store.dtype == "int16"
    for i, clip in enumerate(clips.clips):
        ref = load_audio(clip.path, sample_rate=16000)[0]
        wav = store.waveform(i)
        assert wav.dtype == torch.float32 and wav.shape == ref.shape
        assert store.labels(i) == clip.labels and store.source(i) == clip.path
        # per-clip peak scaling: at most half a step of peak / 32767
        peak = ref.abs().max()
        assert (wav - ref).abs().max() <= peak / 32767 * 0.5 + 1e-7
    # a reopened store (another process would do the same) reads the same samples
    again = WaveformStore(tmp_path / "store")
    assert torch.equal(again.waveform(2), store.waveform(2))


def test_float16_store(clips, tmp_path):
    store = WaveformStore.build(clips, tmp_path / "f16", dtype="float16", progress=False)
    for i, clip in enumerate(clips.clips):
        ref = load_audio(clip.path)[0]
        assert torch.allclose(store.waveform(i), ref, rtol=2 ** -11, atol=6e-8)


def test_random_access(clips, tmp_path):
    store = WaveformStore.build(clips, tmp_path / "store", progress=False)
    seq = [store.waveform(i) for i in range(len(store))]
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(store), 30):
        assert torch.equal(store.waveform(int(i)), seq[i])


class _Reader(Dataset):
    def __init__(self, store):
        self.store = store

    def __len__(self):
        return len(self.store)

    def __getitem__(self, i):
        return i, os.getpid(), self.store.waveform(i).sum()


def test_read_by_two_forked_workers(clips, tmp_path):
    store = WaveformStore.build(clips, tmp_path / "store", progress=False)
    expected = [store.waveform(i).sum() for i in range(len(store))]  # mapped in the parent
    loader = DataLoader(_Reader(store), batch_size=None, num_workers=2,
                        multiprocessing_context="fork")
    seen = list(loader)
    assert len({pid for _, pid, _ in seen} - {os.getpid()}) == 2
    for i, _, total in seen:
        assert torch.equal(total, expected[i])


def test_features_from_store_equal_features_from_source(tmp_path):
    # 44.1 kHz clips at 0, -10 and -40 dBFS, one with a silent gap (measured on 10-s clips too)
    specs = [(44100, 1, 4.0, 0.9), (44100, 2, 4.0, 0.3), (44100, 1, 4.0, 0.01)]
    clips = make_clips(tmp_path / "audio", specs)
    gap = load_audio(clips.clips[0].path, 44100)[0].numpy().copy()
    gap[44100 * 1:44100 * 2] = 0.0
    write_wav(clips.clips[0].path, gap, 44100)
    store = WaveformStore.build(clips, tmp_path / "store", progress=False)
    cfg = FbankConfig()
    for i, clip in enumerate(clips.clips):
        src = fbank(load_audio(clip.path)[0], cfg)
        got = fbank(store.waveform(i), cfg)
        frames = load_audio(clip.path).size(1) // 160 - 2
        src, got = src[:frames], got[:frames]
        level = src * cfg.norm_std + cfg.norm_mean  # log mel energy
        within_60db = level > level.max() - np.log(1e6)
        diff = (got - src).abs()
        assert diff[within_60db].max() < FEATURE_TOLERANCE, (clip.clip_id, float(diff.max()))
        assert within_60db.sum() > 4000
        # below, the 16-bit source's own noise floor: bounded, small on average
        assert diff.max() < 1.0 and diff.mean() < 0.03
        # the padding frames stay exactly the padding value
        assert torch.equal(fbank(store.waveform(i), cfg)[frames + 2:],
                           fbank(load_audio(clip.path)[0], cfg)[frames + 2:])


def test_changed_source_invalidates_and_rebuilds_only_that_clip(clips, tmp_path):
    store = WaveformStore.build(clips, tmp_path / "store", progress=False)
    assert store.is_current(clips)
    again = WaveformStore.build(clips, tmp_path / "store", progress=False)
    assert again.report.up_to_date and again.report.decoded == 0
    # rewrite one source with other content: size the same, mtime later
    path = clips.clips[1].path
    write_wav(path, tone(0.7, 22050, freq=1000.0), 22050)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    assert not store.is_current(clips)
    assert any("id1" in line and "changed" in line for line in store.changes(clips))
    rebuilt = WaveformStore.build(clips, tmp_path / "store", progress=False)
    assert rebuilt.report.decoded == 1 and rebuilt.report.reused == len(clips) - 1
    assert rebuilt.report.changed == ["id1"] and "id1" in rebuilt.report.summary()
    ref = load_audio(path)[0]
    assert (rebuilt.waveform(1) - ref).abs().max() < 1e-4
    assert torch.equal(rebuilt.waveform(0), store.waveform(0))
    # touching a file (same bytes, new mtime) and changing labels also count
    os.utime(clips.clips[0].path)
    assert "id0" in " ".join(rebuilt.changes(clips))
    relabelled = ClipList("train", LABELS, [Clip("id0", clips.clips[0].path, (2,))]
                          + clips.clips[1:])
    assert any("labels changed" in line for line in rebuilt.changes(relabelled))
    assert not rebuilt.is_current(clips, sample_rate=32000)


def test_interrupted_build_is_detected(clips, tmp_path):
    path = tmp_path / "store"
    WaveformStore.build(clips, path, progress=False)
    (path / "index.npz").unlink()  # killed after the data file, before the index
    with pytest.raises(StoreError, match="interrupted"):
        WaveformStore(path)
    store = WaveformStore.build(clips, path, progress=False)  # builds again
    assert len(store) == len(clips) and store.report.decoded == len(clips)
    assert store.data_path.name.startswith("waveforms.") and store.data_path.suffix == ".raw"
    with open(store.data_path, "r+b") as f:  # a damaged data file
        f.truncate(100)
    with pytest.raises(StoreError, match=store.data_path.name):
        WaveformStore(path)
    with pytest.raises(StoreError, match="not a waveform store"):
        WaveformStore(tmp_path / "nothing")


def _with_bad_file(clips, tmp_path):
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    return ClipList("train", LABELS, clips.clips[:2] + [Clip("bad", str(bad), (0,))]
                    + clips.clips[2:], [Skipped("list.csv:9", "unknown label id '/m/x'")]), bad


def test_bad_file_error_names_the_file(clips, tmp_path):
    listed, bad = _with_bad_file(clips, tmp_path)
    with pytest.raises(StoreError, match="broken.wav") as err:
        WaveformStore.build(listed, tmp_path / "store", num_workers=2, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "store" / "index.npz").exists()
    assert not (tmp_path / "store" / "waveforms.raw.tmp").exists()


def test_skip_bad_writes_the_report(clips, tmp_path):
    listed, bad = _with_bad_file(clips, tmp_path)
    store = WaveformStore.build(listed, tmp_path / "store", skip_bad=True, progress=False)
    assert len(store) == len(clips) and "bad" not in list(store.clip_ids)
    report = (tmp_path / "store" / "skipped.txt").read_text().splitlines()
    assert len(report) == 2 and report[0].startswith("list.csv:9\t")
    assert report[1].startswith(f"{bad}\t") and "broken.wav" in report[1].split("\t")[1]
    assert len(store.report.skipped) == 2
    again = WaveformStore.build(listed, tmp_path / "store", skip_bad=True, progress=False)
    assert again.report.up_to_date
    assert again.report.summary() == \
        f"up to date, 2 skipped (see {tmp_path / 'store' / 'skipped.txt'})"
    assert [s.where for s in again.skipped] == ["list.csv:9", str(bad)]
    # without skip_bad the same listing raises instead of reusing the skipping store
    with pytest.raises(StoreError, match="broken.wav"):
        WaveformStore.build(listed, tmp_path / "store", progress=False)


def test_store_object_pickles_without_its_map(clips, tmp_path):
    import pickle

    store = WaveformStore.build(clips, tmp_path / "store", progress=False)
    store.waveform(0)
    copy = pickle.loads(pickle.dumps(store))
    assert copy._data is None and torch.equal(copy.waveform(4), store.waveform(4))


def test_format_1_store_is_refused_and_built_again(clips, tmp_path):
    import json

    path = tmp_path / "store"
    store = WaveformStore.build(clips, path, progress=False)
    # a store of format 1: one fixed data file name, no checksums
    with np.load(path / "index.npz") as z:
        arrays = {k: z[k] for k in z.files if k not in ("crcs", "skip_paths", "skip_stats")}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({k: meta[k] for k in (
        "name", "sample_rate", "dtype", "label_set", "mids", "names")} | {"format": 1}))
    np.savez(path / "index.npz", **arrays)
    store.data_path.rename(path / "waveforms.raw")
    with pytest.raises(StoreError, match="store format 1, expected 2; build the store again"):
        WaveformStore(path)
    rebuilt = WaveformStore.build(clips, path, progress=False)
    assert rebuilt.report.decoded == len(clips) and not (path / "waveforms.raw").exists()
    rebuilt.verify()
    assert torch.equal(rebuilt.waveform(3), store.waveform(3))
