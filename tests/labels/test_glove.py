import numpy as np
import pytest
import torch

import gnn_audio.labels.glove as glove
from gnn_audio.labels.glove import hashed_gaussian, label_words, load_glove

WORDS = {"male": [1, 0, 0, 0], "speech": [0, 1, 0, 0], "man": [0, 0, 1, 0],
         "speaking": [0, 0, 0, 1], "zipper": [2, 2, 0, 0], "clothing": [0, 0, 2, 2],
         "dog": [1, 1, 1, 1], "the": [5, 5, 5, 5]}


@pytest.fixture
def glove_file(tmp_path):
    path = tmp_path / "glove.test.4d.txt"
    lines = [f"{w} " + " ".join(f"{v:.5f}" for v in vec) for w, vec in WORDS.items()]
    lines.insert(3, "a.b.c 9 9 9 9")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_tokenisation():
    assert label_words("Male speech, man speaking") == ["male", "speech", "man", "speaking"]
    assert label_words("Zipper_(clothing)") == ["zipper", "clothing"]
    assert label_words("Accelerating_and_revving_and_vroom") == ["accelerating", "and",
                                                                 "revving", "and", "vroom"]


def test_mean_of_word_vectors_and_fallback(glove_file, tmp_path):
    names = ["Male speech, man speaking", "Zipper_(clothing)", "Dog", "Xylophonic_blorp"]
    with pytest.warns(UserWarning, match="Xylophonic_blorp"):
        emb, missing = load_glove(glove_file, names, cache_dir=tmp_path / "c",
                                  return_missing=True)
    assert emb.shape == (4, 4) and emb.dtype == torch.float32
    torch.testing.assert_close(emb[0], torch.full((4,), 0.25))
    torch.testing.assert_close(emb[1], torch.ones(4))
    torch.testing.assert_close(emb[2], torch.ones(4))
    assert missing == ["Xylophonic_blorp"]
    # deterministic fallback: same name -> same direction (scaled to the mean norm of the
    # labels found in that call), typical norm, distinct from other labels
    with pytest.warns(UserWarning, match="2 labels have no word"):
        again = load_glove(glove_file, ["Xylophonic_blorp", "Other_unknown"], cache_dir=None)
    torch.testing.assert_close(again[0] / again[0].norm(), emb[3] / emb[3].norm())
    assert not torch.allclose(again[0], again[1])
    known_norm = emb[:3].norm(dim=1).mean()
    torch.testing.assert_close(emb[3].norm(), known_norm)


def test_hashed_gaussian_is_pinned_and_keyed():
    # pinned: the default AT-GCN label embeddings and the GloVe fallback must not drift
    np.testing.assert_allclose(hashed_gaussian("gnn_audio", 3),
                               [1.3416645707696606, 0.8681410293074925, -0.11342114628376679],
                               rtol=1e-12)
    np.testing.assert_array_equal(hashed_gaussian("Dog", (4, 5)),
                                  hashed_gaussian("Dog", 20).reshape(4, 5))
    assert not np.allclose(hashed_gaussian("Dog", 8), hashed_gaussian("Cat", 8))
    big = hashed_gaussian("many", 100_000)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02


def test_fallback_is_the_hashed_gaussian_of_the_name(glove_file):
    with pytest.warns(UserWarning, match="Xylophonic_blorp"):
        emb = load_glove(glove_file, ["Dog", "Xylophonic_blorp"], cache_dir=None)
    v = torch.from_numpy(hashed_gaussian("Xylophonic_blorp", 4)).float()
    torch.testing.assert_close(emb[1], v / v.norm() * emb[0].norm())


def test_cache_is_used(glove_file, tmp_path, monkeypatch):
    names = ["Dog", "Zipper_(clothing)"]
    first = load_glove(glove_file, names, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("the GloVe file was read again")

    monkeypatch.setattr(glove, "_stream_vectors", fail)
    torch.testing.assert_close(load_glove(glove_file, names, cache_dir=tmp_path), first)


def test_streaming_stops_once_all_words_are_found(tmp_path):
    path = tmp_path / "big.txt"
    with open(path, "w") as f:
        f.write("dog 1 2 3\n")
        f.write("this-line-is-broken\n" * 3)  # would be skipped anyway
        for i in range(200_000):
            f.write(f"w{i} 0 0 0\n")
    opened = []
    real_open = glove.io.open

    class Counting:
        def __init__(self, *a, **k):
            self.f = real_open(*a, **k)
            self.n = 0
            opened.append(self)

        def __iter__(self):
            for line in self.f:
                self.n += 1
                yield line

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    glove.io.open = Counting
    try:
        emb = load_glove(path, ["Dog"], cache_dir=None)
    finally:
        glove.io.open = real_open
    assert opened[0].n == 1
    torch.testing.assert_close(emb[0], torch.tensor([1.0, 2.0, 3.0]))
