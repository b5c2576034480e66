"""gnn_audio.train.evaluate: crop and sliding-window scores in one pass, batching of windows
across clips, every clip exactly once over (simulated and real) DDP ranks, metrics and files."""
import json
import multiprocessing
import os
import threading
import traceback

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import gnn_audio.train.evaluate as E
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.readers import read_fsd50k
from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like
from gnn_audio.metrics import tagging_metrics
from gnn_audio.train.distributed import DistContext, cleanup, init_distributed
from gnn_audio.train.evaluate import (EvalConfig, Predictions, build_eval_dataset, evaluate,
                                      predict)

from .conftest import free_port, needs_fork

FRAMES, MEL = 64, 32
FBANK = FbankConfig(num_mel_bins=MEL, target_length=FRAMES)


def tiny_model(frames: int, mel: int, classes: int, seed: int = 0) -> nn.Module:
    """``[B, frames, mel] -> [B, classes]`` whose output depends on every frame's position."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(frames * mel, classes)).eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny forwards: one intra-op thread is faster than several on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """7 eval clips of 0.5-3 s at 16 kHz: one shorter than 64 frames, several much longer."""
    root = make_fsd50k_like(tmp_path_factory.mktemp("fsd"), num_clips=20, sample_rate=16000,
                            max_duration=3.0, median_duration=1.0,
                            split_fractions=(0.5, 0.15, 0.35))
    return read_fsd50k(root, "eval")


@pytest.fixture(scope="module")
def full(clips):
    return build_eval_dataset(clips, FBANK)


@pytest.fixture(scope="module")
def model(clips):
    return tiny_model(FRAMES, MEL, clips.targets().shape[1])


@pytest.fixture(scope="module")
def reference(model, full):
    """Single-process predictions of both modes (batch of 8 windows)."""
    return predict(model, full, EvalConfig(batch_size=8), frames=FRAMES)


class FeatureSet(Dataset):
    """Random normalised features of given lengths; padding value (0 + 4) / 4 = 1."""

    def __init__(self, lengths, mel=8, classes=3, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = [torch.randn(t, mel, generator=g) for t in lengths]
        self.y = (torch.rand(len(lengths), classes, generator=g) > 0.5).float()
        self.fbank = FbankConfig(num_mel_bins=mel, target_length=None, norm_mean=-4.0,
                                 norm_std=4.0)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], f"clip{i}"


def test_config_validation():
    assert EvalConfig(modes="crop").modes == ("crop",)
    for bad in [dict(modes=()), dict(modes=("crop", "crop")), dict(modes=("mean",)),
                dict(window_hop=0.0), dict(window_hop=1.5), dict(batch_size=0),
                dict(num_workers=-1), dict(precision="fp8")]:
        with pytest.raises(ValueError):
            EvalConfig(**bad)


def test_crop_equals_the_dataset_cut_to_frames(clips, full, model, reference):
    lengths = [full[i][0].size(0) for i in range(len(full))]
    assert min(lengths) < FRAMES < 3 * FRAMES < max(lengths)  # padded and long clips present
    cut = TaggingDataset(clips, FBANK)
    x = torch.stack([cut[i][0] for i in range(len(cut))])
    with torch.no_grad():
        expected = torch.sigmoid(model(x)).numpy()
    np.testing.assert_allclose(reference.scores["crop"], expected, rtol=1e-5, atol=1e-6)
    assert reference.clip_ids == [cut.clip_id(i) for i in range(len(cut))]
    np.testing.assert_array_equal(reference.targets, cut.targets.numpy())
    # the windows differ from the crop for long clips, never fall below it
    assert (reference.scores["windows"] >= reference.scores["crop"] - 1e-7).all()
    long = np.array(lengths) > FRAMES
    assert (np.abs(reference.scores["windows"] - reference.scores["crop"])[long] > 1e-4).any()
    short = ~long
    np.testing.assert_allclose(reference.scores["windows"][short],
                               reference.scores["crop"][short], rtol=1e-6, atol=1e-7)


def test_windows_max_pooling_by_hand():
    lengths = [250, 20, 100, 40, 64]
    data = FeatureSet(lengths)
    model = tiny_model(32, 8, 3)
    preds = predict(model, data, EvalConfig(window_hop=0.5, batch_size=4), frames=32)
    starts = {250: list(range(0, 209, 16)) + [218], 20: [0], 100: [0, 16, 32, 48, 64, 68],
              40: [0, 8], 64: [0, 16, 32]}
    for i, t in enumerate(lengths):
        x = data.x[i]
        if t < 32:  # padded with the normalised zero frame, (0 + 4) / 4
            x = torch.cat([x, torch.ones(32 - t, 8)])
        with torch.no_grad():
            probs = torch.cat([torch.sigmoid(model(x[None, s:s + 32])) for s in starts[t]])
        np.testing.assert_allclose(preds.scores["windows"][i], probs.max(0).values.numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(preds.scores["crop"][i], probs[0].numpy(), rtol=1e-5,
                                   atol=1e-6)
    assert preds.clip_ids == [f"clip{i}" for i in range(5)]


def assert_same_predictions(got: Predictions, reference: Predictions) -> None:
    """Same clips in the same order, same targets, scores equal up to float rounding."""
    assert got.clip_ids == reference.clip_ids
    np.testing.assert_array_equal(got.targets, reference.targets)
    for mode in ("crop", "windows"):
        np.testing.assert_allclose(got.scores[mode], reference.scores[mode], rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batching_windows_across_clips(model, full, reference, batch_size):
    got = predict(model, full, EvalConfig(batch_size=batch_size), frames=FRAMES)
    for mode in ("crop", "windows"):
        np.testing.assert_allclose(got.scores[mode], reference.scores[mode], rtol=1e-5,
                                   atol=1e-6)


def test_crop_only_and_workers(model, full, reference):
    got = predict(model, full, EvalConfig(modes=("crop",), batch_size=4, num_workers=1),
                  frames=FRAMES)
    assert list(got.scores) == ["crop"]
    np.testing.assert_allclose(got.scores["crop"], reference.scores["crop"], rtol=1e-5,
                               atol=1e-6)


def test_mode_checks(model, clips, full):
    with pytest.raises(ValueError, match="target_length=None"):
        predict(model, TaggingDataset(clips, FBANK), EvalConfig(), frames=FRAMES)
    with pytest.raises(ValueError, match="train=False"):
        predict(model, TaggingDataset(clips, FBANK.replace(target_length=None), train=True),
                EvalConfig(), frames=FRAMES)
    with pytest.raises(ValueError, match="frames="):
        predict(model, full, EvalConfig(), frames=None)
    with pytest.raises(ValueError, match="pass frames="):  # crop, frames=None: lengths differ
        predict(model, full, EvalConfig(modes=("crop",)))
    with pytest.raises(ValueError, match="fp16 autocast needs a GPU"):
        predict(model, full, EvalConfig(precision="fp16"), frames=FRAMES)


def test_bf16_and_train_mode_restored(full, reference):
    model = tiny_model(FRAMES, MEL, reference.targets.shape[1]).train()
    got = predict(model, full, EvalConfig(precision="bf16"), frames=FRAMES)
    assert model.training
    np.testing.assert_allclose(got.scores["windows"], reference.scores["windows"], atol=0.02)


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_tiny_zoo_model(full):
    from gnn_audio.zoo import create_model

    torch.manual_seed(0)
    model = create_model("atgnn_pyr_t", num_classes=16, channels=[8, 16, 24, 32],
                         blocks=[1, 1, 1, 1], mlg_blocks=[1, 1, 1, 1],
                         input_size=(FRAMES, MEL), drop_path_rate=0.0)
    # fresh batch norms in eval mode give logits in the hundreds: scale them into sigmoid's
    # sensitive range, so that the comparisons below see every score
    scaled = nn.Sequential(model, Scale(0.01))
    model = scaled.train()
    one = predict(model, full, EvalConfig(batch_size=1), frames=FRAMES)
    many = predict(model, full, EvalConfig(batch_size=16), frames=FRAMES)
    assert model.training
    assert ((one.scores["crop"] > 0.05) & (one.scores["crop"] < 0.95)).mean() > 0.5
    for mode in ("crop", "windows"):
        np.testing.assert_allclose(many.scores[mode], one.scores[mode], rtol=1e-4, atol=1e-5)
    x = torch.stack([full[i][0][:FRAMES] for i in range(len(full))
                     if full[i][0].size(0) >= FRAMES])
    model.eval()
    with torch.no_grad():
        expected = torch.sigmoid(model(x)).numpy()
    long = [i for i in range(len(full)) if full[i][0].size(0) >= FRAMES]
    np.testing.assert_allclose(one.scores["crop"][long], expected, rtol=1e-4, atol=1e-5)


def test_embedding_dataset(tmp_path):
    from gnn_audio.data.audioset_embeddings import AudioSetEmbeddings, write_embedding_records

    rng = np.random.default_rng(0)
    write_embedding_records(tmp_path / "e.tfrecord", [
        (f"vid{i}", 0.0, 10.0, [i % 5], rng.normal(0, 0.5, (10, 128))) for i in range(6)])
    data = AudioSetEmbeddings(tmp_path / "e.tfrecord", num_classes=5)
    model = tiny_model(10, 128, 5)
    with pytest.raises(ValueError, match="modes=\\('crop',\\)"):
        predict(model, data, EvalConfig(), frames=10)
    crop = EvalConfig(modes=("crop",), batch_size=4)
    got = predict(model, data, crop)
    with torch.no_grad():
        expected = torch.sigmoid(model(data.features)).numpy()
    np.testing.assert_allclose(got.scores["crop"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict(model, data, crop, frames=10).scores["crop"], expected,
                               rtol=1e-5, atol=1e-6)
    assert got.clip_ids == [f"vid{i}" for i in range(6)]
    np.testing.assert_array_equal(got.targets, data.targets.numpy())
    metrics = evaluate(model, data, crop)
    assert set(metrics) == {"crop"} and metrics["crop"]["num_clips"] == 6


def gathering_in_threads(world_size: int):
    """A stand-in for ``all_gather_objects`` across ``world_size`` threads (one per rank)."""
    slots = [None] * world_size
    barrier = threading.Barrier(world_size, timeout=60)

    def gather(obj, ctx):
        slots[ctx.rank] = obj
        barrier.wait()
        return list(slots)
    return gather


def test_sharded_three_ranks_seven_clips(monkeypatch, model, full, reference):
    assert len(full) == 7
    monkeypatch.setattr(E, "all_gather_objects", gathering_in_threads(3))
    results, shares, errors = [None] * 3, [None] * 3, []
    real_assemble = E._assemble

    def spy(parts, num_clips, modes):
        shares[0] = [p["indices"] for p in parts]
        return real_assemble(parts, num_clips, modes)
    monkeypatch.setattr(E, "_assemble", spy)

    def rank(r):
        try:
            ctx = DistContext(rank=r, world_size=3, backend="gloo")
            results[r] = predict(model, full, EvalConfig(batch_size=3), ctx, frames=FRAMES)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)
    threads = [threading.Thread(target=rank, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert shares[0] == [[0, 1, 2], [3, 4], [5, 6]]
    for got in results:
        assert_same_predictions(got, reference)


def test_a_clip_gathered_twice_or_never_is_an_error(monkeypatch):
    data = FeatureSet([40, 50, 60])
    model = tiny_model(32, 8, 3)
    monkeypatch.setattr(E, "all_gather_objects", lambda obj, ctx: [obj, obj])
    with pytest.raises(RuntimeError, match="1 missing .* 2 repeated"):
        predict(model, data, EvalConfig(), DistContext(rank=0, world_size=2), frames=32)
    monkeypatch.setattr(E, "all_gather_objects", lambda obj, ctx: [obj])
    with pytest.raises(RuntimeError, match="1 missing"):
        predict(model, data, EvalConfig(), DistContext(rank=0, world_size=2), frames=32)


@needs_fork
def test_two_process_gloo_matches_single_process(tmp_path, model, full, reference):
    """Two forked ranks with torchrun's environment, a DDP-wrapped model, 7 clips (4 + 3)."""
    port = free_port()

    def child(rank):
        try:
            torch.set_num_threads(1)
            os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                              MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            ctx = init_distributed("cpu")
            try:
                ddp = torch.nn.parallel.DistributedDataParallel(model)
                got = predict(ddp, full, EvalConfig(batch_size=4), ctx, frames=FRAMES)
                got.save(tmp_path / f"rank{rank}.npz")
            finally:
                cleanup()
        except BaseException:  # noqa: BLE001 -- reported to the parent
            (tmp_path / f"rank{rank}.err").write_text(traceback.format_exc())
            os._exit(1)
        os._exit(0)

    procs = [multiprocessing.get_context("fork").Process(target=child, args=(r,))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        if p.is_alive():
            p.kill()
            p.join()
    for r in range(2):
        err = tmp_path / f"rank{r}.err"
        assert not err.exists(), err.read_text()
        assert_same_predictions(Predictions.load(tmp_path / f"rank{r}.npz"), reference)


def test_metrics_are_json_and_match_tagging_metrics(reference):
    metrics = reference.metrics()
    assert set(metrics) == {"crop", "windows"}
    text = json.dumps(metrics, allow_nan=False)
    back = json.loads(text)
    for mode in ("crop", "windows"):
        expected = tagging_metrics(reference.scores[mode], reference.targets)
        for key in ("mAP", "mAUC", "d_prime", "lwlrap"):
            assert back[mode][key] == pytest.approx(expected[key])
        assert back[mode]["num_clips"] == 7
        ap = np.array([np.nan if v is None else v for v in back[mode]["AP"]])
        np.testing.assert_allclose(ap, expected["AP"])  # NaN where a class has no positive
        assert np.isnan(ap).any()


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_save_and_load(tmp_path, reference, suffix):
    path = tmp_path / f"preds{suffix}"
    reference.save(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    back = Predictions.load(path)
    assert back.clip_ids == reference.clip_ids
    np.testing.assert_array_equal(back.targets, reference.targets)
    for mode in ("crop", "windows"):
        np.testing.assert_array_equal(back.scores[mode], reference.scores[mode])
    with pytest.raises(ValueError, match="npz or .json"):
        reference.save(tmp_path / "preds.csv")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json: not a predictions file"):
        Predictions.load(tmp_path / "bad.json")
