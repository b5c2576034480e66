"""Fine-tuning to a new label set: label matching, per-label copying for every model family,
the backbone / head split, and the errors of ``init_from_checkpoint``."""
import pytest
import torch

from gnn_audio.train.finetune import (LabelMatch, backbone_parameters, head_parameter_names,
                                      init_from_checkpoint, label_axes, match_labels)
from gnn_audio.zoo import create_model, save_checkpoint

TINY = dict(channels=[8, 16, 24, 32], input_size=(64, 32), drop_path_rate=0.0, head_hidden=16)

# the checkpoint's label set and a new one: different size and order; Rain and Cat shared by
# id, Bird only by name (another id, other case and spacing), Piano and Drum new
OLD_IDS = ["/m/dog", "/m/cat", "/m/bird", "/m/car", "/m/rain", "/m/wind"]
OLD_NAMES = ["Dog", "Cat", "Bird", "Car", "Rain", "Wind"]
NEW_IDS = ["/m/rain", "/m/piano", "/m/cat", "/custom/bird", "/m/drum"]
NEW_NAMES = ["Rain", "Piano", "cat", "  BIRD ", "Drum"]
PAIRS = {0: 4, 2: 1, 3: 2}  # new position -> checkpoint position
FRESH = [1, 4]


def _randomise(model):
    """Every float tensor of the state (buffers too) to distinct positive values, so that
    copied and fresh entries cannot agree by chance."""
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5)
    return model


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _saved(tmp_path, model, name="old.pt"):
    path = tmp_path / name
    save_checkpoint(model, path)
    return path


def _check_rows(new, fresh, old, dim, pairs=PAIRS, fresh_rows=FRESH):
    for i, j in pairs.items():
        assert torch.equal(new.select(dim, i), old.select(dim, j))
    for i in fresh_rows:
        assert torch.equal(new.select(dim, i), fresh.select(dim, i))


def _check_block(new, fresh, old, pairs=PAIRS):
    n = new.size(0)
    for a in range(n):
        for b in range(n):
            if a in pairs and b in pairs:
                assert new[a, b] == old[pairs[a], pairs[b]]
            else:
                assert new[a, b] == fresh[a, b]


def _check_backbone(model, new, old):
    axes = label_axes(model)
    backbone = [k for k in new if k not in axes]
    assert backbone
    for key in backbone:
        assert torch.equal(new[key], old[key]), key


# -- match_labels ---------------------------------------------------------------------------

def test_match_labels_by_id_then_by_name():
    match = match_labels(OLD_IDS, OLD_NAMES, NEW_IDS, NEW_NAMES)
    assert match.pairs == PAIRS
    assert match.how == ("id", "id", "name")  # new positions 0, 2, 3
    assert (match.by_id, match.by_name) == (2, 1)
    assert match.unmatched_new == (1, 4) and match.unmatched_old == (0, 3, 5)
    assert (match.num_new, match.num_old) == (5, 6) and not match.is_identity


def test_match_labels_id_wins_over_name_and_each_old_label_is_used_once():
    # new "X" has old label 1's id and old label 0's name: the id decides; new "y" then
    # finds old label 0 ("Y"), old label 1 is taken
    match = match_labels(["/a", "/b"], ["Y", "X"], ["/b", "/c", "/d"], ["X", "y", "X"])
    assert match.pairs == {0: 1, 1: 0}
    assert match.how == ("id", "name") and match.unmatched_new == (2,)


def test_match_labels_names_only_and_identity():
    match = match_labels(None, ["a", "b_c"], None, ["B  C", "A"])
    assert match.pairs == {0: 1, 1: 0} and match.by_name == 2
    same = match_labels(["/a", "/b"], None, ["/a", "/b"], ["x", "y"])
    assert same.is_identity and same.by_id == 2
    assert LabelMatch.positional(3).is_identity and LabelMatch.positional(3).by_position
    with pytest.raises(ValueError, match="neither ids nor names"):
        match_labels(None, None, ["/a"], None)
    with pytest.raises(ValueError, match="2 ids but 1 names"):
        match_labels(["/a", "/b"], ["a"], ["/a"], None)


# -- ATGNN ----------------------------------------------------------------------------------

