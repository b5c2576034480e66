"""What a model carries: one frozen bundle (name, build and architecture arguments, config
with the audio front-end, label names and ids), set when the model is built, written whole
by save_checkpoint and trusted by load_model and the tagger."""
import dataclasses

import numpy as np
import pytest
import torch

from gnn_audio.data.features import FSD50K_FBANK, FbankConfig
from gnn_audio.data.synthetic.signals import tone, write_wav
from gnn_audio.inference import Tagger
from gnn_audio.zoo import (ModelBundle, bundle_of, create_model, load_checkpoint, load_model,
                           save_checkpoint)

#: a front-end unlike any entry's default: 22.05 kHz, 40 mel bins, 20 ms hop, 96 frames
FB = FbankConfig(sample_rate=22050, num_mel_bins=40, frame_length_ms=40.0, frame_shift_ms=20.0,
                 target_length=96, norm_mean=-2.5, norm_std=3.25, low_freq=40.0,
                 high_freq=-200.0)
TINY = dict(channels=[8, 16, 24, 32], input_size=(96, 40), drop_path_rate=0.0)
NAMES, IDS = ["Bark", "Meow", "Chirp"], ["/x/bark", "/x/meow", "/x/chirp"]


def _model():
    torch.manual_seed(0)
    return create_model("atgnn_pyr_t", num_classes=3, label_names=NAMES, label_ids=IDS,
                        fbank=FB, **TINY).eval()


def test_the_bundle_is_set_once_and_frozen():
    model = _model()
    bundle = bundle_of(model)
    assert isinstance(bundle, ModelBundle) and bundle.name == "atgnn_pyr_t"
    assert bundle.fbank == FB and bundle.config.input_size == (96, 40)
    assert bundle.config.sample_rate == 22050 and bundle.frames == 96
    assert (bundle.label_names, bundle.label_ids) == (tuple(NAMES), tuple(IDS))
    assert bundle.labels.mids == tuple(IDS) and bundle.is_logmel
    with pytest.raises(dataclasses.FrozenInstanceError):
        bundle.label_names = ("a", "b", "c")
    for loose in ("model_name", "model_config", "label_names", "label_ids", "build_kwargs",
                  "arch_kwargs"):
        assert not hasattr(model, loose), loose
    with pytest.raises(ValueError, match="3 strings"):
        bundle.replace(label_names=("a",))


def test_a_custom_front_end_survives_plain_save_checkpoint(tmp_path):
    """The acceptance case: non-default front-end, plain save_checkpoint, then load_model and
    the Tagger keep front-end, labels and ids, and compute the same scores."""
    model = _model()
    path = tmp_path / "mine.pt"
    save_checkpoint(model, path)  # no extra=: nothing the trainer adds
    ckpt = load_checkpoint(path)
    assert ckpt["build_kwargs"]["fbank"] == FB.to_dict()
    loaded = load_model(path)
    assert loaded.bundle == model.bundle
    tagger = Tagger(path)
    assert tagger.fbank == FB and tagger.label_names == NAMES and tagger.label_ids == IDS
    wav = tmp_path / "tone.wav"
    write_wav(wav, tone(3.0, 22050, freq=440.0, seed=0), 22050)
    assert np.array_equal(tagger.tag(wav).scores, Tagger(model).tag(wav).scores)
    # the front-end decides the windows: 96 frames of 20 ms
    assert tagger.window == pytest.approx(1.92)


def test_files_with_the_front_end_in_extra_still_load_it(tmp_path):
    """Checkpoints written before the bundle carried the front-end kept the trainer's copy
    in extra["fbank"]: it becomes the model's."""
    model = create_model("atgnn_pyr_t", num_classes=3, label_names=NAMES, **TINY)
    path = tmp_path / "old.pt"
    save_checkpoint(model, path, extra={"fbank": FB.to_dict(), "epoch": 4})
    ckpt = torch.load(path, weights_only=True)
    assert "fbank" not in ckpt["build_kwargs"]
    loaded = load_model(path)
    assert loaded.bundle.fbank == FB and loaded.bundle.label_names == tuple(NAMES)
    assert create_model("atgnn_pyr_t", num_classes=3, pretrained=str(path),
                        **TINY).bundle.fbank == FB
    # a front-end given explicitly wins over the file's
    other = FSD50K_FBANK.replace(target_length=96, num_mel_bins=40)
    assert create_model("atgnn_pyr_t", num_classes=3, pretrained=str(path), fbank=other,
                        **TINY).bundle.fbank == other


def test_embedding_models_have_no_front_end():
    assert create_model("fc1").bundle.fbank is None
    assert not create_model("fc1").bundle.is_logmel
    with pytest.raises(ValueError, match="fc1 reads embedding input"):
        create_model("fc1", fbank=FB)
    with pytest.raises(ValueError, match="reads AudioSet embeddings"):
        create_model("fc1").bundle.require_logmel("x.pt")
    with pytest.raises(ValueError, match="not a gnn_audio zoo model"):
        bundle_of(torch.nn.Linear(2, 3))
