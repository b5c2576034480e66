import numpy as np
import pytest
import torch

from gnn_audio.data.audioset_embeddings import (AudioSetEmbeddings, dequantize, quantize,
                                                read_embedding_records,
                                                write_embedding_records)
from gnn_audio.zoo import create_model


def make_clips(n, seed, num_classes=527, strong=(0, 1, 2, 3)):
    """Clips whose embeddings carry their labels: label c shifts dimensions 4c..4c+3."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        labels = sorted(set(rng.choice(strong, size=rng.integers(1, 3), replace=False).tolist()))
        frames = int(rng.integers(6, 13))  # releases have 10; test padding and cutting
        emb = rng.normal(0, 0.3, size=(frames, 128))
        for c in labels:
            emb[:, 4 * c:4 * c + 4] += 1.0
        clips.append((f"vid{seed}_{i:04d}", 30.0 + i, 40.0 + i, labels, np.clip(emb, -2, 2)))
    return clips


def test_quantisation_round_trip():
    q = np.arange(256, dtype=np.uint8)
    x = dequantize(q)
    assert x.min() == pytest.approx(-2 + 4 / 512) and x.max() == pytest.approx(2 + 4 / 512)
    np.testing.assert_array_equal(quantize(x), q)


def test_write_then_read_sequence_examples(tmp_path):
    clips = make_clips(20, seed=0)
    path = tmp_path / "bal_train00.tfrecord"
    assert write_embedding_records(path, clips) == 20
    got = list(read_embedding_records(path))
    assert len(got) == 20
    for (vid, start, end, labels, emb), clip in zip(clips, got):
        assert clip.video_id == vid and clip.labels == labels
        assert clip.start == pytest.approx(start) and clip.end == pytest.approx(end)
        assert clip.embedding.shape == (10, 128) and clip.embedding.dtype == np.float32
        n = min(10, len(emb))
        np.testing.assert_allclose(clip.embedding[:n], emb[:n], atol=4 / 255)
        assert np.all(clip.embedding[n:] == 0)
    # a record without a single embedding frame reads as num_frames zero frames
    write_embedding_records(tmp_path / "empty.tfrecord", [("v0", 0, 10, [1],
                                                           np.zeros((0, 128), np.uint8))])
    (clip,) = read_embedding_records(tmp_path / "empty.tfrecord", num_frames=4)
    assert clip.embedding.shape == (4, 128) and clip.embedding.dtype == np.float32
    assert not clip.embedding.any()
    (tmp_path / "empty.tfrecord").unlink()
    # a folder and a glob read the same records
    assert len(list(read_embedding_records(tmp_path))) == 20
    assert len(list(read_embedding_records(str(tmp_path / "*.tfrecord")))) == 20


def test_dataset_multi_hot(tmp_path):
    write_embedding_records(tmp_path / "a.tfrecord", make_clips(8, seed=1))
    data = AudioSetEmbeddings(tmp_path / "a.tfrecord")
    x, y = data[0]
    assert x.shape == (10, 128) and y.shape == (527,)
    assert y.sum() >= 1 and set(torch.nonzero(y).flatten().tolist()) <= {0, 1, 2, 3}
    write_embedding_records(tmp_path / "bad.tfrecord", [("v", 0, 1, [600], np.zeros((10, 128)))])
    with pytest.raises(ValueError, match="outside"):
        AudioSetEmbeddings(tmp_path / "bad.tfrecord")


@pytest.mark.parametrize("name", ["fc1", "fc2", "lstm_tagger", "gated_cnn_tagger"])
def test_embedding_baselines_train_on_a_tfrecord(tmp_path, name):
    path = tmp_path / "train.tfrecord"
    write_embedding_records(path, make_clips(64, seed=2))
    data = AudioSetEmbeddings(path)
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = create_model(name)
    # the student report: Adam, lr 1e-3; the LSTM with gradient clipping at 5
    recipe = dict(lr=1e-3, **({"clip_grad_norm": 5.0} if name == "lstm_tagger" else {}))
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    losses = []
    for _ in range(10):
        for x, y in loader:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad()
            loss.backward()
            if "clip_grad_norm" in recipe:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["clip_grad_norm"])
            opt.step()
            losses.append(loss.item())
    assert all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < 0.5 * losses[0], (losses[0], losses[-4:])
