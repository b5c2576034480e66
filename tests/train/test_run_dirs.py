"""A new run never mixes its files with an earlier run's: an existing run directory is refused
unless ``--resume`` (continue it) or ``--overwrite`` (start over there) is given."""
import json

from gnn_audio.cli.train import main

from .conftest import tiny_args


def _short(data, run, *extra):
    return tiny_args(data, run, "--max-steps", "1", *extra, epochs=1)


def test_a_second_run_into_a_run_directory_is_refused_and_changes_nothing(tiny_fsd50k,
                                                                           tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_short(tiny_fsd50k, run)) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    events = sorted(p.name for p in (run / "tensorboard").iterdir())
    capsys.readouterr()
    assert main(_short(tiny_fsd50k, run, "--seed", "3")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{run}: already holds a training run (config.json, train.log, tensorboard" in err
    assert f"continue it with --resume {run}, or pass --overwrite" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in (run / "tensorboard").iterdir()) == events


def test_overwrite_replaces_the_run_and_leaves_other_files(tiny_fsd50k, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_short(tiny_fsd50k, run)) == 0
    (run / "notes.txt").write_text("mine")
    old_events = set((run / "tensorboard").iterdir())
    assert main(_short(tiny_fsd50k, run, "--seed", "3", "--overwrite")) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["seed"] == 3
    log = (run / "train.log").read_text()
    assert log.count("recipe example:") == 1  # one run's log, not two
    assert "--overwrite: removed the earlier run's config.json, train.log" in log
    assert not old_events & set((run / "tensorboard").iterdir())
    assert (run / "notes.txt").read_text() == "mine"


def test_an_empty_existing_folder_is_a_new_run_and_resume_excludes_overwrite(
        tiny_fsd50k, tmp_path, capsys):
    run = tmp_path / "made_beforehand"
    run.mkdir()
    assert main(_short(tiny_fsd50k, run)) == 0
    capsys.readouterr()
    assert main(["--resume", str(run), "--overwrite", "--device", "cpu"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_a_relative_data_dir_is_stored_absolute_and_the_run_resumes_from_elsewhere(
        tiny_fsd50k, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tiny_fsd50k.parent)
    run = tmp_path / "run"
    args = _short(tiny_fsd50k.name, run)  # --data-dir relative to the working folder
    assert main(args) == 0
    stored = json.loads((run / "config.json").read_text())["data_paths"]["data_dir"]
    assert stored == str(tiny_fsd50k)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["--resume", str(run), "--device", "cpu", "--no-progress"]) == 0
    assert "resumed" in capsys.readouterr().err


def test_a_damaged_config_json_is_one_line_naming_it(tiny_fsd50k, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_short(tiny_fsd50k, run)) == 0
    config = run / "config.json"
    text = config.read_text()
    config.write_text(text[:len(text) // 2])  # cut in the middle, as a full disk leaves it
    capsys.readouterr()
    assert main(["--resume", str(run), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{config}: damaged, not JSON (" in err and "line" in err
    config.write_text(json.dumps({"recipe": {}}))  # JSON, but not a run's
    assert main(["--resume", str(run), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{config}: not a run's config.json" in err
