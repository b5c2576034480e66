import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gnn_audio.data import FbankConfig, fbank, load_audio
from gnn_audio.data.augment import AugmentConfig
from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.dataset import ItemError, TaggingDataset
from gnn_audio.data.store import WaveformStore
from gnn_audio.data.synthetic.signals import mixture, write_wav
from gnn_audio.labels import LabelSet

LABELS = LabelSet("test", ("/m/a", "/m/b", "/m/c", "/m/d"), ("A", "B", "C", "D"))
FB = FbankConfig(target_length=200)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    items = []
    for i in range(6):
        sr = (44100, 22050, 16000)[i % 3]
        path = root / f"c{i}.wav"
        write_wav(path, mixture(1.0 + 0.3 * i, sr, {"tone": {"freq": 200.0 * (i + 1)},
                                                     "noise": {}}, seed=i), sr)
        items.append(Clip(f"clip{i}", str(path), (i % 4,) if i % 2 else (0, i % 4)))
    return ClipList("train", LABELS, items)


@pytest.fixture(scope="module")
def store(clips, tmp_path_factory):
    return WaveformStore.build(clips, tmp_path_factory.mktemp("store") / "train", progress=False)


def test_eval_items_from_store_and_from_files(clips, store):
    by_store, by_file = TaggingDataset(store, FB), TaggingDataset(clips, FB)
    assert len(by_store) == len(by_file) == 6
    for i in range(6):
        feats, target, cid = by_store[i]
        ref, ref_target, ref_id = by_file[i]
        assert feats.shape == (200, 128) and target.shape == (4,) and cid == ref_id == f"clip{i}"
        assert torch.equal(target, torch.from_numpy(clips.targets()[i])) and torch.equal(
            target, ref_target)
        expected = fbank(load_audio(clips.clips[i].path)[0], FB)
        torch.testing.assert_close(ref, expected, atol=0.011, rtol=0)  # KaldiFbank == fbank
        level = expected * FB.norm_std + FB.norm_mean
        loud = level > level.max() - np.log(1e6)
        assert (feats - ref)[loud].abs().max() < 0.01  # store quantisation (FEATURE_TOLERANCE)
    assert torch.equal(by_store[3][0], by_store[3][0])  # evaluation is deterministic


def test_train_items_are_reproducible_per_seed_epoch_and_index(store):
    aug = AugmentConfig(mixup=1.0)
    a, b = TaggingDataset(store, FB, aug, train=True, seed=1), TaggingDataset(
        store, FB, aug, train=True, seed=1)
    own = torch.from_numpy(store.targets)
    mixed = 0
    for i in range(len(store)):
        fa, ta, _ = a[i]
        fb_, tb, _ = b[i]
        assert torch.equal(fa, fb_) and torch.equal(ta, tb)
        # lam * own + (1 - lam) * partner's, lam ~ Beta(10, 10): the own labels keep >= lam
        assert torch.all(ta[own[i] > 0] > 0.1) and torch.all((ta >= 0) & (ta <= 1))
        mixed += bool(((ta > 0) & (ta < 1)).any())
    assert mixed >= len(store) - 2  # a partner with the same labels leaves the target whole
    b.set_epoch(1)
    assert not torch.equal(a[0][0], b[0][0])
    a.set_epoch(1)
    assert torch.equal(a[0][0], b[0][0])
    # (index, draw) pairs: repeated draws of one clip get their own augmentation
    assert not torch.equal(a[(2, 10)][0], a[(2, 11)][0])
    assert torch.equal(a[(2, 10)][0], b[(2, 10)][0])


def test_spec_augment_masks_before_normalisation(store):
    aug = AugmentConfig(mixup=0.0, freq_mask=48, time_mask=150)
    ds = TaggingDataset(store, FB, aug, train=True)
    masked_value = (0.0 - FB.norm_mean) / FB.norm_std
    feats = torch.stack([ds[i][0] for i in range(len(store))])
    plain = torch.stack([TaggingDataset(store, FB)[i][0] for i in range(len(store))])
    assert (feats != plain).any()
    assert torch.all((feats == plain) | (feats == masked_value))
    # eval mode ignores the augmentation
    assert torch.equal(TaggingDataset(store, FB, aug, train=False)[0][0], plain[0])


def test_two_workers_read_a_store_made_in_the_parent(store):
    ds = TaggingDataset(store, FB, AugmentConfig(), train=True, seed=3)
    ds[0]  # maps the data file in the parent before the workers fork
    loader = DataLoader(ds, batch_size=2, num_workers=2, multiprocessing_context="fork")
    feats, targets, ids = next(iter(loader))
    assert feats.shape == (2, 200, 128) and targets.shape == (2, 4)
    assert torch.equal(feats[1], ds[1][0]) and list(ids) == ["clip0", "clip1"]


def test_errors_name_the_clip_and_file(clips, tmp_path):
    missing = ClipList("train", LABELS, clips.clips[:2] + [Clip("gone", str(tmp_path / "x.wav"),
                                                                (1,))])
    ds = TaggingDataset(missing, FB)
    with pytest.raises(ItemError, match=r"clip gone \(.*x\.wav\)"):
        ds[2]
    loader = DataLoader(ds, batch_size=1, num_workers=1, multiprocessing_context="fork")
    with pytest.raises(ItemError, match="x.wav"):
        list(loader)
    store_32k = WaveformStore.build(clips, tmp_path / "s32", sample_rate=32000, progress=False)
    with pytest.raises(ValueError, match="32000 Hz"):
        TaggingDataset(store_32k, FB)
    with pytest.raises(IndexError):
        ds[3]
