"""The generated FSD50K-format data set: exact layout and CSV format, label structure,
durations, determinism, atomic / resumable writing."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gnn_audio.data.synthetic import SyntheticFSD50KConfig, make_fsd50k_like, synthetic_classes
from gnn_audio.data.synthetic import fsd50k
from gnn_audio.data.synthetic.fsd50k import MANIFEST_NAME, _Generator

GT = "FSD50K.ground_truth"
SMALL = dict(num_clips=8, median_duration=0.8, max_duration=3.0)


@pytest.fixture(scope="module")
def data_set(tmp_path_factory) -> Path:
    return make_fsd50k_like(tmp_path_factory.mktemp("fsd50k_like"), num_clips=20, seed=3)


def _rows(path: Path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _vocabulary(root: Path):
    rows = _rows(root / GT / "vocabulary.csv")
    return {name: (int(i), mid) for i, name, mid in rows}, rows


def test_layout_and_vocabulary(data_set):
    names = sorted(p.name for p in data_set.iterdir() if not p.name.startswith("."))
    assert names == sorted([GT, "FSD50K.dev_audio", "FSD50K.eval_audio", MANIFEST_NAME])
    assert not list(data_set.glob(".*"))  # no in-progress marker or temp file left
    assert sorted(p.name for p in (data_set / GT).iterdir()) == ["dev.csv", "eval.csv",
                                                                "vocabulary.csv"]
    vocab, rows = _vocabulary(data_set)
    assert len(rows) == 16 and all(len(r) == 3 for r in rows)  # the default vocabulary size
    assert [int(r[0]) for r in rows] == list(range(16))  # no header, ordered by index
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9_]*", r[1]) for r in rows)
    assert all(re.fullmatch(r"/g/synth_\d{3}", r[2]) for r in rows)
    assert len({r[2] for r in rows}) == 16


def test_ground_truth_csv_format(data_set):
    vocab, _ = _vocabulary(data_set)
    dev_text = (data_set / GT / "dev.csv").read_text(encoding="utf-8")
    eval_text = (data_set / GT / "eval.csv").read_text(encoding="utf-8")
    assert dev_text.startswith("fname,labels,mids,split\n")
    assert eval_text.startswith("fname,labels,mids\n")
    assert "\r" not in dev_text + eval_text
    dev, ev = _rows(data_set / GT / "dev.csv")[1:], _rows(data_set / GT / "eval.csv")[1:]
    assert len(dev) + len(ev) == 20 and len(ev) == 4  # 70 / 10 / 20 %
    assert {r[3] for r in dev} == {"train", "val"}
    multi = 0
    for row, text in [(r, dev_text) for r in dev] + [(r, eval_text) for r in ev]:
        fname, labels, mids = row[:3]
        assert re.fullmatch(r"[1-9]\d*", fname)
        names, ids = labels.split(","), mids.split(",")
        assert [vocab[n][1] for n in names] == ids
        # QUOTE_MINIMAL: a list with a comma is one quoted field, a single label is bare
        if len(names) > 1:
            multi += 1
            assert f'{fname},"{labels}","{mids}"' in text
        else:
            assert f"\n{fname},{labels},{mids}" in text
    assert multi > 0
    assert len({r[0] for r in dev + ev}) == 20


def test_hierarchy_and_label_counts(data_set):
    vocab, _ = _vocabulary(data_set)
    manifest = json.loads((data_set / MANIFEST_NAME).read_text())
    parent = {c["name"]: c["parent"] for c in manifest["classes"]}
    index_name = {i: n for n, (i, _) in vocab.items()}
    rows = _rows(data_set / GT / "dev.csv")[1:] + _rows(data_set / GT / "eval.csv")[1:]
    for row in rows:
        labels = row[1].split(",")
        assert len(set(labels)) == len(labels)
        parents = set()
        for name in labels:
            if parent[name] is not None:  # a child: its parent is listed, after the leaf
                up = index_name[parent[name]]  # that comes first (leaf, then ancestors)
                assert up in labels and labels.index(up) > min(
                    labels.index(n) for n in labels if parent[n] == parent[name]), row
                parents.add(up)
        leaves = [n for n in labels if n not in parents]
        assert 1 <= len(leaves) <= 5, row


def test_audio_files(data_set):
    dev = _rows(data_set / GT / "dev.csv")[1:]
    ev = _rows(data_set / GT / "eval.csv")[1:]
    listed = {("FSD50K.dev_audio", f"{r[0]}.wav") for r in dev} | {
        ("FSD50K.eval_audio", f"{r[0]}.wav") for r in ev}
    on_disk = {(d, p.name) for d in ("FSD50K.dev_audio", "FSD50K.eval_audio")
               for p in (data_set / d).iterdir()}
    assert on_disk == listed  # no temp files left, nothing missing
    durations = []
    for folder, name in listed:
        info = sf.info(str(data_set / folder / name))
        assert (info.samplerate, info.channels, info.format, info.subtype) == (
            44100, 1, "WAV", "PCM_16")
        assert 0.3 - 1e-6 <= info.duration <= 30.0 + 1e-6
        durations.append(info.duration)
        x, _ = sf.read(str(data_set / folder / name), dtype="float32")
        assert np.isfinite(x).all() and 0.0 < np.abs(x).max() < 1.0
    assert len(set(np.round(durations, 2))) > 10  # varied lengths


def test_same_seed_same_bytes(tmp_path):
    a = make_fsd50k_like(tmp_path / "a", seed=5, **SMALL)
    b = make_fsd50k_like(tmp_path / "b", seed=5, **SMALL)
    c = make_fsd50k_like(tmp_path / "c", seed=6, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 8 + 4
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / GT / "vocabulary.csv").read_bytes() == (c / GT / "vocabulary.csv").read_bytes()
    assert (a / GT / "dev.csv").read_bytes() != (c / GT / "dev.csv").read_bytes()


def test_reuse_and_interrupted_run(tmp_path, monkeypatch):
    reference = make_fsd50k_like(tmp_path / "ref", seed=1, **SMALL)
    root = tmp_path / "d"
    calls = []
    write_wav = fsd50k._write_wav

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        write_wav(*args)

    monkeypatch.setattr(fsd50k, "_write_wav", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_fsd50k_like(root, seed=1, **SMALL)
    monkeypatch.undo()
    # half a data set never looks complete: no ground truth, no manifest, no temp wav
    assert not (root / MANIFEST_NAME).exists() and not (root / GT / "dev.csv").exists()
    assert len(list(root.rglob("*.wav"))) == 2 and not list(root.rglob("*.tmp"))
    make_fsd50k_like(root, seed=1, **SMALL)  # regenerates
    for f in reference.rglob("*"):
        if f.is_file():
            assert (root / f.relative_to(reference)).read_bytes() == f.read_bytes()
    dev_csv = root / GT / "dev.csv"
    stamp = dev_csv.stat().st_mtime_ns
    assert make_fsd50k_like(root, seed=1, **SMALL) == root
    assert dev_csv.stat().st_mtime_ns == stamp  # complete with the same config: reused
    # another config replaces the old files (no stale wavs left behind)
    make_fsd50k_like(root, seed=2, num_clips=5, median_duration=0.8, max_duration=3.0)
    assert len(list(root.rglob("*.wav"))) == 5


def test_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / GT).mkdir()
    (tmp_path / GT / "dev.csv").write_text("fname,labels,mids,split\n")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_fsd50k_like(tmp_path, **SMALL)
    assert (tmp_path / GT / "dev.csv").read_text() == "fname,labels,mids,split\n"
    make_fsd50k_like(tmp_path, overwrite=True, **SMALL)
    assert len(_rows(tmp_path / GT / "dev.csv")) > 1


def test_label_structure_statistics():
    """Over many draws: parents alone occur, partners co-occur far above chance, 1-5 leaf-level
    labels with single labels most common."""
    gen = _Generator(SyntheticFSD50KConfig())
    rng = np.random.default_rng(0)
    draws = [gen.draw_units(rng) for _ in range(3000)]
    counts = np.bincount([len(d) for d in draws])
    assert counts[0] == 0 and len(counts) <= 6 and counts.argmax() == 1
    classes = gen.classes
    assert any(len(d) == 1 and classes[d[0][0]].parent is None for d in draws)
    present = np.zeros((len(draws), len(classes)), dtype=bool)
    for i, d in enumerate(draws):
        present[i, [u for u, _ in d]] = True
    a = next(c for c in classes if c.partner is not None)
    p_a, p_b = present[:, a.index].mean(), present[:, a.partner].mean()
    assert present[:, a.index].sum() > 20
    assert (present[:, a.index] & present[:, a.partner]).mean() > 3 * p_a * p_b


@pytest.mark.parametrize("num_classes", [2, 3, 7, 24, 40])
def test_vocabulary_sizes(num_classes):
    classes = synthetic_classes(num_classes)
    assert len(classes) == num_classes
    assert [c.index for c in classes] == list(range(num_classes))
    assert [c.name for c in classes] == sorted(c.name for c in classes)
    assert len({c.name for c in classes}) == num_classes
    for c in classes:
        if c.parent is not None:
            assert classes[c.parent].parent is None and classes[c.parent].family == c.family
        else:
            assert any(k.parent == c.index for k in classes)  # every parent has a child
        if c.partner is not None:
            assert classes[c.partner].partner == c.index
            assert classes[c.partner].family != c.family


@pytest.mark.parametrize("bad, match", [
    (dict(num_classes=1), "num_classes"),
    (dict(num_clips=0), "num_clips"),
    (dict(split_fractions=(0.5, 0.1, 0.1)), "split_fractions"),
    (dict(median_duration=40.0), "median_duration"),
    (dict(snr_db=(10.0, -5.0)), "snr_db"),
    (dict(cooccurrence=1.5), "cooccurrence"),
    (dict(jitter=-0.1), "jitter"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        SyntheticFSD50KConfig(**bad)
