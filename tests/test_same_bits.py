"""The same evaluation gives the same number: features, and so scores, are bit-identical
whatever the ``DataLoader`` worker count and the process's thread count (training's data set,
``gnn-audio eval``, the :class:`~gnn_audio.inference.Tagger`, the pictures)."""
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from gnn_audio.cli import main
from gnn_audio.data.audio import load_audio, resample
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.kaldi_fbank import KaldiFbank
from gnn_audio.data.readers.sources import get_source
from gnn_audio.inference import Tagger
from gnn_audio.threads import one_thread
from gnn_audio.viz.inputs import file_logmel

FB = FbankConfig(num_mel_bins=64, target_length=256)


@contextmanager
def threads(n):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_the_front_end_and_the_resampler_ignore_the_thread_count():
    g = torch.Generator().manual_seed(0)
    frontend = KaldiFbank()
    differ = 0
    for _ in range(8):
        n = int(torch.randint(16000, 320000, (1,), generator=g))
        x = torch.randn(n, generator=g) * 0.1
        y = torch.randn(3 * n, generator=g) * 0.1
        with threads(1):
            one = frontend(x[None]), resample(y[None], 48000, 16000)
        with threads(2):
            two = frontend(x[None]), resample(y[None], 48000, 16000)
            with torch.no_grad():  # the unpinned computation does differ (the test can fail)
                unpinned = frontend._features(x[None], None, True)
        assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
        differ += not torch.equal(unpinned, one[0])
    if torch.get_num_interop_threads() and torch.get_num_threads() > 1:
        assert differ > 0


def test_one_thread_restores_the_count_and_nests():
    with threads(2):
        with one_thread():
            assert torch.get_num_threads() == 1
            with one_thread():
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with one_thread():
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 2


@pytest.mark.parametrize("store", [True, False], ids=["store", "no_store"])
def test_eval_scores_are_bit_identical_for_any_worker_count(fsd50k_checkpoint, tmp_path, store, capsys):
    root, ckpt = fsd50k_checkpoint
    scores = {}
    with threads(2):  # the main process computes with two threads, the workers with one
        for workers in (0, 1, 2):
            out = tmp_path / f"scores_{workers}.npz"
            args = ["eval", "--checkpoint", str(ckpt), "--data-dir", str(root),
                    "--store-dir", str(tmp_path / "stores"), "--workers", str(workers),
                    "--scores", str(out), "--device", "cpu", "--quiet", "--batch-size", "5"]
            assert main(args + ([] if store else ["--no-store"])) == 0
            with np.load(out) as f:
                scores[workers] = {k: f[k] for k in f.files}
    capsys.readouterr()
    assert scores[0].keys() == scores[1].keys() == scores[2].keys()
    assert any(v.dtype.kind == "f" and v.size for v in scores[0].values())
    crop = scores[0]["scores_crop"]
    assert 0.01 < np.median(crop) < 0.99  # scores that a changed bit would move
    for workers in (1, 2):
        for key, value in scores[0].items():
            np.testing.assert_array_equal(scores[workers][key], value, err_msg=key)


def test_tagger_dataset_and_pictures_see_the_same_features(fsd50k_checkpoint):
    root, ckpt = fsd50k_checkpoint
    wav = sorted((root / "FSD50K.eval_audio").glob("*.wav"))[:4]
    with threads(2):
        direct = Tagger(ckpt, batch_size=3).tag_files([str(p) for p in wav])
        pooled = Tagger(ckpt, batch_size=3, num_workers=2).tag_files([str(p) for p in wav])
        features = [file_logmel(p, FB) for p in wav]
        dataset = TaggingDataset(get_source("fsd50k").read({"data_dir": str(root)}, "eval"),
                                 FB.replace(target_length=None))
    for a, b in zip(direct, pooled):
        np.testing.assert_array_equal(a.scores, b.scores)
    with threads(1):  # a worker's view of the same files
        for p, f in zip(wav, features):
            i = [dataset.clip_id(j) for j in range(len(dataset))].index(p.stem)
            assert torch.equal(dataset[i][0], f)
            x = load_audio(p, sample_rate=FB.sample_rate)
            assert torch.equal(KaldiFbank(FB.replace(target_length=None))(x)[0], f)
