import argparse
import json

import pytest

from gnn_audio.cli.train import build_parser, main, recipe_from_args
from gnn_audio.train.recipe import (ATGCN_PAPER_FBANK, FLAT_FIELDS, RECIPES, SECTIONS,
                                    DataSection, EvalSection, ModelSection, OptimSection, Recipe,
                                    get_recipe)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_presets_validate_and_round_trip(name):
    recipe = get_recipe(name)
    again = Recipe.from_dict(json.loads(recipe.to_json()))
    assert again == recipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_old_flat_form_reads_as_the_same_recipe(name):
    recipe = get_recipe(name)
    flat = {"name": recipe.name, "seed": recipe.seed, "log_every": recipe.log_every}
    for key, (section, field) in FLAT_FIELDS.items():
        flat[key] = recipe.to_dict()[section][field]
    assert len(flat) == 38  # the 37 fields of the recipe before the sections, and hardware
    assert Recipe.from_dict(json.loads(json.dumps(flat))) == recipe
    del flat["hardware"]  # a config.json written before the field: the default
    assert Recipe.from_dict(flat) == recipe.replace(hardware="any")


def test_sections_and_their_fields():
    r = get_recipe("atgnn_fsd50k")
    assert isinstance(r.model, ModelSection) and isinstance(r.data, DataSection)
    assert isinstance(r.optim, OptimSection) and isinstance(r.eval, EvalSection)
    assert list(r.to_dict()) == ["name", "model", "data", "optim", "eval", "seed", "log_every"]
    assert sum(len(s.__dataclass_fields__) for s in SECTIONS.values()) + 3 == 38
    assert r.data.source == "fsd50k" and r.input_kind == "logmel"
    assert get_recipe("embedding_audioset").input_kind == "embedding"


def test_the_papers_recipes_are_sized_for_a_gpu_and_take_statistics_by_data():
    sized = {name: get_recipe(name).optim.hardware for name in RECIPES}
    assert sized == {**{name: "gpu" for name in RECIPES},
                     "example": "any", "embedding_audioset": "any"}
    assert get_recipe("example").data.norm_stats == "compute"
    assert {get_recipe(n).data.norm_stats for n in RECIPES if n != "example"} == {"auto"}
    with pytest.raises(ValueError, match="hardware must be 'any' or 'gpu'"):
        get_recipe("example").replace(hardware="tpu")
    with pytest.raises(ValueError, match="norm_stats must be one of auto, recipe, compute"):
        get_recipe("example").replace(norm_stats="published")


def test_atgnn_fsd50k_is_the_paper_recipe():
    r = get_recipe("atgnn_fsd50k")
    o = r.optim
    assert (r.model.name, o.lr, o.betas, o.weight_decay) == ("atgnn_pyr_s", 5e-4, (0.95, 0.999),
                                                             5e-7)
    assert (o.warmup_steps, o.lr_decay_start, o.lr_decay_every, o.lr_decay) == (1000, 10, 5, 0.5)
    assert (o.batch_size, o.epochs, r.data.sampler) == (24, 50, "balanced")
    a = r.data.augment
    assert (a.mixup, a.freq_mask, a.time_mask) == (0.5, 48, 192)
    assert r.data.fbank.target_length == 1024 and r.data.fbank.num_mel_bins == 128


def test_audioset_and_atgcn_recipes():
    r = get_recipe("atgnn_audioset")
    assert (r.data.fbank.target_length, r.optim.epochs, r.optim.lr_decay_start) == (1056, 60, 35)
    assert r.data.source == "audioset"
    g = get_recipe("at_gcn_audioset")
    assert (g.model.name, g.optim.lr, g.optim.batch_size, g.optim.max_steps) == (
        "at_gcn", 1e-3, 64, 600_000)
    assert g.data.augment.mixup > 0 and g.data.augment.freq_mask > 0
    assert (g.model.tau, g.model.p) == (0.3, 0.2)
    assert (ATGCN_PAPER_FBANK.num_mel_bins, ATGCN_PAPER_FBANK.frame_length_ms,
            ATGCN_PAPER_FBANK.frame_shift_ms, ATGCN_PAPER_FBANK.target_length) == (64, 50, 25, 400)


@pytest.mark.parametrize("change,word", [
    (dict(lr=-1.0), "optim.lr"), (dict(batch_size=0), "optim.batch_size"),
    (dict(precision="fp8"), "optim.precision"), (dict(eval_modes=("full",)), "eval.modes"),
    (dict(model="resnet"), "model.name"), (dict(label_graph="eq9"), "model.label_graph"),
    (dict(average_from=50), "eval.average_from"), (dict(sampler="weighted"), "data.sampler"),
    (dict(data="wav_folder"), "data.source"), (dict(eval_batch_size=0), "eval.batch_size")])
def test_bad_values_name_the_field(change, word):
    with pytest.raises(ValueError, match=f"recipe 'atgnn_fsd50k': .*{word}"):
        get_recipe("atgnn_fsd50k").replace(**change)


def test_one_error_names_the_recipe_and_every_problem():
    with pytest.raises(ValueError) as err:
        get_recipe("example").replace(lr=-1.0, eval_batch_size=0, sampler="weighted",
                                      model="resnet", average_from=40)
    text = str(err.value)
    assert text.startswith("recipe 'example': ") and "\n" not in text
    for word in ("optim.lr", "eval.batch_size", "data.sampler", "model.name",
                 "eval.average_from"):
        assert word in text


