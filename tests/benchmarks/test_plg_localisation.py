"""benchmarks/plg_localisation.py: the event times it regenerates belong to the files (and a
changed file is caught), and the measurement runs end to end on a tiny model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from gnn_audio.data.synthetic import make_fsd50k_like
from gnn_audio.zoo import save_checkpoint

from ..script_loader import load_benchmark
from ..viz.conftest import FBANK, tiny_atgnn

plg_localisation = load_benchmark("plg_localisation")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """8 short clips over 5 classes (one family: a parent and 4 children)."""
    return make_fsd50k_like(tmp_path_factory.mktemp("gen") / "data", num_clips=8,
                            num_classes=5, median_duration=1.0, max_duration=2.0,
                            split_fractions=(0.5, 0.0, 0.5))


def test_event_times_belong_to_the_files(data_dir):
    gen = plg_localisation.data_set_generator(data_dir)
    clips = plg_localisation.generated_clips(data_dir, "eval")
    assert len(clips) == 4
    for clip in clips:
        assert clip.duration == pytest.approx(sf.info(clip.path).duration)
        assert set(clip.spans) == set(clip.labels)  # every label has events, no other
        for c, spans in clip.spans.items():
            assert spans == sorted(spans)
            assert all(0 <= a < b <= clip.duration for a, b in spans)
            for parent in gen.ancestors(c):  # a parent is present where its children are
                assert all(any(pa <= a and b <= pb for pa, pb in clip.spans[parent])
                           for a, b in spans)
        # the events are where the audio is: every span is louder than the clip's quietest
        # stretch of the same length
        x, sr = sf.read(clip.path)
        a, b = clip.spans[clip.labels[0]][0]
        seg = x[int(a * sr):int(b * sr)]
        assert np.sqrt(np.mean(seg ** 2)) > 0


def test_a_changed_file_is_caught(data_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    clip = plg_localisation.generated_clips(copy, "train", max_clips=1)[0]
    x, sr = sf.read(clip.path)
    sf.write(clip.path, x[::-1], sr, subtype="PCM_16")
    with pytest.raises(ValueError, match="regenerated audio differs from the file"):
        plg_localisation.generated_clips(copy, "train", max_clips=1)
    with pytest.raises(ValueError, match="no synthetic_fsd50k.json"):
        plg_localisation.generated_clips(tmp_path, "eval")


def test_measurement_runs_end_to_end(data_dir, tmp_path, capsys):
    gen = plg_localisation.data_set_generator(data_dir)
    model = tiny_atgnn(label_names=[c.name for c in gen.classes])
    ck = tmp_path / "model.pt"
    save_checkpoint(model, ck)
    plg_localisation.main(["--checkpoint", str(ck), "--data-dir", str(data_dir),
                           "--batch-size", "3", "--json", str(tmp_path / "out.json")])
    out = capsys.readouterr().out
    assert "4 eval clips" in out and "| stage 1 block 1 |" in out and "per stage" in out
    result = json.loads((tmp_path / "out.json").read_text())["blocks"]
    assert list(result) == ["stage 1 block 1", "stage 2 block 1", "stage 3 block 1",
                            "stage 3 block 2", "stage 3 block 3", "stage 4 block 1", "_windows"]
    row = result["stage 1 block 1"]["all windows"]
    assert row["pairs"] > 0
    for f in ("inside", "chance_grid", "chance_time", "above_chance"):
        assert 0.0 <= row[f] <= 1.0
    assert 0.0 < row["chance_grid"] < 1.0
    assert 0.0 <= result["stage 4 block 1"]["neighbours in padding"] <= 1.0
    other = tmp_path / "other.pt"
    save_checkpoint(tiny_atgnn(), other, extra={"fbank": FBANK.to_dict()})
    with pytest.raises(SystemExit, match="are not the data set's vocabulary"):
        plg_localisation.main(["--checkpoint", str(other), "--data-dir", str(data_dir)])
