"""gnn_audio.inference: tagging files and waveforms of any rate, channel count and length with a
checkpoint, in sliding windows equal to what training and ``gnn-audio eval`` compute."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

from gnn_audio.data.audio import AudioError
from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.dataset import TaggingDataset
from gnn_audio.data.features import FbankConfig
from gnn_audio.data.synthetic.signals import chirp, mixture, noise_burst, tone, write_wav
from gnn_audio.inference import TaggingConfig, TagResult, Tagger
from gnn_audio.labels import LabelSet
from gnn_audio.data.windows import Windowing
from gnn_audio.train.evaluate import EvalConfig, build_eval_dataset, predict
from gnn_audio.weights_io import save_weights_file
from gnn_audio.zoo import create_model, save_checkpoint

NAMES = ["Harmonic tone", "Chirp", "Noise bursts"]
FB = FbankConfig(num_mel_bins=32, target_length=64, norm_mean=-3.1, norm_std=3.7)
TINY = dict(channels=[8, 16, 24, 32], input_size=(64, 32), drop_path_rate=0.0)


def _tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("atgnn_pyr_t", num_classes=3, label_names=NAMES, fbank=FB, **TINY)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny ATGNN checkpoint with its own front-end, as the trainer writes best.pt."""
    path = tmp_path_factory.mktemp("ck") / "best.pt"
    save_checkpoint(_tiny_model(), path, extra={"epoch": 0})
    return path


@pytest.fixture(scope="module")
def tagger(checkpoint):
    return Tagger(checkpoint)


def _signal(kind: str, seconds: float, sr: int, seed: int) -> np.ndarray:
    if kind == "tone":
        return tone(seconds, sr, freq=440.0, harmonics=3, seed=seed)
    if kind == "chirp":
        return chirp(seconds, sr, f0=150.0, seed=seed)
    if kind == "noise":
        return noise_burst(seconds, sr, seed=seed)
    return mixture(seconds, sr, {"tone": {"freq": 660.0}, "noise": {}}, seed=seed)


#: (sample rate, channels, seconds, kind): 8-48 kHz, mono and stereo, 0.3 s to 30 s (a 5-min
#: file is tagged in tests/test_cli.py)
FILES = [(8000, 1, 0.3, "tone"), (16000, 2, 1.0, "chirp"), (22050, 1, 30.0, "mixture"),
         (44100, 2, 3.7, "noise"), (48000, 1, 12.0, "mixture"), (32000, 2, 0.64, "tone")]


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    root = tmp_path_factory.mktemp("wavs")
    out = []
    for i, (sr, ch, seconds, kind) in enumerate(FILES):
        x = np.stack([_signal(kind, seconds, sr, 10 * i + c) for c in range(ch)], axis=1)
        path = root / f"{kind}_{sr}_{ch}ch_{seconds:g}s.wav"
        write_wav(path, x if ch > 1 else x[:, 0], sr)
        out.append(path)
    return out


def test_a_checkpoint_carries_model_classes_and_front_end(tagger, checkpoint):
    assert tagger.label_names == NAMES
    assert tagger.fbank == FB and tagger.frames == 64
    assert tagger.window == pytest.approx(0.64) and tagger.hop == pytest.approx(0.32)
    assert tagger.checkpoint == str(checkpoint)
    assert str(checkpoint) in tagger.describe() and "3 classes" in tagger.describe()
    assert not tagger.model.training


def test_scores_equal_the_evaluation_of_training(tagger, wavs):
    """Every file (8-48 kHz, mono / stereo, 0.3 - 30 s): the windows, their count, times
    and scores are those ``gnn-audio eval`` computes from the whole decoded file (windows mode:
    max over windows; crop: the first window), with the checkpoint's label names."""
    results = list(tagger.tag_files(wavs, top_k=2))
    assert [r.source for r in results] == [str(p) for p in wavs]
    clips = ClipList("t", LabelSet("t", ("a", "b", "c"), tuple(NAMES)),
                     [Clip(str(i), str(p), (0,)) for i, p in enumerate(wavs)])
    ref = predict(tagger.model, build_eval_dataset(clips, FB),
                  EvalConfig(batch_size=16), frames=64)
    for i, (r, path) in enumerate(zip(results, wavs)):
        sr, ch, seconds, _ = FILES[i]
        assert r.ok and (r.sample_rate, r.channels) == (sr, ch)
        assert r.duration == pytest.approx(seconds, abs=1e-4)
        samples = int(np.ceil(seconds * 16000 - 1e-6))
        frames = 1 + (max(samples, 400) - 400) // 160
        assert len(r.window_scores) == len(Windowing.from_fraction(64, 0.5).starts(frames))
        assert r.window_times[0, 0] == 0 and r.window_times[-1, 1] == pytest.approx(
            seconds, abs=0.011)
        assert np.all(np.diff(r.window_times[:, 0]) > 0)
        # one window placement, one scorer, the same batches: the same numbers, bit for bit
        np.testing.assert_array_equal(r.scores, ref.scores["windows"][i])
        np.testing.assert_array_equal(r.window_scores[0], ref.scores["crop"][i])
        assert len(r.tags) == 2 and all(name in NAMES for name, _ in r.tags)
        assert r.tags[0][1] == pytest.approx(float(r.scores.max()))


