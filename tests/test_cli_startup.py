"""``gnn-audio`` starts at once: its help, its usage errors and a file given on the command
line that is not there are answered before torch, the models or the trainer are imported
(a fresh interpreter per case, its ``sys.modules`` read after the command returned)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from gnn_audio.cli.common import no_such
from gnn_audio.data.audio import AudioError, audio_info
from gnn_audio.inference import load_tagging_model

#: what a light start may import of gnn_audio
LIGHT = ("gnn_audio", "gnn_audio.cli", "gnn_audio.errors", "gnn_audio.types")
HEAVY = ("torch", "torchaudio", "torch_geometric", "numpy", "soundfile", "matplotlib")

PROBE = textwrap.dedent("""
    import json, os, sys
    from gnn_audio.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    with open(os.environ["GNN_AUDIO_PROBE"], "w") as f:
        json.dump({"code": code, "modules": sorted(sys.modules)}, f)
""")


def _run(args, cwd):
    """``gnn-audio ARGS`` in a fresh interpreter: exit status, stdout, stderr, and the
    heavy modules and non-command gnn_audio modules it had imported when it returned."""
    report = os.path.join(cwd, "probe.json")
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "GNN_AUDIO_PROBE": report})
    assert proc.returncode == 0, proc.stderr[-3000:]  # the probe itself
    with open(report) as f:
        got = json.load(f)
    loaded = got["modules"]
    heavy = [m for m in HEAVY if m in loaded]
    ours = [m for m in loaded if m.startswith("gnn_audio") and m not in LIGHT
            and not m.startswith("gnn_audio.cli.")]
    return got["code"], proc.stdout, proc.stderr, heavy + ours


@pytest.mark.parametrize("args", [["--help"], ["--version"], [], ["tag", "--help"],
                                  ["explain", "--help"], ["models", "--help"],
                                  ["summary", "--help"], ["demo", "--help"]])
def test_help_and_version_load_nothing(args, tmp_path):
    code, out, err, loaded = _run(args, str(tmp_path))
    assert code == (2 if not args else 0)
    assert (out if args else err).startswith(("usage: gnn-audio", "gnn-audio 0"))
    assert loaded == []
    if args == ["--help"]:  # every command listed with its help
        for command in ("tag", "models", "summary", "explain", "train", "eval", "prepare",
                        "demo"):
            assert f"\n    {command} " in out


def test_tag_reports_a_missing_file_without_loading_anything(tmp_path):
    code, out, err, loaded = _run(["tag", "missing.wav", "--checkpoint", "x.pt"],
                                  str(tmp_path))
    assert (code, out) == (1, "")
    assert err.splitlines() == ["gnn-audio tag: missing.wav: no such file",
                                "gnn-audio tag: x.pt: no such checkpoint file"]
    assert loaded == []
    code, out, err, loaded = _run(["tag", "a.wav", "b.flac", "-c", "x.pt", "--format",
                                   "json", "--device", "cpu"], str(tmp_path))
    assert code == 1 and out == "" and len(err.splitlines()) == 3 and loaded == []
    (tmp_path / "real.wav").write_bytes(b"RIFF")  # there (its header is not read first)
    code, out, err, loaded = _run(["tag", "real.wav", "-c", "x.pt"], str(tmp_path))
    assert (code, out, loaded) == (1, "", [])
    assert err.splitlines() == ["gnn-audio tag: x.pt: no such checkpoint file"]
    (tmp_path / "x.pt").write_bytes(b"")  # a checkpoint that is there: the files come first
    code, out, err, loaded = _run(["tag", "missing.wav", "-c", "x.pt"], str(tmp_path))
    assert code == 1 and err.splitlines() == [
        "gnn-audio tag: missing.wav: no such file",
        "gnn-audio tag: no file to tag (1 given, none usable)"] and loaded == []


@pytest.mark.parametrize("args", [["tag", "a.wav"], ["tag", "a.wav", "-c", "x", "--top-k", "0"],
                                  ["tag", "a.wav", "-c", "x", "--format", "xml"],
                                  ["explain", "a.wav", "-c", "x", "--label", "A"],
                                  ["summary"], ["no-such-command"]])
def test_usage_errors_load_nothing(args, tmp_path):
    code, out, err, loaded = _run(args, str(tmp_path))
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("gnn-audio")
    assert loaded == []


def test_explain_reports_a_missing_file_without_loading_anything(tmp_path):
    (tmp_path / "ck.pt").write_bytes(b"not read before the audio file is found")
    code, out, err, loaded = _run(["explain", "missing.wav", "-c", "ck.pt", "--label", "A",
                                   "--out", "o.png"], str(tmp_path))
    assert (code, out, err) == (1, "", "gnn-audio explain: missing.wav: no such file\n")
    assert loaded == []
    code, out, err, loaded = _run(["explain", "missing.wav", "-c", "x.pt", "--label", "A",
                                   "--out", "o.png"], str(tmp_path))
    assert (code, out, err) == (1, "", "gnn-audio explain: x.pt: no such checkpoint file\n")
    assert loaded == []


@pytest.mark.parametrize("args, message", [
    (["eval", "--checkpoint", "missing.pt", "--data-dir", "D"],
     "gnn-audio eval: missing.pt: no such checkpoint file"),
    (["prepare", "--data-dir", "missing"], "missing: no such directory"),
    (["train", "--data-dir", "missing"], "missing: no such directory")])
def test_data_source_commands_report_a_missing_path(args, message, tmp_path):
    code, out, err, loaded = _run(args, str(tmp_path))
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and message in err, err
    if "torch" in loaded:
        # their parsers take the data sources' options from gnn_audio.data.readers.sources
        # (and train's the recipe's from gnn_audio.train.recipe), which import torch
        pytest.xfail("the data-source and recipe declarations import torch")
    assert loaded == []


def test_the_early_messages_are_the_librarys(tmp_path):
    """What is reported before the library is loaded reads as what it reports itself."""
    missing = str(tmp_path / "missing.wav")
    with pytest.raises(AudioError) as err:
        audio_info(missing)
    assert no_such(missing) == str(err.value)
    with pytest.raises(FileNotFoundError) as err:
        load_tagging_model(tmp_path / "missing.pt")
    assert no_such(str(tmp_path / "missing.pt"), "checkpoint file") == str(err.value)
    assert no_such(str(tmp_path)) is None
    os.symlink(tmp_path / "nowhere.wav", tmp_path / "dangling.wav")
    assert no_such(str(tmp_path / "dangling.wav")) is None  # the library says where it points
