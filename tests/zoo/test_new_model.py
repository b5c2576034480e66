"""Adding a model touches its own class and its zoo entry only: a toy model defined here (a
class with ``label_layout()`` and an entry point with a ``prepare_kwargs`` hook) works with
everything that takes zoo models, with no table to extend anywhere else: checkpoints,
fine-tuning to another label set, evaluation, the tagger, and a training run's model."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.synthetic.signals import chirp, write_wav
from gnn_audio.inference import Tagger
from gnn_audio.labels import LabelSet
from gnn_audio.models.label_layout import LabelLayout, classifier_axes
from gnn_audio.train.evaluate import EvalConfig, build_eval_dataset, predict
from gnn_audio.train.finetune import backbone_parameters, init_from_checkpoint
from gnn_audio.zoo import (ModelConfig, create_model, get_entry, list_models, load_model,
                           register_model, save_checkpoint, unregister_model)
from gnn_audio.zoo._builder import build_model

FB = FbankConfig(num_mel_bins=24, target_length=50)


class ToyTagger(torch.nn.Module):
    """A mel-band MLP over time-pooled log-mel: what a new model's own file holds."""

    def __init__(self, num_classes: int, mel_bins: int = 128, hidden: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = torch.nn.Sequential(torch.nn.Linear(mel_bins, hidden), torch.nn.ReLU())
        self.classifier = torch.nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.classifier(self.body(x.amax(dim=1)))

    def label_layout(self) -> LabelLayout:
        return LabelLayout(classifier_axes("classifier", self.classifier), ("classifier.",))


@pytest.fixture
def toy_entry():
    """What a new model's zoo entry holds: its config, its entry point, its hook."""
    def prepare(data, recipe, log):
        log(f"toy: {data.fbank.num_mel_bins} mel bins")
        return {"mel_bins": data.fbank.num_mel_bins}

    @register_model(ModelConfig(name="toy_tagger", family="toy", input_size=(1024, 128),
                                arch_args=("mel_bins", "hidden")), prepare_kwargs=prepare)
    def toy_tagger(pretrained=None, num_classes=200, **kwargs):
        return build_model("toy_tagger", ToyTagger, pretrained, num_classes, **kwargs)
    yield toy_tagger
    unregister_model("toy_tagger")
    assert "toy_tagger" not in list_models()


def test_a_new_model_works_everywhere(toy_entry, tmp_path):
    torch.manual_seed(0)
    names, ids = ["Chirp", "Hum", "Click"], ["/t/chirp", "/t/hum", "/t/click"]
    model = create_model("toy_tagger", num_classes=3, label_names=names, label_ids=ids,
                         mel_bins=24, fbank=FB).eval()
    assert "toy_tagger" in list_models(family="toy")
    # checkpoint round trip: the bundle whole
    path = tmp_path / "toy.pt"
    save_checkpoint(model, path)
    loaded = load_model(path)
    assert loaded.bundle == model.bundle and loaded.bundle.fbank == FB
    # the tagger and evaluation: the same scores for the same files
    wavs = []
    for i, seconds in enumerate((0.3, 1.2, 2.5)):
        wavs.append(tmp_path / f"c{i}.wav")
        write_wav(wavs[-1], chirp(seconds, 16000, f0=200.0 * (i + 1), seed=i), 16000)
    tagged = list(Tagger(path, batch_size=4).tag_files(wavs))
    clips = ClipList("t", LabelSet("t", tuple(ids), tuple(names)),
                     [Clip(str(i), str(p), (0,)) for i, p in enumerate(wavs)])
    ref = predict(loaded, build_eval_dataset(clips, FB), EvalConfig(batch_size=4), frames=50)
    assert np.array_equal(np.stack([r.scores for r in tagged]), ref.scores["windows"])
    # fine-tuning to another label set: the shared labels keep their classifier rows
    new = create_model("toy_tagger", num_classes=2, label_names=["Click", "Bell"],
                       label_ids=["/t/click", "/t/bell"], mel_bins=24, fbank=FB)
    report = init_from_checkpoint(new, path)
    assert report.num_matched == 1 and report.new_labels == ("Bell",)
    assert torch.equal(new.classifier.weight[0], model.classifier.weight[2])
    assert {id(p) for p in backbone_parameters(new)} == {id(p) for p in new.body.parameters()}
    # a training run's model: the entry's hook prepares its arguments from the data
    lines = []
    data = SimpleNamespace(fbank=FB, label_set=clips.label_set, train_targets=np.eye(3))
    kwargs = get_entry("toy_tagger").prepare_kwargs(data, None, lines.append)
    assert kwargs == {"mel_bins": 24} and lines == ["toy: 24 mel bins"]
