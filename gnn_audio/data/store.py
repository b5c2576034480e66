"""A split's audio decoded once: resampled mono waveforms in one memory-mapped file + an index.

Decoding a 44.1 kHz file and resampling it costs more than the log-mel itself, so
:meth:`WaveformStore.build` decodes every clip of a :class:`~gnn_audio.data.clips.ClipList` once
(in parallel, with a tqdm bar) and writes, in the folder ``path``:

* ``waveforms.raw``: every clip's samples back to back, little-endian ``int16`` (default) or
  ``float16``, read through :class:`numpy.memmap`;
* ``index.npz``: clip ids, offsets, lengths, per-clip scales, labels (as index lists), the class
  list, sample rate, dtype, and each source file's path, size and mtime;
* ``skipped.txt``: under ``skip_bad``, the clips left out (by the reader or the decoder) and why.

**Quantisation.** ``int16`` stores each clip scaled to its own peak:
``q = round(x / peak * 32767)``, ``x = q * scale`` with ``scale = peak / 32767``, so the error is
at most ``peak / 65534`` per sample whatever the level (a quiet clip keeps its 16 bits; a
resampled clip that overshoots 1.0 is not clipped). ``float16`` keeps about 11 bits relative
to each sample's own magnitude. Log-mel features from the store equal those from the source
within 0.01 in normalised units (``int16``) on every mel bin and frame within 60 dB of the clip's
loudest; see :data:`FEATURE_TOLERANCE` for the argument and what happens below.

**Reading.** :class:`WaveformStore` loads the small index at once and maps the data file lazily,
on the first :meth:`~WaveformStore.waveform` call in each process: a store created in the parent
works in forked or spawned DataLoader workers and in every DDP rank, all sharing the operating
system's page cache (no copies). Access is random (``store.waveform(i)`` for any ``i``).

**Atomic, incremental builds.** The index is written last (data file first, each through a temp
name and :func:`os.replace`, the old index removed before a rebuild starts), so an interrupted
build leaves a folder that :class:`WaveformStore` refuses with a clear error. Building again
returns the existing store when :meth:`~WaveformStore.is_current` (same clips, labels and source
files, by size and mtime); otherwise only clips whose source changed (or that are new) are
decoded again, the others are copied from the old store, and the report names what changed.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gnn_audio.data.audio import load_audio
from gnn_audio.errors import one_line
from gnn_audio.files import atomic_open
from gnn_audio.data.clips import Clip, ClipList, Skipped
from gnn_audio.labels import LabelSet
from gnn_audio.types import PathLike

__all__ = ["WaveformStore", "StoreError", "BuildReport", "FEATURE_TOLERANCE"]

DATA_FILE = "waveforms.raw"
INDEX_FILE = "index.npz"
SKIPPED_FILE = "skipped.txt"
FORMAT_VERSION = 1
_DTYPES = {"int16": np.dtype("<i2"), "float16": np.dtype("<f2")}
_INT16_MAX = 32767.0

#: Largest difference, in normalised log-mel units (``(x - norm_mean) / norm_std``), between
#: :func:`~gnn_audio.data.features.fbank` features from the store (``int16``) and from the
#: source file, over the mel bins x frames whose energy is within 60 dB of the clip's loudest.
#: Why: per-clip peak scaling adds rounding noise of ``peak / 32767 / sqrt(12)`` rms per sample,
#: about 101 dB below a full-scale sine, white, so a mel band ``L`` dB below the clip's loudest
#: band moves by a relative power of about ``10**((L - 95) / 10)`` (measured, 10-s 44.1 kHz
#: clips at 0 / -10 / -40 dBFS: at most 0.0010 normalised within 60 dB, 0.0003 within 40 dB),
#: so 0.01 leaves a 10x margin. Further down lies the source's own quantisation floor (FSD50K is
#: 16-bit PCM): there the store's rounding noise is as strong as the source's, and ``log``
#: turns that into differences of up to about 0.5 normalised (mean 0.015 over a whole clip at
#: 0 dBFS, measured) in bins that hold nothing but quantisation noise of the source file.
#: ``float16`` keeps 11 bits per sample, its noise is 30 dB stronger: 0.011 within 60 dB, up to
#: 1.5 below; hence ``int16`` is the default.
FEATURE_TOLERANCE = 0.01


class StoreError(ValueError):
    """A store that cannot be used or built; the message is one line naming the file."""


@dataclass
class BuildReport:
    """What :meth:`WaveformStore.build` did: clips decoded, copied from the previous store,
    skipped (``where``, ``reason``), and the clip ids whose source file changed."""

    decoded: int = 0
    reused: int = 0
    skipped: List[Skipped] = field(default_factory=list)
    changed: List[str] = field(default_factory=list)
    up_to_date: bool = False

    def summary(self) -> str:
        if self.up_to_date:
            return "up to date"
        text = f"{self.decoded} decoded, {self.reused} reused, {len(self.skipped)} skipped"
        if self.changed:
            shown = ", ".join(self.changed[:5]) + (" ..." if len(self.changed) > 5 else "")
            text += f", {len(self.changed)} changed source(s): {shown}"
        return text


def _stat(path: str) -> Tuple[int, int]:
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


class _Decode(Dataset):
    """Decodes ``clips[i]`` to a quantised mono waveform; failures come back as messages (so a
    bad file never raises inside a DataLoader worker)."""

    def __init__(self, clips: Sequence[Clip], sample_rate: int, dtype: str) -> None:
        self.clips, self.sample_rate, self.dtype = clips, sample_rate, dtype

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        clip = self.clips[i]
        try:
            size, mtime = _stat(clip.path)
            wav = load_audio(clip.path, sample_rate=self.sample_rate, mono=True)[0].numpy()
            if not np.isfinite(wav).all():
                raise ValueError("NaN or infinite samples")
            data, scale = _quantise(wav, self.dtype)
            return i, data, scale, size, mtime, None
        except Exception as err:  # noqa: BLE001 -- reported with the file name below
            msg = one_line(err)
            return i, None, 0.0, 0, 0, msg if msg.startswith(clip.path) else f"{clip.path}: {msg}"


def _quantise(wav: np.ndarray, dtype: str) -> Tuple[np.ndarray, float]:
    if dtype == "float16":
        return wav.astype(_DTYPES["float16"]), 1.0
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    if peak == 0.0:
        return np.zeros(wav.shape, dtype=_DTYPES["int16"]), 0.0
    scale = peak / _INT16_MAX
    return np.rint(wav / scale).astype(_DTYPES["int16"]), scale


def _write_atomic(path: Path, write) -> None:
    with atomic_open(path) as f:
        write(f)


def _skipped_report(path: Path, skipped: List[Skipped]) -> None:
    target = path / SKIPPED_FILE
    if not skipped:
        if target.exists():
            target.unlink()
        return
    text = "".join(f"{s.where}\t{s.reason}\n" for s in skipped)
    _write_atomic(target, lambda f: f.write(text.encode("utf-8")))


class WaveformStore:
    """A built store (see the module docstring). ``WaveformStore(path)`` reads the index only;
    the data file is mapped on first use in each process.

    Attributes:
        path: the store's folder.
        clip_ids: ``[N]`` clip ids, in the clip list's order (skipped clips left out).
        label_set: the class list the labels index into.
        sample_rate: of the stored waveforms.
        dtype: ``"int16"`` or ``"float16"``.
        report: the :class:`BuildReport` when the object came from :meth:`build`, else None.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        index, data = self.path / INDEX_FILE, self.path / DATA_FILE
        if not index.exists():
            if data.exists() or (self.path / (DATA_FILE + ".tmp")).exists():
                raise StoreError(f"{index}: missing, the build that wrote {data.name} was "
                                 "interrupted; build the store again")
            raise StoreError(f"{self.path}: not a waveform store (no {INDEX_FILE})")
        try:
            with np.load(index, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: z[k] for k in z.files if k != "meta"}
        except Exception as err:  # noqa: BLE001
            raise StoreError(f"{index}: unreadable store index ({one_line(err)})") from None
        if meta.get("format") != FORMAT_VERSION:
            raise StoreError(f"{index}: store format {meta.get('format')}, expected "
                             f"{FORMAT_VERSION}; build the store again")
        self.sample_rate: int = int(meta["sample_rate"])
        self.dtype: str = meta["dtype"]
        self.label_set = LabelSet(meta["label_set"], tuple(meta["mids"]), tuple(meta["names"]))
        self.name: str = meta["name"]
        self.clip_ids: np.ndarray = arrays["clip_ids"]
        self.paths: np.ndarray = arrays["paths"]
        self.offsets: np.ndarray = arrays["offsets"]
        self.lengths: np.ndarray = arrays["lengths"]
        self.scales: np.ndarray = arrays["scales"]
        self.sizes: np.ndarray = arrays["sizes"]
        self.mtimes: np.ndarray = arrays["mtimes"]
        self._label_flat: np.ndarray = arrays["label_flat"]
        self._label_ptr: np.ndarray = arrays["label_ptr"]
        total = int(self.lengths.sum())
        expected = total * _DTYPES[self.dtype].itemsize
        actual = data.stat().st_size if data.exists() else -1
        if actual != expected:
            raise StoreError(f"{data}: {actual} bytes, the index expects {expected}; the store "
                             "is damaged, build it again")
        self._total = total
        self._data: Optional[np.ndarray] = None
        self._pid: Optional[int] = None
        self._targets: Optional[np.ndarray] = None
        self.report: Optional[BuildReport] = None

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.clip_ids)

    def __repr__(self) -> str:
        return (f"WaveformStore({str(self.path)!r}, clips={len(self)}, classes="
                f"{len(self.label_set)}, {self.sample_rate} Hz, {self.dtype}, "
                f"{self._total / self.sample_rate / 3600:.2f} h)")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"], state["_pid"] = None, None  # every process maps the file itself
        return state

    def _mapped(self) -> np.ndarray:
        if self._data is None or self._pid != os.getpid():
            if self._total == 0:
                self._data = np.zeros(0, dtype=_DTYPES[self.dtype])
            else:
                self._data = np.memmap(self.path / DATA_FILE, dtype=_DTYPES[self.dtype],
                                       mode="r", shape=(self._total,))
            self._pid = os.getpid()
        return self._data

    def waveform(self, i: int) -> torch.Tensor:
        """Clip ``i`` as float32 ``[T]`` at :attr:`sample_rate`."""
        start, length = int(self.offsets[i]), int(self.lengths[i])
        raw = self._mapped()[start:start + length]
        wav = torch.from_numpy(raw.astype(np.float32))
        if self.dtype == "int16":
            wav.mul_(float(self.scales[i]))
        return wav

    def labels(self, i: int) -> Tuple[int, ...]:
        """Class indices of clip ``i``."""
        return tuple(int(c) for c in self._label_flat[self._label_ptr[i]:self._label_ptr[i + 1]])

    def target(self, i: int) -> torch.Tensor:
        """Multi-hot ``[num_classes]`` float32 target of clip ``i``."""
        y = torch.zeros(len(self.label_set), dtype=torch.float32)
        y[list(self.labels(i))] = 1.0
        return y

    @property
    def targets(self) -> np.ndarray:
        """``[N, num_classes]`` float32 multi-hot targets (built once, then cached)."""
        if self._targets is None:
            y = np.zeros((len(self), len(self.label_set)), dtype=np.float32)
            rows = np.repeat(np.arange(len(self)), np.diff(self._label_ptr))
            y[rows, self._label_flat] = 1.0
            self._targets = y
        return self._targets

    @property
    def num_classes(self) -> int:
        return len(self.label_set)

    def source(self, i: int) -> str:
        """The audio file clip ``i`` was decoded from."""
        return str(self.paths[i])

    # ------------------------------------------------------------ freshness
    def changes(self, clips: ClipList, sample_rate: Optional[int] = None,
                dtype: Optional[str] = None) -> List[str]:
        """Why this store does not hold ``clips`` (one line each; empty when it does): other
        settings, class list, clips or labels, or a source file whose size or mtime changed."""
        out: List[str] = []
        if sample_rate is not None and sample_rate != self.sample_rate:
            out.append(f"sample rate {self.sample_rate} != {sample_rate}")
        if dtype is not None and dtype != self.dtype:
            out.append(f"dtype {self.dtype} != {dtype}")
        if tuple(clips.label_set.mids) != tuple(self.label_set.mids):
            out.append("class list changed")
        skipped = {s.where for s in self._skipped_listed()}
        built = (self.path / INDEX_FILE).stat().st_mtime_ns
        for clip in clips.clips:  # a skipped (bad) file that was replaced since
            if clip.path in skipped and os.path.exists(clip.path) and \
                    _stat(clip.path)[1] > built:
                out.append(f"clip {clip.clip_id}: skipped source {clip.path} changed")
        stored = {cid: k for k, cid in enumerate(self.clip_ids.tolist())}
        wanted = [c for c in clips.clips if c.path not in skipped]
        if len(wanted) != len(stored):
            out.append(f"{len(wanted)} clips listed, {len(stored)} stored")
        for clip in wanted:
            k = stored.get(clip.clip_id)
            if k is None:
                out.append(f"clip {clip.clip_id} not stored")
            elif str(self.paths[k]) != clip.path:
                out.append(f"clip {clip.clip_id}: source {self.paths[k]} -> {clip.path}")
            elif self.labels(k) != tuple(clip.labels):
                out.append(f"clip {clip.clip_id}: labels changed")
            else:
                try:
                    size, mtime = _stat(clip.path)
                except OSError:
                    out.append(f"clip {clip.clip_id}: source {clip.path} is missing")
                    continue
                if size != int(self.sizes[k]) or mtime != int(self.mtimes[k]):
                    out.append(f"clip {clip.clip_id}: source {clip.path} changed")
        return out

    def is_current(self, clips: ClipList, sample_rate: Optional[int] = None,
                   dtype: Optional[str] = None) -> bool:
        """True when the store holds exactly ``clips`` from unchanged source files."""
        return not self.changes(clips, sample_rate, dtype)

    def _skipped_listed(self) -> List[Skipped]:
        path = self.path / SKIPPED_FILE
        if not path.exists():
            return []
        rows = [line.split("\t", 1) for line in path.read_text("utf-8").splitlines() if line]
        return [Skipped(r[0], r[1] if len(r) > 1 else "") for r in rows]

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, clips: ClipList, path: PathLike, *, sample_rate: int = 16000,
              dtype: str = "int16", skip_bad: bool = False, num_workers: int = 0,
              progress: bool = True) -> "WaveformStore":
        """Decode, resample to ``sample_rate`` mono and store every clip of ``clips`` in the
        folder ``path`` (created), reusing an existing store there where it is current.

        Args:
            clips: the split (its ``skipped`` entries go to ``skipped.txt``).
            path: the store's folder, one per split.
            sample_rate: rate of the stored waveforms (the model's front-end rate).
            dtype: ``"int16"`` (per-clip peak scaling) or ``"float16"``.
            skip_bad: leave out clips whose file cannot be decoded and list them in
                ``path/skipped.txt``; otherwise the first one raises :class:`StoreError` naming
                the file.
            num_workers: decoding processes (DataLoader workers; 0 = in this process).
            progress: show a tqdm progress bar.

        Returns:
            the store, with :attr:`report` (a :class:`BuildReport`) set.
        """
        if dtype not in _DTYPES:
            raise StoreError(f"{path}: dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        path = Path(path)
        seen: Dict[str, str] = {}
        for clip in clips.clips:
            if clip.clip_id in seen:
                raise StoreError(f"{clip.source or clip.path}: clip id {clip.clip_id!r} listed "
                                 f"twice (also {seen[clip.clip_id]})")
            seen[clip.clip_id] = clip.source or clip.path
        path.mkdir(parents=True, exist_ok=True)
        old: Optional[WaveformStore] = None
        if (path / INDEX_FILE).exists():
            try:
                old = cls(path)
            except StoreError:
                old = None
        if (old is not None and (skip_bad or not old._skipped_listed())
                and old.is_current(clips, sample_rate, dtype)):
            old.report = BuildReport(reused=len(old), up_to_date=True,
                                     skipped=old._skipped_listed())
            return old
        reusable: Dict[str, int] = {}
        changed: List[str] = []
        if old is not None and old.sample_rate == sample_rate and old.dtype == dtype:
            by_id = {cid: k for k, cid in enumerate(old.clip_ids.tolist())}
            for clip in clips.clips:
                k = by_id.get(clip.clip_id)
                if k is None or str(old.paths[k]) != clip.path:
                    continue
                try:
                    size, mtime = _stat(clip.path)
                except OSError:
                    continue
                if size == int(old.sizes[k]) and mtime == int(old.mtimes[k]):
                    reusable[clip.clip_id] = k
                else:
                    changed.append(clip.clip_id)
            old._mapped()  # keep the old data readable while its file is replaced
        # an interrupted rebuild must not leave the old index describing new data
        (path / INDEX_FILE).unlink(missing_ok=True)
        todo = [c for c in clips.clips if c.clip_id not in reusable]
        report = BuildReport(skipped=list(clips.skipped), changed=changed)
        entries = cls._write_data(path, clips, old, reusable, todo, sample_rate, dtype,
                                  skip_bad, num_workers, progress, report)
        cls._write_index(path, clips, entries, sample_rate, dtype)
        _skipped_report(path, report.skipped)
        store = cls(path)
        store.report = report
        return store

    @staticmethod
    def _decoded(todo: List[Clip], sample_rate: int, dtype: str,
                 num_workers: int) -> Iterator[tuple]:
        loader = DataLoader(_Decode(todo, sample_rate, dtype), batch_size=None, shuffle=False,
                            num_workers=num_workers,
                            prefetch_factor=4 if num_workers > 0 else None)
        yield from loader

    @classmethod
    def _write_data(cls, path: Path, clips: ClipList, old: Optional["WaveformStore"],
                    reusable: Dict[str, int], todo: List[Clip], sample_rate: int, dtype: str,
                    skip_bad: bool, num_workers: int, progress: bool,
                    report: BuildReport) -> List[tuple]:
        from tqdm.auto import tqdm

        decoded = cls._decoded(todo, sample_rate, dtype, num_workers)
        entries = []  # (clip, offset, length, scale, size, mtime)
        offset = 0
        tmp = path / (DATA_FILE + ".tmp")
        bar = tqdm(total=len(clips.clips), desc=f"store {clips.name}", unit="clip",
                   disable=not progress)
        try:
            with open(tmp, "wb") as f:
                for clip in clips.clips:
                    k = reusable.get(clip.clip_id)
                    if k is not None:
                        start, n = int(old.offsets[k]), int(old.lengths[k])
                        data = np.asarray(old._mapped()[start:start + n])
                        scale, size, mtime = float(old.scales[k]), int(old.sizes[k]), int(
                            old.mtimes[k])
                        report.reused += 1
                    else:
                        _, data, scale, size, mtime, error = next(decoded)
                        if error is not None:
                            if not skip_bad:
                                raise StoreError(error)
                            report.skipped.append(Skipped(clip.path, error))
                            bar.update()
                            continue
                        data = np.asarray(data)
                        report.decoded += 1
                    f.write(data.tobytes())
                    entries.append((clip, offset, len(data), scale, size, mtime))
                    offset += len(data)
                    bar.update()
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path / DATA_FILE)
        finally:
            bar.close()
            decoded.close()
            tmp.unlink(missing_ok=True)
        return entries

    @staticmethod
    def _write_index(path: Path, clips: ClipList, entries: List[tuple], sample_rate: int,
                     dtype: str) -> None:
        ls = clips.label_set
        meta = {"format": FORMAT_VERSION, "name": clips.name, "sample_rate": sample_rate,
                "dtype": dtype, "label_set": ls.name, "mids": list(ls.mids),
                "names": list(ls.names)}
        labels = [list(e[0].labels) for e in entries]
        ptr = np.zeros(len(entries) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(x) for x in labels])
        arrays = dict(
            meta=np.array(json.dumps(meta)),
            clip_ids=np.array([e[0].clip_id for e in entries], dtype=str),
            paths=np.array([e[0].path for e in entries], dtype=str),
            offsets=np.array([e[1] for e in entries], dtype=np.int64),
            lengths=np.array([e[2] for e in entries], dtype=np.int64),
            scales=np.array([e[3] for e in entries], dtype=np.float64),
            sizes=np.array([e[4] for e in entries], dtype=np.int64),
            mtimes=np.array([e[5] for e in entries], dtype=np.int64),
            label_flat=np.array([c for x in labels for c in x], dtype=np.int64),
            label_ptr=ptr,
        )
        _write_atomic(path / INDEX_FILE, lambda f: np.savez(f, **arrays))
