"""explain / explain_file (``gnn-audio explain``): a valid PNG from a tiny ATGNN checkpoint,
and one-line errors for what a user can get wrong."""
from __future__ import annotations

import pytest
import torch

from gnn_audio.data.features import fbank
from gnn_audio.zoo import create_model, save_checkpoint
from gnn_audio.viz import explain, explain_file
from gnn_audio.viz.explain import select_pgn_block
from gnn_audio.viz.graph_trace import trace_graphs

from .conftest import FBANK, LABELS, assert_png, tiny_atgnn


def test_explain_file_writes_a_png(tiny_checkpoint, wav_file, tmp_path):
    out = explain_file(tiny_checkpoint, wav_file, "Car horn", tmp_path / "fig.png", dpi=40)
    assert out == tmp_path / "fig.png"
    assert_png(out)
    # a chosen PGN block (1-based stage and block), patch and window start; names are
    # matched ignoring case, spaces and underscores
    again = explain_file(str(tiny_checkpoint), str(wav_file), "water drip",
                         tmp_path / "fig2.png", stage=1, block=2, patch=(1.0, 10.0),
                         start=0.5, dpi=40)
    assert_png(again)


def test_explain_of_a_clip_shorter_than_the_window(tiny_model, tmp_path):
    logmel = fbank(torch.randn(4000) * 0.1, FBANK.replace(target_length=None))  # 0.25 s
    window = torch.cat([logmel, logmel.new_full((64 - logmel.size(0), 32), 1.0)])
    out = explain(tiny_model, window, 3, tmp_path / "short.png", valid_frames=logmel.size(0),
                  source="noise", dpi=40)
    assert_png(out)


def test_pgn_block_choice(tiny_model):
    trace = trace_graphs(tiny_model, torch.randn(64, 32))
    last = select_pgn_block(trace)
    assert (last.stage, last.block) == (3, 1)
    assert (select_pgn_block(trace, 3, 5).stage, select_pgn_block(trace, 3, 5).block) == (2, 4)
    with pytest.raises(ValueError, match="stage 5 does not exist: the model has stages 1-4"):
        select_pgn_block(trace, 5)
    with pytest.raises(ValueError, match="block 3 does not exist: stage 1 has PGN blocks 1-2"):
        select_pgn_block(trace, 1, 3)


def test_unknown_label_lists_close_names(tiny_checkpoint, wav_file, tmp_path):
    with pytest.raises(ValueError) as err:
        explain_file(tiny_checkpoint, wav_file, "Car horns", tmp_path / "x.png")
    msg = str(err.value)
    assert "\n" not in msg and str(tiny_checkpoint) in msg and "'Car horns'" in msg
    assert "closest: Car horn" in msg
    assert not (tmp_path / "x.png").exists()


def test_other_checkpoints_are_refused(tmp_path, wav_file):
    fc = create_model("fc1", num_classes=5, label_names=LABELS)
    save_checkpoint(fc, tmp_path / "fc1.pt")
    with pytest.raises(ValueError) as err:
        explain_file(tmp_path / "fc1.pt", wav_file, "Cat", tmp_path / "x.png")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "fc1.pt") in msg
    assert "holds a fc1 model" in msg and "needs an atgnn checkpoint" in msg
    nomlg = create_model("atgnn_pyr_t_nomlg", num_classes=5, label_names=LABELS,
                         channels=[8, 16, 24, 32], input_size=(64, 32))
    save_checkpoint(nomlg, tmp_path / "nomlg.pt", extra={"fbank": FBANK.to_dict()})
    with pytest.raises(ValueError, match="nomlg.pt: atgnn_pyr_t_nomlg has no MLG blocks"):
        explain_file(tmp_path / "nomlg.pt", wav_file, "Cat", tmp_path / "x.png")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.txt is not a gnn_audio checkpoint"):
        explain_file(tmp_path / "notes.txt", wav_file, "Cat", tmp_path / "x.png")
    with pytest.raises(ValueError, match="not an ATGNN model"):
        explain(torch.nn.Linear(2, 2), torch.zeros(64, 32), "Cat", tmp_path / "x.png")


def test_bad_paths_and_options(tiny_checkpoint, wav_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        explain_file(tmp_path / "missing.pt", wav_file, "Cat", tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="audio file not found: .*nothing.wav"):
        explain_file(tiny_checkpoint, tmp_path / "nothing.wav", "Cat", tmp_path / "x.png")
    with pytest.raises(ValueError, match="folder .*no_such_dir does not exist"):
        explain_file(tiny_checkpoint, wav_file, "Cat", tmp_path / "no_such_dir" / "x.png")
    with pytest.raises(ValueError, match=r"start 9.0 s is past the end of the file \(2.38 s\)"):
        explain_file(tiny_checkpoint, wav_file, "Cat", tmp_path / "x.png", start=9.0)
    with pytest.raises(ValueError, match="patch .* lies outside the analysed window"):
        explain_file(tiny_checkpoint, wav_file, "Cat", tmp_path / "x.png", patch=(5.0, 3))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    from gnn_audio.data.audio import AudioError

    with pytest.raises(AudioError, match="empty.wav"):
        explain_file(tiny_checkpoint, empty, "Cat", tmp_path / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.wav"]


def test_explain_runs_the_model_in_eval_mode(tiny_checkpoint, tmp_path):
    model = tiny_atgnn()
    model.train()
    explain(model, torch.randn(64, 32), "Cat", tmp_path / "e.png", dpi=30)
    assert model.training


def test_gnn_audio_explain_command(tiny_checkpoint, wav_file, tmp_path, capsys):
    from gnn_audio.cli import main

    out = tmp_path / "cli.png"
    assert main(["explain", str(wav_file), "--checkpoint", str(tiny_checkpoint), "--label",
                 "car horn", "--out", str(out), "--stage", "1", "--block", "1"]) == 0
    assert_png(out)
    assert capsys.readouterr().out.strip() == str(out)
    # an unknown label: one line naming the checkpoint and the closest names, exit 1
    assert main(["explain", str(wav_file), "-c", str(tiny_checkpoint), "--label", "car horns",
                 "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Car horn" in err[0] and str(tiny_checkpoint) in err[0]
    # a bad option value is a usage error
    with pytest.raises(SystemExit) as exit_:
        main(["explain", str(wav_file), "-c", str(tiny_checkpoint), "--label", "Car horn",
              "--out", str(tmp_path / "y.png"), "--stage", "0"])
    assert exit_.value.code == 2