def test_atgnn_shared_labels_copied_new_labels_fresh(tmp_path):
    torch.manual_seed(0)
    old_model = _randomise(create_model("atgnn_pyr_t", num_classes=6, label_names=OLD_NAMES,
                                        label_ids=OLD_IDS, **TINY))
    path = _saved(tmp_path, old_model)
    old = _state(old_model)
    torch.manual_seed(1)
    model = create_model("atgnn_pyr_t", num_classes=5, label_names=NEW_NAMES,
                         label_ids=NEW_IDS, **TINY)
    fresh = _state(model)
    report = init_from_checkpoint(model, path)
    new = _state(model)

    _check_rows(new["label_embed"], fresh["label_embed"], old["label_embed"], 2)
    _check_rows(new["label_readout"], fresh["label_readout"], old["label_readout"], 0)
    _check_rows(new["prediction.4.weight"], fresh["prediction.4.weight"],
                old["prediction.4.weight"], 0)
    _check_rows(new["prediction.4.bias"], fresh["prediction.4.bias"],
                old["prediction.4.bias"], 0)
    llg = [k for k in new if k.endswith("llg.weight")]
    assert len(llg) == 6  # mlg_blocks [1, 1, 3, 1]
    for key in llg:
        _check_block(new[key], fresh[key], old[key])
    _check_backbone(model, new, old)

    axes = label_axes(model)
    assert set(axes) == {"label_embed", "label_readout", "prediction.4.weight",
                         "prediction.4.bias", *llg}
    assert axes["label_embed"] == (2,) and axes[llg[0]] == (0, 1)
    assert set(report.label_copied) == set(axes)
    assert len(report.copied) == len(new) - len(axes)
    assert report.skipped == () and report.missing == ()
    assert report.new_labels == ("Piano", "Drum")
    assert report.dropped_labels == ("Dog", "Car", "Wind")
    assert report.name_matched == (("  BIRD ", "Bird"),)
    lines = report.lines()
    assert lines[0] == (f"init-from {path} (atgnn_pyr_t, 6 labels -> atgnn_pyr_t, 5 labels): "
                        f"{len(new) - 10} tensors copied, 10 per-label tensors copied for 3 of "
                        "5 labels (2 by id, 1 by name)")
    assert f"init-from {path}: 2 new labels initialised fresh: Piano; Drum" in lines
    assert any("1 label matched by name" in line and "BIRD" in line for line in lines)
    assert any("3 checkpoint labels not in the new label set: Dog; Car; Wind" in line
               for line in lines)
    assert not any(line.startswith("WARNING") for line in lines)
    assert model(torch.randn(2, 64, 32)).shape == (2, 5)


def test_same_size_other_order_is_permuted_not_copied_by_position(tmp_path):
    names = ["a", "b", "c", "d"]
    ids = ["/m/a", "/m/b", "/m/c", "/m/d"]
    torch.manual_seed(0)
    old_model = _randomise(create_model("atgnn_pyr_t", num_classes=4, label_names=names,
                                        label_ids=ids, **TINY))
    path = _saved(tmp_path, old_model)
    old = _state(old_model)
    perm = [2, 0, 3, 1]
    model = create_model("atgnn_pyr_t", num_classes=4, label_names=[names[j] for j in perm],
                         label_ids=[ids[j] for j in perm], **TINY)
    report = init_from_checkpoint(model, path)
    new = _state(model)
    index = torch.tensor(perm)
    assert torch.equal(new["label_readout"], old["label_readout"][index])
    assert torch.equal(new["label_embed"], old["label_embed"][:, :, index])
    assert torch.equal(new["prediction.4.bias"], old["prediction.4.bias"][index])
    for key in (k for k in new if k.endswith("llg.weight")):
        assert torch.equal(new[key], old[key][index][:, index])
    assert report.match.by_id == 4 and report.new_labels == ()

    same = create_model("atgnn_pyr_t", num_classes=4, label_names=names, label_ids=ids, **TINY)
    assert init_from_checkpoint(same, path).match.is_identity
    assert all(torch.equal(v, old[k]) for k, v in same.state_dict().items())


