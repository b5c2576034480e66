"""Every Python code block of the README and of docs/*.md runs as written.

The blocks of one file run in order in one namespace (a later block may use what an earlier
one defined), in a working folder that holds the files the docs name: ``FSD50K/`` (a generated
FSD50K-layout data set), ``pvig_s_82.1.pth.tar`` (a Pyramid ViG-S ImageNet checkpoint's key
layout and shapes, random values), ``glove.6B.300d.txt`` (a few GloVe-format vectors) and
``dog.wav``.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like
from gnn_audio.data.synthetic.signals import noise_burst, write_wav

from .script_loader import load_script
from .models.test_vig_weights import vig_imagenet_state_dict

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path):
    """``(first line number, code)`` of each fenced ``python`` block."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_docs_have_code_blocks():
    counts = {p.name: len(python_blocks(p)) for p in DOCS}
    assert counts["README.md"] >= 5 and counts["training.md"] >= 1, counts


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    make_fsd50k_like(folder / "FSD50K", num_clips=40, max_duration=6.0, sample_rate=16000)
    torch.save(vig_imagenet_state_dict([80, 160, 400, 640], [2, 2, 6, 2]),
               folder / "pvig_s_82.1.pth.tar")
    rng = np.random.default_rng(0)
    words = ["speech", "music", "dog", "cat", "bark", "guitar", "vehicle", "water"]
    (folder / "glove.6B.300d.txt").write_text("".join(
        w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=300)) + "\n" for w in words))
    write_wav(folder / "dog.wav", noise_burst(2.0, 22050, seed=1), 22050)
    return folder


@pytest.mark.parametrize("doc", [p for p in DOCS if python_blocks(p)],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_blocks_run(doc, docs_folder, monkeypatch):
    monkeypatch.chdir(docs_folder)
    namespace = {"__name__": "__docs__"}
    for line, code in python_blocks(doc):
        where = f"{doc.relative_to(ROOT)}:{line}"
        try:
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 -- our own docs
        except Exception as err:  # noqa: BLE001 -- name the block
            pytest.fail(f"the code block at {where} fails: {type(err).__name__}: {err}")


def test_generated_tables_are_current():
    """The zoo tables are computed from the models (``scripts/update_docs.py``), not typed."""
    update_docs = load_script("update_docs")
    stale = []
    for path in update_docs.doc_files():
        text = path.read_text(encoding="utf-8")
        if update_docs.BLOCK.search(text) and update_docs.render(text, str(path)) != text:
            stale.append(path.name)
    assert not stale, f"run scripts/update_docs.py: stale tables in {stale}"
    assert "<!-- generated: atgnn zoo table" in (ROOT / "README.md").read_text()
