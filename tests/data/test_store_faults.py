"""Faults in building a waveform store: two builders at once, builds and rebuilds killed
mid-way, damaged data, skipped files restored with their old mtime, leftovers of dead
builders. The builders that race or get killed are child processes (``python -c``) that
slow the decoder down by wrapping ``load_audio`` in the child only."""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gnn_audio.data.store as store_module
from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.data.store import LOCK_FILE, StoreError, WaveformStore
from gnn_audio.data.synthetic.signals import tone, write_wav

from .test_store import LABELS, make_clips

ROOT = Path(__file__).resolve().parents[2]
SHORT = (44100, 1, 0.2, 0.5)  # a 0.2-s clip (sample rate, channels, seconds, amplitude)

CHILD = r"""
import json, sys, time
import gnn_audio.data.store as store
from gnn_audio.data.clips import Clip, ClipList
from gnn_audio.labels import LabelSet

args = json.loads(sys.argv[1])
load_audio = store.load_audio

def slow_load_audio(*a, **kw):
    time.sleep(args["sleep"])
    return load_audio(*a, **kw)

store.load_audio = slow_load_audio
store.JOURNAL_SECONDS = args["journal_seconds"]
clips = ClipList("train", LabelSet(*args["labels"]),
                 [Clip(cid, path, tuple(labels)) for cid, path, labels in args["clips"]])
print("ready", flush=True)
built = store.WaveformStore.build(clips, args["path"], dtype=args["dtype"], progress=False)
r = built.report
print(json.dumps({"decoded": r.decoded, "reused": r.reused, "up_to_date": r.up_to_date,
                  "dtype": built.dtype}), flush=True)
"""


def _builder(clips, path, *, dtype="int16", sleep=0.0, journal_seconds=0.0):
    """A child process building ``clips`` into ``path``; it prints ``ready`` before the build
    and its report (JSON) after it."""
    args = {"clips": [[c.clip_id, c.path, list(c.labels)] for c in clips.clips],
            "labels": [LABELS.name, list(LABELS.mids), list(LABELS.names)], "path": str(path),
            "dtype": dtype, "sleep": sleep, "journal_seconds": journal_seconds}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _report(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def _journal_ids(path):
    """The clip ids the running (or killed) build's journal lists as finished."""
    ids = []
    for journal in Path(path).glob("partial.*.jsonl"):
        lines = journal.read_bytes().split(b"\n")[:-1]
        ids += [json.loads(line)[0] for line in lines[1:]]
    return ids


def _kill_when(proc, path, done, timeout=60):
    """SIGKILL ``proc`` once ``done(journaled ids)`` holds; the journaled ids after its death."""
    deadline = time.monotonic() + timeout
    while not done(_journal_ids(path)):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the child build made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return _journal_ids(path)


def _waveforms(store):
    return [store.waveform(i).clone() for i in range(len(store))]


def _assert_same(store, clean):
    assert list(store.clip_ids) == list(clean.clip_ids) and store.dtype == clean.dtype
    for i in range(len(clean)):
        assert torch.equal(store.waveform(i), clean.waveform(i)), store.clip_ids[i]


@pytest.mark.parametrize("dtypes", [("int16", "int16"), ("int16", "float16")])
def test_two_builders_at_once(tmp_path, dtypes):
    clips = make_clips(tmp_path / "audio", [SHORT] * 12)
    path = tmp_path / "store"
    path.mkdir()
    # the test holds the lock until both children are inside build(): they start together
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        procs = [_builder(clips, path, dtype=d, sleep=0.02) for d in dtypes]
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        with pytest.raises(StoreError, match="another process is building"):
            WaveformStore(path)
    finally:
        os.close(fd)
    reports = [_report(proc) for proc in procs]
    store = WaveformStore(path)
    store.verify()
    clean = WaveformStore.build(clips, tmp_path / "clean", dtype=store.dtype, progress=False)
    _assert_same(store, clean)
    if dtypes[0] == dtypes[1]:  # the second waited, then found the first's store current
        assert sorted((r["up_to_date"], r["decoded"]) for r in reports) == [
            (False, len(clips)), (True, 0)]
    else:  # the second waited, then built the store again in its own dtype
        assert [r["decoded"] for r in reports] == [len(clips)] * 2
        assert sorted(r["dtype"] for r in reports) == ["float16", "int16"]
    # nothing left over: one data file, the index, the lock
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [LOCK_FILE, "index.npz", store.data_path.name])


def test_killed_first_build_keeps_its_finished_clips(tmp_path):
    clips = make_clips(tmp_path / "audio", [SHORT] * 40)
    path = tmp_path / "store"
    proc = _builder(clips, path, sleep=0.1)
    done = _kill_when(proc, path, lambda ids: len(ids) >= 10)
    assert 10 <= len(done) < len(clips)
    with pytest.raises(StoreError, match="interrupted"):
        WaveformStore(path)
    store = WaveformStore.build(clips, path, progress=False)
    report = store.report
    assert report.reused == report.resumed == len(done)
    assert report.decoded == len(clips) - len(done) and "from an interrupted build" in \
        report.summary()
    store.verify()
    _assert_same(store, WaveformStore.build(clips, tmp_path / "clean", progress=False))
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [LOCK_FILE, "index.npz", store.data_path.name])


