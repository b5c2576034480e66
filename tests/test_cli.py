"""The gnn-audio command line: tag (outputs, errors, exit codes), models, summary, help, demo."""
import argparse
import csv
import io
import json
import os
import select
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

from gnn_audio.cli import build_parser, main
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.synthetic.signals import chirp, tone, write_wav
from gnn_audio.inference import Tagger
from gnn_audio.weights_io import save_weights_file
from gnn_audio.zoo import create_model, list_models, save_checkpoint
from gnn_audio.zoo.summary import count_macs, count_parameters, zoo_rows

NAMES = ["Tone", "Chirp", "Noise bursts", "Silence"]
FB = FbankConfig(num_mel_bins=32, target_length=64, norm_mean=-3.1, norm_std=3.7)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny ATGNN checkpoint with its front-end, as the trainer writes best.pt."""
    torch.manual_seed(0)
    model = create_model("atgnn_pyr_t", num_classes=4, label_names=NAMES,
                         channels=[8, 16, 24, 32], input_size=(64, 32), drop_path_rate=0.0)
    path = tmp_path_factory.mktemp("ck") / "best.pt"
    save_checkpoint(model, path, extra={"fbank": FB.to_dict()})
    return str(path)


@pytest.fixture(scope="module")
def two_x(tmp_path_factory):
    """``a/x.wav`` (44.1 kHz stereo) and ``b/x.wav`` (8 kHz mono): one base name."""
    root = tmp_path_factory.mktemp("same_name")
    (root / "a").mkdir()
    (root / "b").mkdir()
    write_wav(root / "a" / "x.wav", np.stack([tone(1.5, 44100), chirp(1.5, 44100)], 1), 44100)
    write_wav(root / "b" / "x.wav", chirp(0.8, 8000, seed=2), 8000)
    return [str(root / "a" / "x.wav"), str(root / "b" / "x.wav")]


def _one_line_err(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    return captured.err


def test_tag_json_parses_and_names_full_paths(ckpt, two_x, tmp_path, capsys):
    five_min = str(tmp_path / "five_minutes_8k.wav")
    write_wav(five_min, tone(300.0, 8000, freq=300.0), 8000)
    files = two_x + [five_min]
    assert main(["tag", *files, "--checkpoint", ckpt, "--format", "json", "--top-k", "3",
                 "--hop", "0.64", "--windows"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # one JSON document
    assert [d["file"] for d in doc] == files  # the paths as given, not base names
    for d in doc:
        assert len(d["tags"]) == 3 and {t["label"] for t in d["tags"]} <= set(NAMES)
        assert all(0.0 <= t["score"] <= 1.0 for t in d["tags"])
        assert len(d["windows"]) == d["num_windows"]
    assert (doc[0]["sample_rate"], doc[0]["channels"]) == (44100, 2)
    assert doc[2]["duration"] == 300.0 and doc[2]["num_windows"] == 469  # 0.64-s steps
    assert doc[2]["windows"][-1]["end"] == 300.0
    # stderr: one log line (no progress bar when stderr is not a terminal)
    assert captured.err.count("\n") == 1 and "3 file(s) with atgnn_pyr_t from" in captured.err
    # the same scores as the Python API
    result = Tagger(ckpt, hop=0.64).tag(files[0], top_k=3)
    assert [t["label"] for t in doc[0]["tags"]] == [n for n, _ in result.tags]


def test_tag_table_and_csv(ckpt, two_x, capsys):
    assert main(["tag", *two_x, "-c", ckpt, "--top-k", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0] == f"{two_x[0]}:" and lines[3] == f"{two_x[1]}:" and len(lines) == 6
    assert all(line.split(None, 1)[1] in NAMES for line in lines[1:3] + lines[4:6])
    assert main(["tag", *two_x, "-c", ckpt, "--format", "csv", "--top-k", "1", "-q"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["file", "label", "score", "notes"] and [r[0] for r in rows[1:]] == two_x
    assert [r[3] for r in rows[1:]] == ["", ""]  # nothing to note about these files
    assert main(["tag", two_x[0], "-c", ckpt, "--format", "csv", "--windows", "--top-k", "1",
                 "--threshold", "0", "-q"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["window"] for r in rows] == ["all", "0", "1", "2", "3"]  # 148 frames: 0 32 64 84
    assert float(rows[-1]["end"]) == 1.5
    # a threshold: only the tags that reach it
    scores = Tagger(ckpt, pool="mean").tag(two_x[1], top_k=None).scores
    threshold = float(np.sort(scores)[1]) + 1e-6  # just above the second lowest score
    assert main(["tag", two_x[1], "-c", ckpt, "--threshold", f"{threshold:.7f}", "-q",
                 "--pool", "mean", "--top-k", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{two_x[1]}:"
    printed = [float(line.split()[0]) for line in lines[1:]]
    assert len(printed) == int((scores >= float(f"{threshold:.7f}")).sum())
    if printed:
        assert min(printed) >= round(threshold, 3) - 5e-4
    else:
        assert lines[1:] == [f"    (no tag scores {float(f'{threshold:.7f}')} or more)"]


def test_one_bad_file_among_good_ones(ckpt, two_x, tmp_path, capsys):
    missing = str(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 30)
    nan = tmp_path / "nan.wav"
    x = tone(1.0, 16000)
    x[8000] = np.nan
    sf.write(str(nan), x, 16000, subtype="FLOAT")
    files = [two_x[0], missing, str(empty), str(text), str(nan), two_x[1]]
    assert main(["tag", *files, "-c", ckpt, "--format", "json", "--workers", "2"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert [d["file"] for d in doc] == files
    assert ["error" in d for d in doc] == [False, True, True, True, True, False]
    err = captured.err.splitlines()
    for path, reason in [(missing, "no such file"), (empty, "empty file"),
                         (text, "not an audio file"), (nan, "NaN or infinite samples")]:
        line, = [ln for ln in err if f"{path}: " in ln]
        assert line.startswith(f"gnn-audio tag: {path}: ") and reason in line
    assert err[-1] == "gnn-audio tag: 4 of 6 file(s) could not be tagged"
    # the table lists the good files; nothing but errors when none is usable
    assert main(["tag", *files, "-c", ckpt, "-q"]) == 1
    out = capsys.readouterr().out
    assert out.count(".wav:") == 2 and two_x[1] + ":" in out
    assert main(["tag", missing, "-c", ckpt]) == 1
    assert capsys.readouterr().err.count("\n") == 2  # the file, then "no file to tag"


@pytest.mark.parametrize("flags", [
    ["--batch-size", "0"], ["--top-k", "-1"], ["--top", "0"], ["--threshold", "1.5"],
    ["--pool", "median"], ["--format", "xml"], ["--window", "0"], ["--hop", "-1"],
    ["--workers", "-2"], ["--device", "tpu"], ["--no-such-option"], []])
def test_bad_flags_exit_2_before_the_model_loads(flags, two_x, tmp_path, capsys):
    # the checkpoint does not exist: a usage error is found before it is looked at
    ck = [] if not flags else ["--checkpoint", str(tmp_path / "missing.pt")]
    with pytest.raises(SystemExit) as exc:
        main(["tag", two_x[0], *ck, *flags])
    assert exc.value.code == 2
    err = _one_line_err(capsys)
    assert err.startswith("gnn-audio tag: error: ")


def test_cuda_without_cuda_and_a_window_too_long(ckpt, two_x, capsys):
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exc:
            main(["tag", two_x[0], "-c", ckpt, "--device", "cuda"])
        assert exc.value.code == 2
        assert "CUDA is not available" in _one_line_err(capsys)
    assert main(["tag", two_x[0], "-c", ckpt, "--window", "5"]) == 2  # the model reads 0.64 s
    assert "model's input, 0.64 s" in capsys.readouterr().err.splitlines()[-1]


def test_unusable_checkpoints_exit_1_with_one_line(ckpt, two_x, tmp_path, capsys):
    text = tmp_path / "readme.txt"
    text.write_text("not a checkpoint\n")
    emb = tmp_path / "fc2.pt"
    save_checkpoint(create_model("fc2", num_classes=4), emb)
    other = tmp_path / "renamed.pt"  # ATGNN weights with the MLG under a name without it
    ck = torch.load(ckpt, weights_only=True)
    save_weights_file(dict(ck, model_name="atgnn_pyr_t_nomlg"), other)
    cnn = tmp_path / "cnn.pt"  # ATGNN arguments under a CNN's name
    save_weights_file(dict(ck, model_name="cnn10"), cnn)
    cases = [([str(tmp_path / "nope.pt")], "no such checkpoint file"),
             ([str(tmp_path)], "is a directory"),
             ([str(text)], "is not a gnn_audio checkpoint"),
             ([str(emb)], "reads AudioSet embeddings"),
             ([str(other)], "does not fit atgnn_pyr_t_nomlg"),  # another architecture
             ([str(cnn)], "unexpected keyword argument 'channels'"),
             ([ckpt, "--model", "atgnn_pyr_s"], "holds a atgnn_pyr_t checkpoint, not "
              "atgnn_pyr_s"),
             ([ckpt, "--num-classes", "527"], "model of 4 classes, not 527")]
    for (path, *extra), reason in cases:
        assert main(["tag", two_x[0], "-c", path, *extra]) == 1
        err = _one_line_err(capsys)
        assert err.startswith(f"gnn-audio tag: {path}") and reason in err, err
    # the checkpoint names its model: --model and --num-classes only check it
    assert main(["tag", two_x[0], "-c", ckpt, "--model", "atgnn_pyr_t", "--num-classes", "4",
                 "-q"]) == 0


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: gnn-audio")
    assert "tag" in captured.err and "models" in captured.err


def test_every_option_has_a_help_string():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    from gnn_audio.cli.train import build_parser as build_train_parser

    parsers = [("", parser)] + sorted(sub.choices.items())
    # `train` is parsed by gnn_audio.cli.train: check that parser instead of the stub
    parsers = [(n, build_train_parser() if n == "train" else p) for n, p in parsers]
    for name, p in parsers:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {action.dest}")
    assert not missing, missing
    assert {"tag", "models", "summary", "explain", "train", "eval", "prepare",
            "demo"} <= set(sub.choices)


def test_models_counts_params_and_macs_from_the_models(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["models", "fc*", "--format", "json", "-q"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["fc1", "fc2"]
    for r in rows:
        model = create_model(r["model"], num_classes=527)
        assert r["params"] == count_parameters(model) and r["classes"] == 527
        assert r["macs"] == count_macs(model, torch.randn(1, 10, 128)) > 0
        assert r["input"] == "embedding" and r["input_size"] == [10, 128]
    assert (tmp_path / "gnn_audio" / "zoo_counts.json").is_file()
    # a second listing reads the cache: no model is run
    import gnn_audio.zoo.summary as summary

    monkeypatch.setattr(summary, "count_macs", lambda *a: pytest.fail("recomputed"))
    assert main(["models", "fc*", "-q"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["model", "family", "input"]
    assert table[1].split()[:2] == ["fc1", "embedding"] and "0.675" in table[1]
    # every zoo entry (parameters only: no forward passes), with the papers' mAP
    assert main(["models", "--no-macs", "--format", "json", "-q"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == list_models()
    assert rows["atgnn_pyr_s"]["paper_map_fsd50k"] == 0.583
    assert rows["atgnn_pyr_s"]["macs"] is None
    assert rows["atgnn_pyr_t_nomlg"]["params"] == 10136632
    assert main(["models", "atgnn_pyr_*", "--no-macs", "--format", "markdown", "-q"]) == 0
    out = capsys.readouterr().out
    assert "| atgnn_pyr_s | atgnn |" in out and "cnn10" not in out
    assert main(["models", "nothing_like_this*"]) == 1


def test_summary_is_a_layer_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["summary", "atgnn_pyr_t_nomlg"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("atgnn_pyr_t_nomlg: input [1, 1024, 128]")
    assert lines[1].split() == ["module", "type", "params", "output"]
    rows = {line.split()[0]: line.split() for line in lines[2:-2]}
    assert rows["stem"][1:4] == ["Stem", "31,680", "[1,"] and "backbone.14" in rows
    assert " ".join(rows["prediction.4"][3:]) == "[1, 200, 1, 1]"
    assert lines[-2].startswith("total: 10,136,632 parameters (10.137 M), 5.048 G MACs")
    assert lines[-1].startswith("FLOPs: 10.10 GFLOP/clip forward")  # 2 x 5.048 G MACs
    with pytest.raises(SystemExit):
        main(["summary"])
    assert main(["summary", "no_such_model"]) == 2


def test_summary_shows_the_flops_per_clip(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["summary", "atgnn_pyr_t"]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    words = first.split()
    assert words[:4] == ["FLOPs:", words[1], "GFLOP/clip", "forward"]
    assert "convolutions)," in words and "training step" in first
    forward, train = float(words[1]), float(words[words.index("GFLOP/clip", 4) - 1])
    row = zoo_rows(["atgnn_pyr_t"])[0]  # the summary filled the count cache
    assert forward == round(row["flops"] / 1e9, 2) == round(2 * row["macs"] / 1e9, 2)
    assert train == round(row["train_flops"] / 1e9, 2) and 2 * forward < train
    # a second summary reads the FLOPs from the cache: no training step is counted
    import gnn_audio.zoo.summary as summary

    monkeypatch.setattr(summary, "count_flops", lambda *a, **k: pytest.fail("recomputed"))
    assert main(["summary", "atgnn_pyr_t"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == first


def test_demo_output_is_line_buffered(tmp_path):
    """Each demo line reaches a pipe when it is printed, not when the process ends."""
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, sys, time
        import gnn_audio.demo
        def fake(model, steps, out, top, log):
            log("first line")
            while not os.path.exists({str(go)!r}):
                time.sleep(0.02)
            log("second line")
        gnn_audio.demo.run_demo = fake
        from gnn_audio.cli import main
        sys.exit(main(["demo", "--steps", "1"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": ""})
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no line within 120 s"
        assert proc.stdout.readline() == "first line\n" and proc.poll() is None
    finally:
        go.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert out == "second line\n"


def test_demo_runs_end_to_end(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gnn_audio.cli", "demo", "--steps", "4",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "held-out mAP" in proc.stdout
    assert len(list((tmp_path / "train").glob("*.wav"))) == 48


def test_eval_and_prepare_take_every_source_and_check_it_before_any_work(tmp_path, capsys):
    from gnn_audio.data.readers import source_options

    for command in ("eval", "prepare"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert all(option.flag in out for option in source_options().values()), command
    ck = ["--checkpoint", str(tmp_path / "missing.pt")]
    for args, reason in [([], "cannot tell the data source"),
                         (["--data", "embeddings"], "--eval-records"),
                         (["--eval-csv", "e.csv"], "--audio-dir is required"),
                         (["--data-dir", "D", "--eval-datafile", "e.json"],
                          "the options of audioset and fsd50k")]:
        assert main(["eval", *ck, *args]) == 2  # a usage error, before the checkpoint
        err = _one_line_err(capsys)
        assert err.startswith("gnn-audio eval: ") and reason in err, err
    # usable options: the missing checkpoint is the failure (exit 1), in one line
    assert main(["eval", *ck, "--data-dir", str(tmp_path), "--quiet"]) == 1
    err = _one_line_err(capsys)
    assert str(tmp_path / "missing.pt") in err


def _fsd50k_layout(root, names):
    """An FSD50K-layout folder over ``names``: 3 dev clips (2 train, 1 val), 2 eval clips."""
    gt = root / "FSD50K.ground_truth"
    dev, ev = root / "FSD50K.dev_audio", root / "FSD50K.eval_audio"
    for d in (gt, dev, ev):
        d.mkdir(parents=True)
    mids = [f"/m/x{i}" for i in range(len(names))]
    (gt / "vocabulary.csv").write_text("".join(f"{i},{n},{m}\n"
                                               for i, (n, m) in enumerate(zip(names, mids))))
    dev_rows = [("1", 0, "train"), ("2", 1, "train"), ("3", 2, "val")]
    (gt / "dev.csv").write_text("fname,labels,mids,split\n" + "".join(
        f'{f},"{names[c]}","{mids[c]}",{split}\n' for f, c, split in dev_rows))
    (gt / "eval.csv").write_text("fname,labels,mids\n" + "".join(
        f'{f},"{names[c]}","{mids[c]}"\n' for f, c in [("8", 0), ("9", 1)]))
    for k, (folder, fname) in enumerate([(dev, "1"), (dev, "2"), (dev, "3"), (ev, "8"),
                                         (ev, "9")]):
        write_wav(folder / f"{fname}.wav", tone(0.8, 22050, freq=300.0 + 100 * k), 22050)
    return root


def test_eval_quiet_prints_the_result_lines_only(ckpt, tmp_path, capsys):
    """--quiet: the metrics on stdout and nothing on stderr, whether the split's waveform
    store is built, reused or rebuilt; without it, the store line and progress go to
    stderr."""
    data = _fsd50k_layout(tmp_path / "FSD50K", NAMES)
    args = ["eval", "--checkpoint", ckpt, "--data-dir", str(data), "--batch-size", "4",
            "--device", "cpu"]

    def quiet_run():
        assert main([*args, "--quiet"]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        lines = captured.out.splitlines()
        assert [line.split()[0] for line in lines] == ["crop", "windows"]
        assert all(line.endswith("(2 clips)") for line in lines)

    quiet_run()  # builds the store
    assert (data / "gnn_audio_stores" / "eval_16000").is_dir()
    quiet_run()  # reuses it
    write_wav(data / "FSD50K.eval_audio" / "9.wav", chirp(0.9, 22050), 22050)
    quiet_run()  # rebuilds it: a source changed
    write_wav(data / "FSD50K.eval_audio" / "8.wav", chirp(0.7, 22050, seed=4), 22050)
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "gnn-audio eval: eval: 2 clips -> " in captured.err
    assert "1 changed source(s): 8" in captured.err
    assert [line.split()[0] for line in captured.out.splitlines()] == ["crop", "windows"]
