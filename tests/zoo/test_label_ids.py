"""Label ids (AudioSet MIDs / dataset ids) on zoo models and in checkpoints."""
import pytest
import torch

from gnn_audio.labels import load_label_set
from gnn_audio.weights_io import CHECKSUM_KEY, save_weights_file
from gnn_audio.zoo import create_model, load_checkpoint, save_checkpoint

AUDIOSET = load_label_set("audioset")
FSD50K = load_label_set("fsd50k")


def test_default_label_sets_carry_their_ids():
    model = create_model("fc1")  # 527 classes: AudioSet
    assert model.bundle.label_ids == tuple(AUDIOSET.mids)
    assert model.bundle.label_names == tuple(AUDIOSET.names)
    fsd = create_model("fc1", num_classes=200)
    assert fsd.bundle.label_ids == tuple(FSD50K.mids) and fsd.bundle.config.label_set == "fsd50k"
    assert create_model("fc1", num_classes=7).bundle.label_ids is None


def test_given_ids_and_names():
    ids = [AUDIOSET.mids[5], AUDIOSET.mids[0]]
    alone = create_model("fc1", num_classes=2, label_ids=ids)
    assert alone.bundle.label_ids == tuple(ids)
    assert alone.bundle.label_names == (AUDIOSET.names[5], AUDIOSET.names[0])  # from the class list
    assert alone.bundle.config.label_set is None
    unknown = create_model("fc1", num_classes=2, label_ids=["/x/1", "/x/2"])
    assert unknown.bundle.label_ids == ("/x/1", "/x/2") and unknown.bundle.label_names is None
    both = create_model("fc1", num_classes=2, label_ids=["/x/1", "/x/2"], label_names=["a", "b"])
    assert (both.bundle.label_ids, both.bundle.label_names) == (("/x/1", "/x/2"), ("a", "b"))
    names_only = create_model("fc1", num_classes=2, label_names=["a", "b"])
    assert names_only.bundle.label_ids is None
    # the names of a known set without its ids: the ids are not guessed
    assert create_model("fc1", label_names=list(AUDIOSET.names)).bundle.label_ids is None
    assert "label_ids" not in both.bundle.build_kwargs and "label_names" not in both.bundle.build_kwargs


@pytest.mark.parametrize("ids,error,message", [
    (["/x/1"], ValueError, "1 label ids for 2 classes"),
    (["/x/1", "/x/1"], ValueError, "'/x/1' occurs twice"),
    (["/x/1", ""], ValueError, "non-empty strings"),
    ("/x/1/x", TypeError, "sequence of strings"),
])
def test_bad_ids(ids, error, message):
    with pytest.raises(error, match=message):
        create_model("fc1", num_classes=2, label_ids=ids)


def test_checkpoint_round_trip_and_older_files(tmp_path):
    model = create_model("fc1", num_classes=2, label_ids=["/x/1", "/x/2"],
                         label_names=["a", "b"])
    path = tmp_path / "ids.pt"
    save_checkpoint(model, path)
    ckpt = load_checkpoint(path)
    assert ckpt["label_ids"] == ["/x/1", "/x/2"] and ckpt["format_version"] == 3
    loaded = create_model("fc1", num_classes=2, pretrained=str(path))
    assert (loaded.bundle.label_ids, loaded.bundle.label_names) == (("/x/1", "/x/2"), ("a", "b"))

    # a file from before label ids: the key is absent
    raw = torch.load(path, weights_only=True)
    del raw["label_ids"], raw[CHECKSUM_KEY]  # nor a checksum then
    old = tmp_path / "old.pt"
    torch.save(raw, old)
    assert load_checkpoint(old)["label_ids"] is None
    loaded = create_model("fc1", num_classes=2, pretrained=str(old))
    assert (loaded.bundle.label_ids, loaded.bundle.label_names) == (None, ("a", "b"))
    # a default-labelled model takes the file's names; AudioSet's ids would not fit them
    raw = dict(raw, num_classes=527, label_names=[f"c{i}" for i in range(527)],
               state_dict=create_model("fc1").state_dict())
    torch.save(raw, old)
    loaded = create_model("fc1", pretrained=str(old))
    assert loaded.bundle.label_names[0] == "c0" and loaded.bundle.label_ids is None


def test_damaged_label_lists_name_the_file(tmp_path):
    path = tmp_path / "bad.pt"
    save_checkpoint(create_model("fc1", num_classes=2, label_names=["a", "b"]), path)
    raw = torch.load(path, weights_only=True)
    save_weights_file(dict(raw, label_ids=["/x/1"]), path)  # written so, checksum and all
    with pytest.raises(ValueError, match=f"{path} is a damaged gnn_audio checkpoint: "
                                         "label_ids is not a list of 2 strings"):
        load_checkpoint(path)
