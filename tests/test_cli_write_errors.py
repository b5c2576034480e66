"""Every file a command writes: a target that cannot be written (a read-only folder, a folder
under a regular file, a target that is a folder) is one line on stderr naming it, before the
long work; a full disk met while writing (a simulated ``ENOSPC``) is one line naming the file.
Commands: ``prepare`` (the store folder, ``--stats``), ``eval`` (``--out``, ``--scores``),
``explain`` (``--out``)."""
import builtins
import errno
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

from gnn_audio.cli import main
from gnn_audio.data.synthetic.signals import mixture, write_wav

VOCAB = [("Bark", "/m/05tny_"), ("Music", "/m/04rlf")]
AS_ROOT = os.geteuid() == 0  # root writes into read-only folders: those cases are skipped
ENOSPC = "No space left on device"


def _fsd50k(root: Path) -> Path:
    """An FSD50K-layout folder: 2 train clips, 1 val, 1 eval, 0.3 s each."""
    gt = root / "FSD50K.ground_truth"
    dev, ev = root / "FSD50K.dev_audio", root / "FSD50K.eval_audio"
    for d in (gt, dev, ev):
        d.mkdir(parents=True)
    (gt / "vocabulary.csv").write_text("".join(f"{i},{n},{m}\n" for i, (n, m) in enumerate(VOCAB)))
    rows = [("101", 0, "train"), ("102", 1, "train"), ("103", 0, "val")]
    (gt / "dev.csv").write_text("fname,labels,mids,split\n" + "".join(
        f'{f},"{VOCAB[c][0]}","{VOCAB[c][1]}",{s}\n' for f, c, s in rows))
    (gt / "eval.csv").write_text(f'fname,labels,mids\n201,"{VOCAB[1][0]}","{VOCAB[1][1]}"\n')
    for k, (folder, fname) in enumerate([(dev, "101"), (dev, "102"), (dev, "103"), (ev, "201")]):
        write_wav(folder / f"{fname}.wav", mixture(0.3, 16000, {"tone": {}}, seed=k), 16000)
    return root