def test_killed_rebuild_keeps_the_old_store_and_its_finished_clips(tmp_path):
    clips = make_clips(tmp_path / "audio", [SHORT] * 30)
    path = tmp_path / "store"
    old = WaveformStore.build(clips, path, progress=False)
    old_waves = _waveforms(old)
    changed = [c.clip_id for k, c in enumerate(clips.clips) if k % 3 != 2]  # 20 of 30
    for k, clip in enumerate(clips.clips):
        if clip.clip_id in changed:
            write_wav(clip.path, tone(0.3, 22050, freq=200.0 + 37 * k, seed=k), 22050)
            st = os.stat(clip.path)
            os.utime(clip.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    proc = _builder(clips, path, sleep=0.15)
    done = _kill_when(proc, path, lambda ids: len(set(ids) & set(changed)) >= 6)
    done_changed = set(done) & set(changed)
    assert 6 <= len(done_changed) < len(changed)
    # the old store is whole: its index, its data, its content
    again = WaveformStore(path)
    again.verify()
    assert again.data_path == old.data_path
    assert all(torch.equal(a, b) for a, b in zip(_waveforms(again), old_waves))
    # the next build decodes only what the killed one had not finished
    store = WaveformStore.build(clips, path, progress=False)
    report = store.report
    assert report.decoded == len(changed) - len(done_changed)
    assert report.reused == len(clips) - report.decoded and report.resumed == len(done)
    assert sorted(report.changed) == sorted(changed)
    store.verify()
    _assert_same(store, WaveformStore.build(clips, tmp_path / "clean", progress=False))
    assert not old.data_path.exists() and not list(path.glob("partial.*"))
    # a reader that opened the old store before keeps reading the old data
    assert torch.equal(again.waveform(len(again) - 1), old_waves[-1])


def test_damaged_data_is_found_and_only_those_clips_decoded_again(tmp_path):
    clips = make_clips(tmp_path / "audio", [SHORT] * 5)
    path = tmp_path / "store"
    store = WaveformStore.build(clips, path, progress=False)
    store.verify()
    waves = _waveforms(store)
    with open(store.data_path, "r+b") as f:
        for k in (1, 3):
            f.seek(int(store.offsets[k]) * 2 + 100)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
    opened = WaveformStore(path)  # sizes still agree: opening is cheap and does not read
    with pytest.raises(StoreError, match=rf"{store.data_path.name}: 2 of 5 clips fail their "
                                         r"checksum \(first: clip id1\)") as err:
        opened.verify()
    assert "\n" not in str(err.value)
    assert opened.is_current(clips)  # by the index; build() reads the data too
    assert WaveformStore.build(clips, path, progress=False, verify=False).report.up_to_date
    rebuilt = WaveformStore.build(clips, path, progress=False)
    assert rebuilt.report.damaged == ["id1", "id3"] and not rebuilt.report.up_to_date
    assert rebuilt.report.decoded == 2 and rebuilt.report.reused == 3
    assert "2 damaged" in rebuilt.report.summary()
    rebuilt.verify()
    assert all(torch.equal(a, b) for a, b in zip(_waveforms(rebuilt), waves))


def test_damage_found_while_copying_is_decoded_again(tmp_path):
    """A clip that is copied into a rebuild (another clip changed) is checked too."""
    clips = make_clips(tmp_path / "audio", [SHORT] * 4)
    path = tmp_path / "store"
    store = WaveformStore.build(clips, path, progress=False)
    waves = _waveforms(store)
    with open(store.data_path, "r+b") as f:
        f.seek(int(store.offsets[2]) * 2)
        f.write(b"\x00\x01\x02\x03")
    os.utime(clips.clips[0].path)  # touched: decoded again, the others copied
    rebuilt = WaveformStore.build(clips, path, progress=False, verify=False)
    assert rebuilt.report.changed == ["id0"] and rebuilt.report.damaged == ["id2"]
    assert rebuilt.report.decoded == 2 and rebuilt.report.reused == 2
    assert all(torch.equal(a, b) for a, b in zip(_waveforms(rebuilt), waves))


def test_skipped_file_restored_with_its_old_mtime_is_tried_again(tmp_path):
    clips = make_clips(tmp_path / "audio", [SHORT] * 3)
    good = Path(clips.clips[0].path).read_bytes()
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_bytes(b"XXXX" + good[4:])  # not a RIFF file, the same size as a good one
    missing = tmp_path / "audio" / "later.wav"
    listed = ClipList("train", LABELS, clips.clips + [Clip("bad", str(bad), (0,)),
                                                      Clip("later", str(missing), (1,))])
    path = tmp_path / "store"
    store = WaveformStore.build(listed, path, skip_bad=True, progress=False)
    assert len(store) == 3 and len(store.report.skipped) == 2
    again = WaveformStore.build(listed, path, skip_bad=True, progress=False)
    assert again.report.up_to_date
    assert again.report.summary() == f"up to date, 2 skipped (see {path / 'skipped.txt'})"
    # restored in place, as `cp -p` does: same size, same mtime as the bad file had
    before = os.stat(bad)
    time.sleep(0.02)  # a later ctime even with a coarse clock
    bad.write_bytes(good)
    os.utime(bad, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(bad).st_size, os.stat(bad).st_mtime_ns) == (before.st_size,
                                                                before.st_mtime_ns)
    assert any("skipped source" in line for line in again.changes(listed))
    fixed = WaveformStore.build(listed, path, skip_bad=True, progress=False)
    assert fixed.report.decoded == 1 and fixed.report.reused == 3
    assert "bad" in list(fixed.clip_ids) and len(fixed.report.skipped) == 1
    # a skipped file that did not exist appears, copied with an old mtime (`shutil.copy2`)
    os.utime(clips.clips[1].path, ns=(10 ** 18, 10 ** 18))  # 2001: before any index
    shutil.copy2(clips.clips[1].path, missing)
    os.utime(clips.clips[1].path)  # (that clip's own source changed as well)
    last = WaveformStore.build(listed, path, skip_bad=True, progress=False)
    assert last.report.decoded == 2 and last.report.reused == 3 and not last.report.skipped
    assert list(last.clip_ids) == ["id0", "id1", "id2", "bad", "later"]
    assert not (path / "skipped.txt").exists()
    assert torch.equal(last.waveform(4), last.waveform(1))


def test_leftovers_of_dead_builders_are_removed_or_reused(tmp_path, monkeypatch):
    clips = make_clips(tmp_path / "audio", [SHORT] * 8)
    path = tmp_path / "store"
    calls = []
    load_audio = store_module.load_audio

    def interrupted(*args, **kwargs):  # Ctrl-C while decoding the fifth clip
        calls.append(args[0])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return load_audio(*args, **kwargs)

    monkeypatch.setattr(store_module, "load_audio", interrupted)
    with pytest.raises(KeyboardInterrupt):
        WaveformStore.build(clips, path, progress=False)
    monkeypatch.setattr(store_module, "load_audio", load_audio)
    (journal,) = path.glob("partial.*.jsonl")
    assert len(_journal_ids(path)) == 4
    with open(journal, "ab") as f:  # a torn last line, as a power cut leaves
        f.write(b'["id4", "/x", 99')
    # what dead builders leave: temporary files, a data file without a journal, a journal
    # without its data file, a journal of other settings, format 1's temporary data file
    stale = [".index.npz.99999.tmp", ".skipped.txt.99999.tmp", "waveforms.raw.tmp",
             "waveforms.99999.dead.raw", "partial.99998.gone.jsonl"]
    for name in stale:
        (path / name).write_bytes(b"junk")
    (path / "partial.99997.other.jsonl").write_text(json.dumps(
        {"format": 2, "data": "waveforms.99999.dead.raw", "sample_rate": 8000,
         "dtype": "int16"}) + "\n")
    (path / "notes.txt").write_text("the user's own file stays")
    store = WaveformStore.build(clips, path, progress=False)
    assert store.report.resumed == store.report.reused == 4 and store.report.decoded == 4
    _assert_same(store, WaveformStore.build(clips, tmp_path / "clean", progress=False))
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [LOCK_FILE, "index.npz", store.data_path.name, "notes.txt"])


