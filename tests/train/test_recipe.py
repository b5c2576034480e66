import json

import pytest

from gnn_audio.train.cli import build_parser, main, recipe_from_args
from gnn_audio.train.recipe import ATGCN_PAPER_FBANK, RECIPES, Recipe, get_recipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_presets_validate_and_round_trip(name):
    recipe = get_recipe(name)
    again = Recipe.from_dict(json.loads(recipe.to_json()))
    assert again == recipe


def test_atgnn_fsd50k_is_the_paper_recipe():
    r = get_recipe("atgnn_fsd50k")
    assert (r.model, r.lr, r.betas, r.weight_decay) == ("atgnn_pyr_s", 5e-4, (0.95, 0.999), 5e-7)
    assert (r.warmup_steps, r.lr_decay_start, r.lr_decay_every, r.lr_decay) == (1000, 10, 5, 0.5)
    assert (r.batch_size, r.epochs, r.sampler) == (24, 50, "balanced")
    assert (r.augment.mixup, r.augment.freq_mask, r.augment.time_mask) == (0.5, 48, 192)
    assert r.fbank.target_length == 1024 and r.fbank.num_mel_bins == 128


def test_audioset_and_atgcn_recipes():
    r = get_recipe("atgnn_audioset")
    assert (r.fbank.target_length, r.epochs, r.lr_decay_start) == (1056, 60, 35)
    g = get_recipe("at_gcn_audioset")
    assert (g.model, g.lr, g.batch_size, g.max_steps) == ("at_gcn", 1e-3, 64, 600_000)
    assert g.augment.mixup > 0 and g.augment.freq_mask > 0 and (g.tau, g.p) == (0.3, 0.2)
    assert (ATGCN_PAPER_FBANK.num_mel_bins, ATGCN_PAPER_FBANK.frame_length_ms,
            ATGCN_PAPER_FBANK.frame_shift_ms, ATGCN_PAPER_FBANK.target_length) == (64, 50, 25, 400)


@pytest.mark.parametrize("change,word", [
    (dict(lr=-1.0), "lr"), (dict(batch_size=0), "batch_size"), (dict(precision="fp8"), "precision"),
    (dict(eval_modes=("full",)), "eval_modes"), (dict(model="resnet"), "model"),
    (dict(label_graph="eq9"), "label_graph"), (dict(average_from=50), "average_from"),
    (dict(sampler="weighted"), "sampler")])
def test_bad_values_name_the_field(change, word):
    with pytest.raises(ValueError, match=word):
        get_recipe("atgnn_fsd50k").replace(**change)


def test_unknown_field_in_a_saved_recipe():
    with pytest.raises(ValueError, match="unknown recipe fields"):
        Recipe.from_dict({**get_recipe("example").to_dict(), "learning_rate": 1.0})


def test_every_field_overridable_from_the_command_line():
    args = build_parser().parse_args([
        "--lr", "1e-4", "--epochs", "3", "--betas", "0.9", "0.98", "--precision", "bf16",
        "--eval-mode", "windows", "--fbank.target-length", "512", "--augment.mixup", "0",
        "--model-kwargs", '{"drop_path_rate": 0.2}', "--channels-last", "--clip-grad-norm",
        "none", "--fbank-preset", "audioset", "--average-from", "1"])
    r = recipe_from_args(args)
    assert (r.lr, r.epochs, r.betas, r.precision) == (1e-4, 3, (0.9, 0.98), "bf16")
    assert r.eval_modes == ("windows",) and r.channels_last and r.clip_grad_norm is None
    assert r.fbank.target_length == 512 and r.fbank.num_mel_bins == 128
    assert r.augment.mixup == 0 and r.augment.time_mask == 192
    assert r.model_kwargs == {"drop_path_rate": 0.2} and r.average_from == 1
    # options not given keep the preset's values
    assert r.weight_decay == 5e-7 and r.name == "atgnn_fsd50k"


def test_print_recipe_and_usage_errors(capsys):
    assert main(["--recipe", "example", "--print-recipe", "--lr", "0.01"]) == 0
    assert json.loads(capsys.readouterr().out)["lr"] == 0.01
    assert main(["--recipe", "example", "--lr", "-1", "--print-recipe"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lr must be > 0" in err


def test_another_model_family_drops_the_presets_model_arguments():
    parser = build_parser()
    r = recipe_from_args(parser.parse_args(["--recipe", "example", "--model", "cnn10"]))
    assert r.model == "cnn10" and r.model_kwargs == {}
    r = recipe_from_args(parser.parse_args(["--recipe", "example", "--model",
                                            "atgnn_pyr_t_nomlg"]))
    assert r.model_kwargs == get_recipe("example").model_kwargs