def test_other_family_member_loads_the_fitting_tensors(tmp_path):
    torch.manual_seed(0)
    full = _randomise(create_model("atgnn_pyr_t", num_classes=6, label_names=OLD_NAMES,
                                   label_ids=OLD_IDS, **TINY))
    path = _saved(tmp_path, full, "full.pt")
    old = _state(full)
    nomlg = create_model("atgnn_pyr_t_nomlg", num_classes=5, label_names=NEW_NAMES,
                         label_ids=NEW_IDS, **TINY)
    fresh = _state(nomlg)
    report = init_from_checkpoint(nomlg, path, strict_backbone=True)
    new = _state(nomlg)
    _check_backbone(nomlg, new, old)
    _check_rows(new["prediction.4.weight"], fresh["prediction.4.weight"],
                old["prediction.4.weight"], 0)
    unused = {k for k, why in report.skipped if why == "not in model"}
    assert unused == {k for k in old if k not in new}
    assert "label_embed" in unused and any(k.startswith("mlg_stages.") for k in unused)
    line = next(li for li in report.lines() if "not in the model" in li)
    assert f"{len(unused)} checkpoint tensors not in the model" in line
    assert "label_embed" in line and "mlg_stages.* (" in line

    # the other way round, the label branch is missing from the checkpoint
    path2 = _saved(tmp_path, nomlg, "nomlg.pt")
    model = create_model("atgnn_pyr_t", num_classes=5, label_names=NEW_NAMES, **TINY)
    before = _state(model)
    with pytest.raises(ValueError, match="does not hold the whole backbone") as err:
        init_from_checkpoint(model, path2, strict_backbone=True)
    assert str(path2) in str(err.value) and "\n" not in str(err.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    report = init_from_checkpoint(model, path2)
    assert "label_embed" in report.missing and "label_proj.1.0.weight" in report.missing
    assert report.match.by_name == 5 and report.match.is_identity  # no ids in the model
    assert any("not in the checkpoint, left as initialised" in li for li in report.lines())


def test_other_widths_are_reported_as_shape_mismatch(tmp_path):
    old_model = create_model("atgnn_pyr_t", num_classes=6, label_names=OLD_NAMES, **TINY)
    path = _saved(tmp_path, old_model)
    wide = dict(TINY, channels=[8, 16, 24, 40])
    model = create_model("atgnn_pyr_t", num_classes=5, label_names=NEW_NAMES, **wide)
    report = init_from_checkpoint(model, path)
    reasons = dict(report.skipped)
    assert reasons["label_readout"] == "shape: checkpoint (6, 32) vs model (5, 40)"
    assert "label_readout" not in report.label_copied and "label_embed" in report.label_copied
    assert any("of another shape, not used" in li for li in report.lines())


# -- AT-GCN, CNN10, embedding taggers -------------------------------------------------------

def test_at_gcn_label_nodes_and_graph(tmp_path):
    torch.manual_seed(0)
    old_model = create_model("at_gcn", num_classes=6, label_names=OLD_NAMES, label_ids=OLD_IDS,
                             label_embeddings=torch.randn(6, 12), adjacency=torch.rand(6, 6))
    path = _saved(tmp_path, _randomise(old_model))
    old = _state(old_model)
    model = create_model("at_gcn", num_classes=5, label_names=NEW_NAMES, label_ids=NEW_IDS,
                         label_embeddings=torch.randn(5, 12), adjacency=torch.rand(5, 5))
    fresh = _state(model)
    report = init_from_checkpoint(model, path)
    new = _state(model)
    _check_rows(new["label_embeddings"], fresh["label_embeddings"], old["label_embeddings"], 0)
    _check_block(new["adjacency"], fresh["adjacency"], old["adjacency"])
    _check_backbone(model, new, old)  # the CNN and the GCN
    assert set(report.label_copied) == {"label_embeddings", "adjacency"}
    assert head_parameter_names(model) == [n for n, _ in model.named_parameters()
                                           if n.startswith("gcn.")]


@pytest.mark.parametrize("name,classifier", [("cnn10", "fc_audioset"), ("fc1", "net.0"),
                                             ("fc2", "net.2"), ("lstm_tagger", "head.4"),
                                             ("gated_cnn_tagger", "fc")])
def test_classifier_rows(tmp_path, name, classifier):
    torch.manual_seed(0)
    old_model = _randomise(create_model(name, num_classes=6, label_names=OLD_NAMES,
                                        label_ids=OLD_IDS))
    path = _saved(tmp_path, old_model)
    old = _state(old_model)
    model = create_model(name, num_classes=5, label_names=NEW_NAMES, label_ids=NEW_IDS)
    fresh = _state(model)
    report = init_from_checkpoint(model, path)
    new = _state(model)
    keys = {f"{classifier}.weight", f"{classifier}.bias"}
    assert set(label_axes(model)) == keys and set(report.label_copied) == keys
    for key in keys:
        _check_rows(new[key], fresh[key], old[key], 0)
    if name != "fc1":  # FC-1 is its classifier
        _check_backbone(model, new, old)
    assert set(head_parameter_names(model)) == keys
    head = {id(p) for n, p in model.named_parameters() if n in keys}
    assert [p for p in backbone_parameters(model) if id(p) in head] == []
    assert len(backbone_parameters(model)) == len(list(model.parameters())) - 2


def test_backbone_and_head_split_atgnn():
    model = create_model("atgnn_pyr_t", num_classes=3, **TINY)
    head = head_parameter_names(model)
    assert {"label_embed", "label_readout", "prediction.0.weight", "prediction.4.weight",
            "mlg_stages.2.1.llg.weight"} <= set(head)
    # PLG / FFN of the MLG blocks, the label projections and the PGN: backbone
    assert not any(n.startswith(("backbone.", "stem.", "label_proj.")) or ".plg." in n
                   or ".ffn." in n for n in head)
    backbone = backbone_parameters(model)
    named = dict(model.named_parameters())
    assert len(backbone) + len(head) == len(named)
    assert {id(p) for p in backbone}.isdisjoint(id(named[n]) for n in head)
    nomlg = create_model("atgnn_pyr_t_nomlg", num_classes=3, **TINY)
    assert all(n.startswith("prediction.") for n in head_parameter_names(nomlg))


# -- no labels to match, errors -------------------------------------------------------------

def test_no_label_names_same_size_copies_by_position_with_a_warning(tmp_path):
    old_model = _randomise(create_model("fc2", num_classes=4))
    assert old_model.bundle.label_names is None
    path = _saved(tmp_path, old_model)
    model = create_model("fc2", num_classes=4, label_names=list("abcd"))
    report = init_from_checkpoint(model, path)
    assert report.match.by_position and report.match.is_identity
    assert torch.equal(model.net[2].weight, old_model.net[2].weight)
    assert report.lines()[0].endswith("2 per-label tensors copied for all 4 labels by position")
    assert report.lines()[-1].startswith(f"WARNING init-from {path}: no label ids or names")


def test_no_label_names_other_size_is_one_clear_error(tmp_path):
    path = _saved(tmp_path, create_model("fc2", num_classes=4))
    model = create_model("fc2", num_classes=3, label_names=list("abc"))
    with pytest.raises(ValueError) as err:
        init_from_checkpoint(model, path)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    assert "4 labels to the model's 3: the checkpoint has no label ids or names" in msg
    named = _saved(tmp_path, create_model("fc2", num_classes=4, label_names=list("abcd")),
                   "named.pt")
    with pytest.raises(ValueError, match="the model \\(fc2\\) has no label ids or names"):
        init_from_checkpoint(create_model("fc2", num_classes=3), named)


def test_file_errors_name_the_file(tmp_path):
    model = create_model("fc1", num_classes=3, label_names=list("abc"))
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        init_from_checkpoint(model, missing)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError) as err:
        init_from_checkpoint(model, text)
    assert str(text) in str(err.value) and "\n" not in str(err.value)
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(ValueError, match="is not a gnn_audio checkpoint"):
        init_from_checkpoint(model, plain)


def test_nothing_fits_and_unknown_models(tmp_path):
    path = _saved(tmp_path, create_model("fc2", num_classes=3, label_names=list("abc")))
    lstm = create_model("lstm_tagger", num_classes=3, label_names=list("abc"))
    with pytest.raises(ValueError, match="no tensor of the checkpoint \\(fc2\\) fits "
                                         "lstm_tagger"):
        init_from_checkpoint(lstm, path)
    with pytest.raises(TypeError, match="Linear declares no label_layout"):
        label_axes(torch.nn.Linear(2, 3))
