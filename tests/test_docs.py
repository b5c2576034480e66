"""Every Python code block of the README and of docs/*.md runs as written.

The blocks of one file run in order in one namespace (a later block may use what an earlier
one defined), in a working folder that holds the files the docs name: ``FSD50K/`` (a generated
FSD50K-layout data set), ``pvig_s_82.1.pth.tar`` (a Pyramid ViG-S ImageNet checkpoint's key
layout and shapes, random values), ``glove.6B.300d.txt`` (a few GloVe-format vectors),
``atgnn_fsd50k.ckpt`` (a checkpoint of the ATGNN authors' code: their Lightning layout,
random values), ``Cnn10_mAP=0.380.pth`` (PANNs' CNN10 layout, random values), ``dog.wav``
and ``runs/example-docs/best.pt``, the stand-in for the checkpoint ``make train``
writes (``runs/example-YYYYmmdd-HHMMSS/best.pt``, which the tagging examples use): a *trained*
model of the same 16 generated classes, ATGNN-pyr-t at a tiny width on 64 frames x 32 mel
bins, one epoch (29 steps) of the ``example`` recipe on 340 generated clips, trained here in
seconds.

A block that tags audio (``Tagger``, ``.tag(``, ...) must print its scores, and they must not
be all about 1.0 (or 0.0) or all equal: what an untrained model prints (a fresh ATGNN's logits
in eval mode are about 1e5 in magnitude, so every score is 1.0 or 0.0).
"""
import glob
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gnn_audio.data.features import FbankConfig
from gnn_audio.data.readers import read_fsd50k
from gnn_audio.data.readers.fsd50k import FSD50K_SPLITS
from gnn_audio.data.synthetic.fsd50k import make_fsd50k_like
from gnn_audio.data.synthetic.signals import noise_burst, write_wav
from gnn_audio.inference import Tagger
from gnn_audio.train import DataPaths, Trainer, get_recipe
from gnn_audio.zoo import create_model

from .script_loader import load_script
from .models.test_atgnn_reference_weights import lightning_file
from .models.test_cnn10_weights import _panns_layout, _trained_cnn10
from .models.test_vig_weights import vig_imagenet_state_dict

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

#: the stand-in for ``make train``'s run directory, inside the docs folder
STAND_IN_RUN = "runs/example-docs"
#: its model: ATGNN-pyr-t at a tiny width on 64 frames x 32 mel bins
TINY_KWARGS = {"channels": [8, 16, 24, 32], "drop_path_rate": 0.0}
TINY_FBANK = dict(target_length=64, num_mel_bins=32)

#: a block that tags audio (and so must print scores that an untrained model would not)
TAGGING = re.compile(r"\bTagger\(|\bload_tagging_model\(|\.tag\(|\.tag_files\(|\.predict\(")
#: a printed number with a decimal point (scores print as Python floats: 0.9513, 1.0, 3e-05)
NUMBER = re.compile(r"(?<![\w.])\d+\.\d*(?:[eE][-+]?\d+)?(?![\w.])|(?<![\w.])\d+[eE]-\d+")


def python_blocks(path: Path):
    """``(first line number, code)`` of each fenced ``python`` block."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def printed_scores(text: str) -> list:
    """The numbers in ``text`` that can be scores (floats in [0, 1])."""
    return [v for v in map(float, NUMBER.findall(text)) if 0.0 <= v <= 1.0]


def scores_problem(scores: list):
    """Why ``scores`` look like an untrained model's (``None`` if they do not)."""
    if len(scores) < 2:
        return f"prints {len(scores)} score(s); a tagging example prints its scores"
    if all(min(s, 1.0 - s) < 1e-3 for s in scores):
        return f"prints scores that are all about 1.0 or 0.0 ({scores[:8]})"
    if len(set(scores)) == 1:
        return f"prints scores that are all equal ({scores[:8]})"
    return None


def train_stand_in(data_dir: Path, run_dir: Path) -> None:
    """A trained checkpoint of the generated data set's 16 classes in seconds: the ``example``
    recipe (normalisation from the training split, balanced sampling) on a tiny model, one
    epoch of 29 steps, enough for batch-norm's running statistics to follow the weights."""
    make_fsd50k_like(data_dir, num_clips=340, median_duration=1.5, max_duration=3.0,
                     sample_rate=16000)
    recipe = get_recipe("example")
    recipe = recipe.replace(model_kwargs=TINY_KWARGS,
                            fbank=recipe.data.fbank.replace(**TINY_FBANK),
                            epochs=1, batch_size=8, lr=3e-4, warmup_steps=10,
                            lr_decay_start=None, num_workers=0, eval_batch_size=32)
    Trainer(recipe, DataPaths(data_dir=str(data_dir)), run_dir, device="cpu",
            progress=False).fit()


