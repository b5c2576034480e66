import subprocess
import sys

import torch

from gnn_audio.cli import main
from gnn_audio.inference import AudioTagger
from gnn_audio.zoo import atgnn_pyr_t, save_checkpoint


def test_models_and_summary(capsys):
    assert main(["models", "atgnn_pyr_*"]) == 0
    out = capsys.readouterr().out
    assert "atgnn_pyr_s " in out and "cnn10" not in out
    assert main(["summary", "atgnn_pyr_t_nomlg"]) == 0
    table = capsys.readouterr().out
    assert "| atgnn_pyr_t_nomlg | 10.137 M |" in table


def test_tag_files_with_a_checkpoint(tmp_path, audio_files, capsys):
    torch.manual_seed(0)
    model = atgnn_pyr_t(num_classes=4, label_names=["a", "b", "c", "d"])
    ckpt = tmp_path / "t.pt"
    save_checkpoint(model, ckpt)
    files = [str(f.path) for f in audio_files[:3]]
    assert main(["tag", *files, "--model", "atgnn_pyr_t", "--checkpoint", str(ckpt),
                 "--num-classes", "4", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count(".wav:") == 3 and out.count("\n    ") == 6
    tagger = AudioTagger("atgnn_pyr_t", ckpt, num_classes=4)
    probs = tagger.predict(files)
    assert probs.shape == (3, 4) and bool(((probs >= 0) & (probs <= 1)).all())
    assert tagger.features(files[0]).shape == (1024, 128)
    top = tagger.top_tags(files, k=2)
    name, prob = top[0][0]
    assert prob == float(probs[0].max()) and probs[0, "abcd".index(name)] == probs[0].max()


def test_demo_runs_end_to_end(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gnn_audio.cli", "demo", "--steps", "4",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "held-out mAP" in proc.stdout
    assert len(list((tmp_path / "train").glob("*.wav"))) == 48