def _one_line(capsys, *names: str) -> str:
    """The one line on stderr: it names ``names`` and is no traceback."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(str(n) in err for n in names), err
    return err


def _refused_targets(tmp_path: Path, name: str):
    """``(target, what it is)``: paths that cannot be written, as root too."""
    regular = tmp_path / "a_file"
    regular.write_text("x")
    folder = tmp_path / "folders" / name
    folder.mkdir(parents=True)
    return [(regular / name, "under a regular file"), (folder, "a folder")]


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o500)
    yield folder
    folder.chmod(0o700)


class _FullDisk:
    """A file open for writing whose every write fails as on a full disk."""

    def __init__(self, f) -> None:
        self._f = f

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, ENOSPC)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        self._f.close()
        return False

    def __getattr__(self, name):
        return getattr(self._f, name)


def full_disk(monkeypatch, inside: Path, name: str = "") -> None:
    """From now on writes to files under ``inside`` (whose name holds ``name``) fail with
    ``ENOSPC``, without a file name, as ``write(2)`` reports it."""
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        path = os.path.abspath(os.fspath(file)) if isinstance(file, (str, os.PathLike)) else ""
        if any(c in mode for c in "wax+") and path.startswith(str(inside)) and \
                name in os.path.basename(path):
            return _FullDisk(f)
        return f

    monkeypatch.setattr(builtins, "open", fake_open)


def _no_work(monkeypatch, module: str, name: str) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"{name} ran: the target should have been refused first")
    monkeypatch.setattr(importlib.import_module(module), name, refuse)


# --------------------------------------------------------------------------------------------
# prepare


def test_prepare_refuses_a_store_folder_that_cannot_be_written(tmp_path, monkeypatch, capsys):
    data = _fsd50k(tmp_path / "FSD50K")
    _no_work(monkeypatch, "gnn_audio.train.data", "prepare_split")
    for target, _ in _refused_targets(tmp_path, "stores"):
        if target.is_dir():
            target = tmp_path / "a_file"  # prepare writes into --store-dir: a file is refused
        before = sorted(p.name for p in tmp_path.iterdir())
        assert main(["prepare", "--data-dir", str(data), "--store-dir", str(target),
                     "--quiet"]) == 1
        err = _one_line(capsys, target)
        assert err.startswith("gnn-audio prepare: ")
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made
    assert not (data / "gnn_audio_stores").exists()


def test_prepare_store_folder_check_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    """A folder that can be written is made for the check and removed: a data set that is
    then found missing leaves no empty store folders."""
    out = tmp_path / "new" / "stores"
    assert main(["prepare", "--data-dir", str(tmp_path / "missing"), "--store-dir", str(out),
                 "--quiet"]) == 1
    _one_line(capsys, tmp_path / "missing", "no such directory")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only folders")
def test_prepare_refuses_a_read_only_store_folder(tmp_path, read_only, monkeypatch, capsys):
    data = _fsd50k(tmp_path / "FSD50K")
    _no_work(monkeypatch, "gnn_audio.train.data", "prepare_split")
    for out in (read_only, read_only / "stores"):
        assert main(["prepare", "--data-dir", str(data), "--store-dir", str(out),
                     "--quiet"]) == 1
        _one_line(capsys, out)
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize("disk", ["simulated", "tmpfs"])
def test_prepare_full_disk_while_a_store_is_written(tmp_path, monkeypatch, capsys, small_tmpfs,
                                                    disk):
    """A simulated ENOSPC at the writes, and a real 8 KiB disk (a tmpfs; the two 0.3-s clips
    need 19 KB)."""
    data = _fsd50k(tmp_path / "FSD50K")
    if disk == "simulated":
        out = tmp_path / "stores"
        full_disk(monkeypatch, out)
    else:
        out = small_tmpfs(8 * 1024) / "stores"
    assert main(["prepare", "--data-dir", str(data), "--store-dir", str(out), "--splits",
                 "train", "--quiet"]) == 1
    err = _one_line(capsys, out / "train_16000", ENOSPC)
    assert err.startswith("gnn-audio prepare: ")
    assert not (out / "train_16000" / "index.npz").exists()


def test_prepare_full_disk_while_the_stats_are_written(tmp_path, monkeypatch, capsys):
    data = _fsd50k(tmp_path / "FSD50K")
    out = tmp_path / "stores"
    full_disk(monkeypatch, out, name="norm_stats")
    assert main(["prepare", "--data-dir", str(data), "--store-dir", str(out), "--splits",
                 "train", "--stats", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "train: 2 clips" in captured.out  # the store itself was written
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert "norm_stats.json" in captured.err and ENOSPC in captured.err
    assert not (out / "norm_stats.json").exists()


# --------------------------------------------------------------------------------------------
# eval


def _eval_args(tmp_path: Path, *extra: str):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"never read: the output is refused first")
    return ["eval", "--checkpoint", str(ckpt), "--data-dir", str(tmp_path), "--quiet", *extra]


@pytest.mark.parametrize("flag", ["--out", "--scores"])
def test_eval_refuses_outputs_that_cannot_be_written(tmp_path, monkeypatch, capsys, flag):
    _no_work(monkeypatch, "gnn_audio.train.evaluate", "evaluate_checkpoint")
    name = "result.json" if flag == "--out" else "scores.npz"
    cases = _refused_targets(tmp_path, name) + [(tmp_path / "missing" / name, "missing")]
    for target, _ in cases:
        assert main(_eval_args(tmp_path, flag, str(target))) == 1
        err = _one_line(capsys, target)
        assert err.startswith("gnn-audio eval: ")
    assert not (tmp_path / "missing").exists()  # a mistyped folder is not made


def test_eval_refuses_a_scores_file_of_another_kind_as_a_usage_error(tmp_path, monkeypatch,
                                                                    capsys):
    _no_work(monkeypatch, "gnn_audio.train.evaluate", "evaluate_checkpoint")
    assert main(_eval_args(tmp_path, "--scores", str(tmp_path / "scores.txt"))) == 2
    _one_line(capsys, "scores.txt", ".npz or .json")


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only folders")
def test_eval_refuses_a_read_only_folder(tmp_path, read_only, monkeypatch, capsys):
    _no_work(monkeypatch, "gnn_audio.train.evaluate", "evaluate_checkpoint")
    for flag, name in (("--out", "r.json"), ("--scores", "s.npz")):
        assert main(_eval_args(tmp_path, flag, str(read_only / name))) == 1
        _one_line(capsys, read_only / name)


def _fake_evaluation(monkeypatch):
    """``evaluate_checkpoint`` returns a real result of 3 clips at once (what is tested is
    the writing of it)."""
    from gnn_audio.train.evaluate import CheckpointEvaluation, Predictions

    targets = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    preds = Predictions(["a", "b", "c"], targets,
                        {"crop": np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.7]], np.float32)})
    monkeypatch.setattr("gnn_audio.train.evaluate.evaluate_checkpoint",
                        lambda checkpoint, *a, **k: CheckpointEvaluation(str(checkpoint), "eval",
                                                                         preds))


@pytest.mark.parametrize("flag,name", [("--out", "result.json"), ("--scores", "scores.npz"),
                                       ("--scores", "scores.json")])
def test_eval_full_disk_while_writing(tmp_path, monkeypatch, capsys, flag, name):
    _fake_evaluation(monkeypatch)
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    target = out_dir / name
    assert main(_eval_args(tmp_path, flag, str(target))) == 0  # as it is without a full disk
    assert target.exists() and capsys.readouterr().err == ""
    target.unlink()
    full_disk(monkeypatch, out_dir)
    assert main(_eval_args(tmp_path, flag, str(target))) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("crop ")  # the metrics were printed before the write
    err = captured.err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("gnn-audio eval: ") and str(target) in err and ENOSPC in err
    assert list(out_dir.iterdir()) == []  # no partial file, no temporary file


# --------------------------------------------------------------------------------------------
# explain


def _explain_args(tmp_path: Path, out: Path):
    (tmp_path / "ck.pt").write_bytes(b"never read: the output is refused first")
    write_wav(tmp_path / "clip.wav", mixture(0.3, 16000, {"tone": {}}, seed=1), 16000)
    return ["explain", str(tmp_path / "clip.wav"), "-c", str(tmp_path / "ck.pt"), "--label",
            "Bark", "--out", str(out)]


def test_explain_refuses_a_picture_that_cannot_be_written(tmp_path, monkeypatch, capsys):
    _no_work(monkeypatch, "gnn_audio.viz.explain", "explain_file")
    cases = _refused_targets(tmp_path, "x.png") + [(tmp_path / "missing" / "x.png", "missing")]
    for target, _ in cases:
        assert main(_explain_args(tmp_path, target)) == 1
        err = _one_line(capsys, target)
        assert err.startswith("gnn-audio explain: ")


@pytest.mark.skipif(AS_ROOT, reason="root writes into read-only folders")
def test_explain_refuses_a_read_only_folder(tmp_path, read_only, monkeypatch, capsys):
    _no_work(monkeypatch, "gnn_audio.viz.explain", "explain_file")
    assert main(_explain_args(tmp_path, read_only / "x.png")) == 1
    _one_line(capsys, read_only / "x.png")


def test_explain_full_disk_while_the_picture_is_written(tmp_path, monkeypatch, capsys):
    """The picture is written as :func:`gnn_audio.viz.figure.save_figure` writes it."""
    from gnn_audio.viz.figure import new_figure, save_figure

    def fake_explain(checkpoint, audio, label, out, **kwargs):
        fig = new_figure((2, 1))
        fig.add_subplot().plot([0, 1])
        return save_figure(fig, out)

    monkeypatch.setattr(importlib.import_module("gnn_audio.viz.explain"), "explain_file",
                        fake_explain)
    out_dir = tmp_path / "pictures"
    out_dir.mkdir()
    target = out_dir / "x.png"
    assert main(_explain_args(tmp_path, target)) == 0 and target.exists()
    capsys.readouterr()
    target.unlink()
    full_disk(monkeypatch, out_dir)
    assert main(_explain_args(tmp_path, target)) == 1
    _one_line(capsys, target, ENOSPC)
    assert list(out_dir.iterdir()) == []


@pytest.mark.skipif(not AS_ROOT or not hasattr(os, "fork"), reason="needs root to drop to nobody")
def test_read_only_folders_as_another_user():
    """As root (whom permissions do not stop) the checks still see a read-only folder: run
    them in a child process that is the user ``nobody``."""
    import shutil
    import tempfile

    from gnn_audio.cli.common import check_writable, check_writable_dir

    base = tempfile.mkdtemp(prefix="gnn_audio_ro_")
    try:
        os.chmod(base, 0o755)
        read_only = os.path.join(base, "ro")
        os.mkdir(read_only, 0o555)
        os.chmod(read_only, 0o555)
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            ok = False
            try:
                os.setgid(65534)
                os.setuid(65534)
                file_msg = check_writable(os.path.join(read_only, "r.json"), "the metrics")
                dir_msg = check_writable_dir(os.path.join(read_only, "stores"), "the stores")
                ok = (file_msg is not None and "Permission denied" in file_msg and
                      dir_msg is not None and "Permission denied" in dir_msg and
                      # root's own folder is no more writable for nobody
                      check_writable(os.path.join(base, "x.json")) is not None)
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.listdir(read_only) == []
    finally:
        os.chmod(os.path.join(base, "ro"), 0o755)
        shutil.rmtree(base)