def test_the_docs_have_code_blocks():
    counts = {p.name: len(python_blocks(p)) for p in DOCS}
    assert counts["README.md"] >= 5 and counts["training.md"] >= 1, counts
    tagging = {p.name for p in DOCS for _, code in python_blocks(p) if TAGGING.search(code)}
    assert {"README.md", "getting_started.md"} <= tagging, tagging


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    make_fsd50k_like(folder / "FSD50K", num_clips=40, max_duration=6.0, sample_rate=16000)
    torch.save(vig_imagenet_state_dict([80, 160, 400, 640], [2, 2, 6, 2]),
               folder / "pvig_s_82.1.pth.tar")
    # a checkpoint of the ATGNN authors' code: their Lightning layout, random values
    torch.save(lightning_file(create_model("atgnn_pyr_s"), frames=1024, mel=128),
               folder / "atgnn_fsd50k.ckpt")
    torch.save(_panns_layout(_trained_cnn10()), folder / "Cnn10_mAP=0.380.pth")  # PANNs layout
    rng = np.random.default_rng(0)
    words = ["speech", "music", "dog", "cat", "bark", "guitar", "vehicle", "water"]
    (folder / "glove.6B.300d.txt").write_text("".join(
        w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=300)) + "\n" for w in words))
    write_wav(folder / "dog.wav", noise_burst(2.0, 22050, seed=1), 22050)
    train_stand_in(tmp_path_factory.mktemp("stand_in_data"), folder / STAND_IN_RUN)
    return folder


@pytest.mark.parametrize("doc", [p for p in DOCS if python_blocks(p)],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_blocks_run(doc, docs_folder, monkeypatch, capsys):
    monkeypatch.chdir(docs_folder)
    namespace = {"__name__": "__docs__"}
    for line, code in python_blocks(doc):
        where = f"{doc.relative_to(ROOT)}:{line}"
        capsys.readouterr()
        try:
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 -- our own docs
        except Exception as err:  # noqa: BLE001 -- name the block
            pytest.fail(f"the code block at {where} fails: {type(err).__name__}: {err}")
        out = capsys.readouterr().out
        if TAGGING.search(code):
            problem = scores_problem(printed_scores(out))
            assert problem is None, (f"the tagging example at {where} {problem}: an untrained "
                                     f"model? It printed:\n{out}")


def test_the_score_check_catches_an_untrained_model(docs_folder):
    """The check above fails for what an untrained model prints (the stand-in's model, with
    random weights) and passes for the trained stand-in."""
    untrained = create_model("atgnn_pyr_t", num_classes=16, input_size=(64, 32),
                             fbank=FbankConfig(**TINY_FBANK), **TINY_KWARGS)
    trained = docs_folder / STAND_IN_RUN / "best.pt"
    for model, flagged in ((untrained, True), (trained, False)):
        result = Tagger(model).tag(docs_folder / "dog.wav", top_k=5)
        printed = f"{result.tags}\n{result.top(2)}"
        assert (scores_problem(printed_scores(printed)) is not None) == flagged, printed


def test_printed_scores_are_read():
    assert printed_scores("[('Glide', 0.95), ('Hiss', 1.0), ('Rumble', 3.1e-05)] (5, 16)") == [
        0.95, 1.0, 3.1e-05]
    assert scores_problem([1.0, 1.0, 0.99995]) and scores_problem([1.0, 1.0, 0.0])
    assert scores_problem([0.5, 0.5]) and scores_problem([0.7])
    assert scores_problem([0.99, 1.0]) is None and scores_problem([1.0, 0.0, 0.2]) is None


def documented_fsd50k_paths() -> list:
    """The paths of the FSD50K layout written out in docs/data.md (``FSD50K/...`` lines of
    its text blocks; ``<fname>`` stands for a clip's name)."""
    text = (ROOT / "docs" / "data.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```text\n(.*?)^```", text, re.S | re.M)
    return [m for b in blocks for m in re.findall(r"^(FSD50K/\S+)", b, re.M)]


def test_the_documented_fsd50k_layout_is_what_the_reader_reads(docs_folder, tmp_path):
    """Every path of the documented layout exists in the generated data set, and a folder
    holding only those files reads as the whole data set does, split by split."""
    paths = documented_fsd50k_paths()
    assert len(paths) == 5, paths
    copy = tmp_path / "copy"
    for pattern in paths:
        found = glob.glob(str(docs_folder / pattern.replace("<fname>", "*")))
        assert found, f"docs/data.md names {pattern}, which the generated data set lacks"
        for name in found:
            target = copy / Path(name).relative_to(docs_folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(name, target)
    for split in FSD50K_SPLITS:
        want = [c.clip_id for c in read_fsd50k(docs_folder / "FSD50K", split).clips]
        assert want and [c.clip_id for c in read_fsd50k(copy / "FSD50K", split).clips] == want


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