def test_sections_validate_and_replace_one_field():
    r = get_recipe("atgnn_fsd50k")
    changed = r.replace(optim=r.optim.replace(lr=1e-4))
    assert changed.optim.lr == 1e-4 and changed.optim.epochs == r.optim.epochs
    assert changed.model == r.model and r.optim.lr == 5e-4  # frozen: the original is kept
    assert r.replace(lr=1e-4) == changed  # the flat name says the same
    with pytest.raises(ValueError, match="optim.lr must be > 0"):
        r.optim.replace(lr=-1.0)
    with pytest.raises(ValueError, match="eval.window_hop"):
        EvalSection(window_hop=0.0)
    with pytest.raises(ValueError, match="eval.average_from must be an epoch in"):
        r.replace(eval=r.eval.replace(average_from=50))  # across sections: 50 epochs
    with pytest.raises(AttributeError):
        r.optim.lr = 1.0  # frozen


def test_unknown_field_in_a_saved_recipe():
    with pytest.raises(ValueError, match="unknown recipe fields"):
        Recipe.from_dict({**get_recipe("example").to_dict(), "learning_rate": 1.0})
    saved = get_recipe("example").to_dict()
    saved["optim"]["learning_rate"] = 1.0
    with pytest.raises(ValueError, match=r"unknown recipe fields \['optim.learning_rate'\]"):
        Recipe.from_dict(saved)
    with pytest.raises(ValueError, match="unknown recipe fields"):
        get_recipe("example").replace(learning_rate=1.0)


def test_every_field_overridable_from_the_command_line():
    args = build_parser().parse_args([
        "--lr", "1e-4", "--epochs", "3", "--betas", "0.9", "0.98", "--precision", "bf16",
        "--eval-mode", "windows", "--fbank.target-length", "512", "--augment.mixup", "0",
        "--model-kwargs", '{"drop_path_rate": 0.2}', "--channels-last", "--clip-grad-norm",
        "none", "--fbank-preset", "audioset", "--average-from", "1", "--eval-batch-size", "8",
        "--window-hop", "0.25", "--sampler", "shuffle", "--seed", "3", "--tau", "0.4"])
    r = recipe_from_args(args)
    o = r.optim
    assert (o.lr, o.epochs, o.betas, o.precision) == (1e-4, 3, (0.9, 0.98), "bf16")
    assert r.eval.modes == ("windows",) and o.channels_last and o.clip_grad_norm is None
    assert r.data.fbank.target_length == 512 and r.data.fbank.num_mel_bins == 128
    assert r.data.augment.mixup == 0 and r.data.augment.time_mask == 192
    assert r.model.kwargs == {"drop_path_rate": 0.2} and r.eval.average_from == 1
    assert (r.eval.batch_size, r.eval.window_hop, r.data.sampler) == (8, 0.25, "shuffle")
    assert (r.seed, r.model.tau) == (3, 0.4)
    # options not given keep the preset's values
    assert o.weight_decay == 5e-7 and r.name == "atgnn_fsd50k"


def test_help_lists_the_options_by_section(capsys):
    parser = build_parser()
    groups = {g.title: {a.dest for a in g._group_actions} for g in parser._action_groups}
    assert {"model", "model_kwargs", "label_graph", "init_from"} <= groups[
        "recipe: model (recipe.model)"]
    assert {"data", "sampler", "num_workers", "fbank_preset"} <= groups[
        "recipe: data (recipe.data)"]
    assert {"lr", "epochs", "batch_size", "precision"} <= groups[
        "recipe: optimisation (recipe.optim)"]
    assert {"eval_modes", "eval_batch_size", "window_hop", "average_from"} <= groups[
        "recipe: evaluation (recipe.eval)"]
    assert "data_dir" in groups["data source fsd50k (logmel)"]
    assert {"train_csv", "eval_datafile"} <= groups["data source audioset (logmel)"]
    assert "train_records" in groups["data source embeddings (embedding)"]
    # every flag of the flat recipe is still there
    flags = {s for a in parser._actions for s in a.option_strings}
    assert {"--" + k.replace("_", "-") for k in FLAT_FIELDS if k not in ("fbank", "augment")} \
        <= flags
    assert all(a.help and a.help != argparse.SUPPRESS for a in parser._actions)


def test_print_recipe_and_usage_errors(capsys):
    assert main(["--recipe", "example", "--print-recipe", "--lr", "0.01"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.01 and printed["model"]["name"] == "atgnn_pyr_t"
    assert main(["--recipe", "example", "--lr", "-1", "--print-recipe"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "optim.lr must be > 0" in err
    assert "recipe 'example'" in err


def test_another_model_family_drops_the_presets_model_arguments():
    parser = build_parser()
    r = recipe_from_args(parser.parse_args(["--recipe", "example", "--model", "cnn10"]))
    assert r.model.name == "cnn10" and r.model.kwargs == {}
    r = recipe_from_args(parser.parse_args(["--recipe", "example", "--model",
                                            "atgnn_pyr_t_nomlg"]))
    assert r.model.kwargs == get_recipe("example").model.kwargs


@pytest.mark.parametrize("flag, value, problem", [
    ("--fbank.num-mel-bins", "0", "num_mel_bins must be an integer >= 4"),
    ("--fbank.target-length", "0", "target_length must be an integer >= 1")])
def test_a_bad_front_end_option_is_a_usage_error_before_any_work(tmp_path, capsys, flag,
                                                                 value, problem):
    from gnn_audio.cli.train import main

    assert main(["--recipe", "example", "--data-dir", str(tmp_path / "none"), flag, value,
                 "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err
    assert not (tmp_path / "run").exists()