def test_streamed_windows_equal_whole_file_features(tagger, tmp_path):
    """A 44.1 kHz stereo file read in small blocks gives the log-mel of the whole decoded,
    resampled file, window by window."""
    x = np.stack([_signal("mixture", 6.0, 44100, 1), _signal("chirp", 6.0, 44100, 2)], 1)
    path = tmp_path / "long.wav"
    write_wav(path, x, 44100)
    small = Tagger(tagger.model, window=0.5, hop=0.2)
    small.block_frames = 4093  # many blocks, none aligned to a frame
    small.whole_seconds = 0.0  # streamed, as a recording longer than ten minutes is
    whole = (TaggingDataset(ClipList("t", LabelSet("t", ("a",), ("a",)),
                                     [Clip("0", str(path), (0,))]),
                            FB.replace(target_length=None))[0][0])
    pad = (0.0 - FB.norm_mean) / FB.norm_std
    windows = list(small.windows(path))
    starts = Windowing.from_fraction(50, 20 / 50).starts(whole.size(0))
    assert [round(a * 100) for a, _, _ in windows] == starts
    diffs = []
    for (a, b, feats), start in zip(windows, starts):
        assert feats.shape == (64, 32)
        diffs.append((feats[:50] - whole[start:start + 50]).abs())
        assert torch.all(feats[50:] == pad)  # a shorter window is padded to the model's input
    # float32 rounding, relative to a frame's energy (KaldiFbank's own tolerance)
    diffs = torch.stack(diffs)
    assert diffs.max() < 5e-3 and diffs.mean() < 1e-4


def test_short_clip_is_padded_as_training_padded_it(tagger, tmp_path):
    path = tmp_path / "short.wav"
    write_wav(path, _signal("tone", 0.3, 22050, 0), 22050)
    train_item = TaggingDataset(ClipList("t", LabelSet("t", ("a",), ("a",)),
                                         [Clip("0", str(path), (0,))]), FB)[0][0]
    (a, b, feats), = list(tagger.windows(path))
    assert (a, b) == (0.0, pytest.approx(0.3))
    frames = 1 + (4800 - 400) // 160
    # the clip's frames up to float32 rounding (its mean is taken over its frames' samples,
    # KaldiFbank over all samples), the padding exactly
    torch.testing.assert_close(feats[:frames], train_item[:frames], atol=2e-3, rtol=0)
    assert torch.all(feats[frames:] == train_item[frames:])
    assert torch.all(feats[frames:] == torch.tensor((0.0 - FB.norm_mean) / FB.norm_std))
    # shorter than one 25-ms frame: one frame, padded
    (_, _, tiny), = list(tagger.windows(torch.ones(100) * 0.1, sample_rate=16000))
    assert tiny.shape == (64, 32) and torch.all(tiny[1:] == tiny[-1])