def test_build_stopped_by_a_bad_file_keeps_what_it_finished(tmp_path):
    clips = make_clips(tmp_path / "audio", [SHORT] * 6)
    good = Path(clips.clips[3].path).read_bytes()
    Path(clips.clips[3].path).write_bytes(b"not audio")
    path = tmp_path / "store"
    with pytest.raises(StoreError, match="clip3.wav"):
        WaveformStore.build(clips, path, progress=False)
    assert sorted(_journal_ids(path)) == ["id0", "id1", "id2"]
    Path(clips.clips[3].path).write_bytes(good)
    store = WaveformStore.build(clips, path, progress=False)
    assert store.report.resumed == 3 and store.report.decoded == 3
    store.verify()


def test_reader_never_pairs_an_index_with_other_data(tmp_path):
    """Rebuilding under an open reader: the reader keeps its data; a new reader gets the new
    store; the old data file goes once the new index is in place."""
    clips = make_clips(tmp_path / "audio", [SHORT] * 3)
    path = tmp_path / "store"
    first = WaveformStore.build(clips, path, progress=False)
    waves = _waveforms(first)
    fresh = WaveformStore(path)  # opened, not mapped yet
    second = WaveformStore.build(clips, path, dtype="float16", progress=False)
    assert second.data_path != first.data_path and not first.data_path.exists()
    assert fresh.dtype == "int16" and torch.equal(fresh.waveform(2), waves[2])
    assert WaveformStore(path).dtype == "float16"
    with np.load(path / "index.npz") as index:
        meta = json.loads(str(index["meta"]))
        assert meta["format"] == 2 and len(index["crcs"]) == 3
    assert meta["data"] == second.data_path.name and meta["clips"] == 3
    assert meta["data_bytes"] == second.data_path.stat().st_size