def test_pooling_and_window_settings(checkpoint, wavs):
    long = wavs[4]  # 12 s
    r_max = Tagger(checkpoint, pool="max").tag(long, top_k=None)
    r_mean = Tagger(checkpoint, pool="mean").tag(long, top_k=None)
    np.testing.assert_allclose(r_max.scores, r_max.window_scores.max(0))
    np.testing.assert_allclose(r_mean.scores, r_mean.window_scores.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(r_max.window_scores, r_mean.window_scores)
    assert len(r_max.tags) == 3 and r_max.pool == "max" and r_mean.pool == "mean"
    hop = Tagger(checkpoint, window=0.4, hop=0.4).tag(long)
    assert len(hop.window_scores) == len(Windowing.from_fraction(40, 1.0).starts(1198))
    np.testing.assert_allclose(np.diff(hop.window_times[:-1, 0]), 0.4)
    only = r_max.top(k=None, threshold=float(np.sort(r_max.scores)[1]))
    assert [s for _, s in only] == sorted(r_max.scores[r_max.scores >= only[-1][1]])[::-1]
    for bad in (dict(window=0.65), dict(window=0.2, hop=0.3), dict(pool="median"),
                dict(batch_size=0), dict(num_workers=-1), dict(window=-1.0),
                dict(window=float("nan"))):
        with pytest.raises(ValueError):
            Tagger(checkpoint, **bad)
    with pytest.raises(ValueError, match="CUDA is not available"):
        if torch.cuda.is_available():
            pytest.skip("CUDA is there")
        Tagger(checkpoint, device="cuda")
    with pytest.raises(ValueError, match="top_k"):
        Tagger(checkpoint).tag(long, top_k=0)
    assert TaggingConfig().pool == "max"


def test_waveform_input_any_rate_and_channels(tagger, tmp_path):
    x = np.stack([_signal("chirp", 2.0, 22050, 5), _signal("tone", 2.0, 22050, 6)])
    path = tmp_path / "w.wav"
    sf.write(str(path), x.T, 22050, subtype="FLOAT")
    from_file = tagger.tag(path, top_k=None)
    from_array = tagger.tag(x, sample_rate=22050, top_k=None)
    from_tensor = tagger.tag(torch.from_numpy(x), sample_rate=22050, top_k=None)
    np.testing.assert_allclose(from_array.window_scores, from_file.window_scores, atol=1e-5)
    np.testing.assert_array_equal(from_tensor.window_scores, from_array.window_scores)
    assert from_array.source == "<waveform>" and from_array.channels == 2
    mono = tagger.tag(x.mean(0), sample_rate=22050, top_k=None)
    np.testing.assert_allclose(mono.window_scores, from_array.window_scores, atol=1e-5)
    with pytest.raises(ValueError, match="sample_rate"):
        tagger.tag(x)
    with pytest.raises(ValueError, match="sample_rate is for waveforms"):
        tagger.tag(path, sample_rate=16000)
    with pytest.raises(ValueError, match="channels first"):
        tagger.tag(x.T, sample_rate=22050)
    bad = x.copy()
    bad[1, 22050] = np.nan
    with pytest.raises(AudioError, match=r"^<waveform>: NaN or infinite samples \(first at "
                                         r"1\.000 s\)$"):
        tagger.tag(bad, sample_rate=22050)


def _bad_files(root):
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("not audio\n" * 50)
    x = _signal("tone", 1.5, 16000, 0)
    x[20000:20005] = np.nan
    sf.write(str(root / "nan.wav"), x, 16000, subtype="FLOAT")
    return {"missing": root / "missing.wav", "empty": root / "empty.wav",
            "text": root / "text.wav", "nan": root / "nan.wav"}


@pytest.mark.parametrize("workers", [0, 2])
def test_one_bad_file_among_good_ones(checkpoint, wavs, tmp_path, workers):
    bad = _bad_files(tmp_path)
    paths = [wavs[0], bad["missing"], wavs[1], bad["empty"], bad["text"], bad["nan"], wavs[3]]
    results = list(Tagger(checkpoint, num_workers=workers).tag_files(paths))
    assert [r.source for r in results] == [str(p) for p in paths]
    assert [r.ok for r in results] == [True, False, True, False, False, False, True]
    reasons = {"missing": "no such file", "empty": "empty file (0 bytes)",
               "text": "not an audio file", "nan": "NaN or infinite samples (first at 1.250 s)"}
    for r, (key, reason) in zip([results[i] for i in (1, 3, 4, 5)], reasons.items()):
        assert r.error.startswith(f"{bad[key]}: ") and reason in r.error and "\n" not in r.error
        assert r.tags == [] and r.to_dict() == {"file": str(bad[key]), "error": r.error}
    alone = Tagger(checkpoint).tag(wavs[1])
    np.testing.assert_allclose(results[2].window_scores, alone.window_scores, atol=1e-6)
    with pytest.raises(AudioError, match="NaN"):
        Tagger(checkpoint).tag(bad["nan"])


def test_long_files_are_read_in_blocks(tagger, tmp_path, monkeypatch):
    """No read decodes more than one block, and the whole-file decoder is never used."""
    import gnn_audio.data.audio as audio
    import gnn_audio.inference as inference

    path = tmp_path / "half_minute.wav"
    write_wav(path, _signal("noise", 30.0, 16000, 3), 16000)
    reads = []
    real_read = sf.SoundFile.read

    def read(self, frames=-1, *args, **kwargs):
        reads.append(frames)
        return real_read(self, frames, *args, **kwargs)
    monkeypatch.setattr(sf.SoundFile, "read", read)
    monkeypatch.setattr(audio, "load_audio", None)
    monkeypatch.setattr(inference, "load_audio", None)
    small = Tagger(tagger.model, batch_size=4)
    small.block_frames = 8000
    small.whole_seconds = 20.0  # shorter than the file
    result = small.tag(path)
    assert len(reads) >= 30 * 16000 // 8000 and max(reads) == 8000 and -1 not in reads
    assert len(result.window_scores) == len(Windowing.from_fraction(64, 0.5).starts(2998))


def test_random_weights_are_refused(checkpoint):
    with pytest.raises(ValueError, match="zoo model name, not a checkpoint"):
        Tagger("atgnn_pyr_t")


def test_unusable_checkpoints_give_one_line_naming_the_file(tmp_path, checkpoint):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path / 'nope.pt'}: no such"):
        Tagger(tmp_path / "nope.pt")
    for path, reason in [(text, "not a gnn_audio checkpoint"), (tmp_path, "is a directory")]:
        with pytest.raises(ValueError) as err:
            Tagger(path)
        assert str(err.value).startswith(str(path)) and reason in str(err.value)
        assert "\n" not in str(err.value)
    emb = tmp_path / "fc1.pt"
    save_checkpoint(create_model("fc1", num_classes=3), emb)
    with pytest.raises(ValueError, match=f"^{emb}: holds a fc1 model, which reads AudioSet "
                                         "embeddings"):
        Tagger(emb)
    # weights of one architecture under another's name
    ck = torch.load(checkpoint, weights_only=True)
    ck["model_name"] = "atgnn_pyr_t_nomlg"
    other = tmp_path / "other.pt"
    save_weights_file(ck, other)  # as gnn_audio writes it: with its checksum
    with pytest.raises(ValueError) as err:
        Tagger(other)
    assert str(err.value).startswith(f"{other} does not fit atgnn_pyr_t_nomlg")


def test_tag_result_to_dict_is_json(tagger, wavs):
    import json

    r = tagger.tag(wavs[1], top_k=2, threshold=0.0)
    d = json.loads(json.dumps(r.to_dict(windows=True)))
    assert d["file"] == str(wavs[1]) and d["sample_rate"] == 16000 and d["channels"] == 2
    assert [t["label"] for t in d["tags"]] == [n for n, _ in r.tags]
    assert len(d["windows"]) == len(r.window_scores) and d["windows"][0]["start"] == 0.0
    assert isinstance(TagResult("x", tuple(NAMES), error="x: bad").to_dict()["error"], str)


RSS_SCRIPT = textwrap.dedent('''
    import resource, sys, torch
    from gnn_audio.data.features import FbankConfig
    from gnn_audio.inference import Tagger
    from gnn_audio.zoo import ModelBundle, get_model_config

    class MeanLinear(torch.nn.Module):
        """A cheap log-mel model: the windows' pipeline, not the network, is measured."""
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(128, 3)
            config = get_model_config("atgnn_pyr_t").replace(num_classes=3)
            self.bundle = ModelBundle("mean_linear", config.with_fbank(FbankConfig()), {}, {},
                                      label_names=("a", "b", "c"))
        def forward(self, x):
            return self.lin(x.mean(1))

    torch.set_num_threads(1)
    result = Tagger(MeanLinear(), batch_size=8).tag(sys.argv[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(len(result.window_scores), round(result.duration), round(peak, 1))
''')


@pytest.mark.slow
def test_a_one_hour_file_needs_no_more_memory_than_ten_seconds(tmp_path):
    """Peak resident memory (max RSS, each in its own process) of tagging a 1-hour 16 kHz file
    (115 MB of int16, 230 MB as float32) against a 10-s file: within 40 MiB. What the hour
    adds is about two copies of a batch (8 windows of 1024 x 128 float32 = 4 MiB each) and
    the decoder's blocks, whatever the length (measured: +10 MiB)."""
    rng = np.random.default_rng(0)
    files = {}
    for name, seconds in (("ten", 10), ("hour", 3600)):
        files[name] = tmp_path / f"{name}.wav"
        with sf.SoundFile(str(files[name]), "w", 16000, 1, "PCM_16") as f:
            for start in range(0, seconds, 60):
                n = min(60, seconds - start) * 16000
                f.write((0.3 * np.sin(np.arange(n) * 2 * np.pi * 440 / 16000)
                         + 0.05 * rng.standard_normal(n)).astype(np.float32))
    script = tmp_path / "rss.py"
    script.write_text(RSS_SCRIPT)
    peaks = {}
    for name, path in files.items():
        proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        windows, seconds, peak = proc.stdout.split()
        peaks[name] = float(peak)
        assert int(seconds) == (10 if name == "ten" else 3600)
    assert int(windows) == len(Windowing.from_fraction(1024, 0.5).starts(359998))  # the hour's windows
    print(f"max RSS: 10 s {peaks['ten']:.1f} MiB, 1 hour {peaks['hour']:.1f} MiB")
    assert peaks["hour"] - peaks["ten"] < 40, peaks
