"""A split's audio decoded once: resampled mono waveforms in one memory-mapped file + an index.

Decoding a 44.1 kHz file and resampling it costs more than the log-mel itself, so
:meth:`WaveformStore.build` decodes every clip of a :class:`~gnn_audio.data.clips.ClipList` once
(in parallel, with a tqdm bar) and writes, in the folder ``path``:

* ``index.npz``: clip ids, offsets, lengths, per-clip scales, labels (as index lists), the class
  list, sample rate, dtype, the name of the data file, the clip count and the data file's size
  in bytes, a CRC-32 of each clip's stored samples (``crcs``), each source file's path, size
  and mtime, and what was skipped (with the size, mtime, ctime and inode each skipped file had
  when it was tried);
* ``waveforms.<token>.raw``: every clip's samples back to back, little-endian ``int16``
  (default) or ``float16``, read through a read-only memory map; ``<token>`` (the builder's pid
  and a random part) is new for every build, and the index names the one that belongs to it;
* ``skipped.txt``: under ``skip_bad``, the clips left out (by the reader or the decoder) and why;
* ``.build.lock``: the lock builders take (never removed, holds nothing).

**Quantisation.** ``int16`` stores each clip scaled to its own peak:
``q = round(x / peak * 32767)``, ``x = q * scale`` with ``scale = peak / 32767``, so the error is
at most ``peak / 65534`` per sample whatever the level (a quiet clip keeps its 16 bits; a
resampled clip that overshoots 1.0 is not clipped). ``float16`` keeps about 11 bits relative
to each sample's own magnitude. Log-mel features from the store equal those from the source
within 0.01 in normalised units (``int16``) on every mel bin and frame within 60 dB of the clip's
loudest; see :data:`FEATURE_TOLERANCE` for the argument and what happens below.

**Reading.** :class:`WaveformStore` loads the small index at once, opens the data file it names
and checks its size; the file is mapped lazily, on the first :meth:`~WaveformStore.waveform`
call in each process: a store created in the parent works in forked or spawned DataLoader
workers and in every DDP rank, all sharing the operating system's page cache (no copies).
Access is random (``store.waveform(i)`` for any ``i``). An opened store keeps reading the data
it opened even when a later build replaces the store (the old file stays readable until its
last reader closes it); :meth:`~WaveformStore.verify` reads every clip and checks its CRC.

**Builds: one at a time, atomic, incremental, resumable.** A builder holds an exclusive
:func:`fcntl.flock` on ``.build.lock`` for the whole build; another builder of the same folder
waits for it, then finds the store current and returns it without decoding (or builds what is
still missing). The kernel drops the lock when the builder dies (killed too), so there is no
stale lock to remove. Every build writes its own new data file, then the index with
:func:`os.replace`: the index is the single commit point, and a reader sees either the old
store complete or the new one complete, never an old index over new data; the old data file
is removed after the commit. While it runs, the build appends each finished clip (id, source
file and its size and mtime, offset, length, scale, CRC) to a journal,
``partial.<token>.jsonl``, synced with the data file every :data:`JOURNAL_SECONDS` (and when
the build fails or is interrupted), so an interrupted build, or one stopped by a bad file,
leaves its finished clips behind. Building again returns the existing store when
:meth:`~WaveformStore.is_current` (same clips, labels and source files, by size and mtime; and
skipped files not changed by size, mtime, ctime or inode) and every clip's CRC checks out;
otherwise each clip is copied (its CRC checked) from an interrupted build's data or from the
old store, when one of them holds it from the source file as it is now, and decoded otherwise
(also when its stored samples fail their CRC); the report counts what was decoded, reused
(of which resumed from an interrupted build), damaged, skipped and changed. Holding the lock,
a build removes the temporary files and unused partial builds that dead builders left.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import secrets
import time
import zlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import (Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set,
                    Tuple)

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from gnn_audio.data.audio import load_audio
from gnn_audio.errors import one_line
from gnn_audio.files import atomic_open, fsync_dir
from gnn_audio.data.clips import Clip, ClipList, Skipped
from gnn_audio.labels import LabelSet
from gnn_audio.types import PathLike

__all__ = ["WaveformStore", "StoreError", "BuildReport", "FEATURE_TOLERANCE"]

INDEX_FILE = "index.npz"
SKIPPED_FILE = "skipped.txt"
LOCK_FILE = ".build.lock"
#: the data file of format 1 (one fixed name); such a store is refused and built again
DATA_FILE = "waveforms.raw"
FORMAT_VERSION = 2
#: seconds between two syncs of a running build's data file and journal (what a killed build
#: leaves to the next one is at most this much older than the moment it died)
JOURNAL_SECONDS = 2.0
_DTYPES = {"int16": np.dtype("<i2"), "float16": np.dtype("<f2")}
_INT16_MAX = 32767.0
#: (size, mtime_ns, ctime_ns, inode) of a file that did not exist
_MISSING = (-1, -1, -1, -1)
#: what a build may remove from its folder unless it is in use (see :func:`_remove_stale`)
_STALE = (DATA_FILE, DATA_FILE + ".tmp", "waveforms.*.raw", "partial.*",
          f".{INDEX_FILE}.*.tmp", f".{SKIPPED_FILE}.*.tmp")

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
    """What :meth:`WaveformStore.build` did: clips decoded, copied from the previous store or
    from an interrupted build (``reused``; ``resumed`` of them from an interrupted build),
    skipped (``where``, ``reason``), the clip ids whose source file changed, and those whose
    stored samples failed their checksum (``damaged``, decoded again). ``folder`` is the
    store's."""

    decoded: int = 0
    reused: int = 0
    skipped: List[Skipped] = field(default_factory=list)
    changed: List[str] = field(default_factory=list)
    up_to_date: bool = False
    resumed: int = 0
    damaged: List[str] = field(default_factory=list)
    folder: str = ""

    def summary(self) -> str:
        listed = f" (see {Path(self.folder) / SKIPPED_FILE})" if self.skipped else ""
        if self.up_to_date:
            return "up to date" + (f", {len(self.skipped)} skipped{listed}" if self.skipped
                                   else "")
        text = f"{self.decoded} decoded, {self.reused} reused"
        if self.resumed:
            text += f" ({self.resumed} from an interrupted build)"
        text += f", {len(self.skipped)} skipped{listed}"
        if self.damaged:
            text += f", {len(self.damaged)} damaged clip(s) decoded again"
        if self.changed:
            shown = ", ".join(self.changed[:5]) + (" ..." if len(self.changed) > 5 else "")
            text += f", {len(self.changed)} changed source(s): {shown}"
        return text


def _stat(path: str) -> Tuple[int, int]:
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


def _identity(st: os.stat_result) -> Tuple[int, int, int, int]:
    """What tells a replaced file: size, mtime and ctime (ns), inode. ``cp -p`` or ``rsync -a``
    keep the mtime, but not the ctime nor (mostly) the inode."""
    return int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns), int(st.st_ino)


def _identity_of(path: str) -> Tuple[int, int, int, int]:
    try:
        return _identity(os.stat(path))
    except OSError:
        return _MISSING


class _Decode(Dataset):
    """Decodes ``clips[i]`` to a quantised mono waveform; failures come back as messages (so a
    bad file never raises inside a DataLoader worker). The source file is looked at (its
    :func:`_identity`, :data:`_MISSING` when absent) before it is decoded, so a later change
    always shows."""

    def __init__(self, clips: Sequence[Clip], sample_rate: int, dtype: str) -> None:
        self.clips, self.sample_rate, self.dtype = clips, sample_rate, dtype

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        clip = self.clips[i]
        ident = _MISSING
        try:
            ident = _identity(os.stat(clip.path))
            wav = load_audio(clip.path, sample_rate=self.sample_rate, mono=True)[0].numpy()
            if not np.isfinite(wav).all():
                raise ValueError("NaN or infinite samples")
            data, scale = _quantise(wav, self.dtype)
            return i, data, scale, ident, None
        except Exception as err:  # noqa: BLE001 -- reported with the file name below
            msg = one_line(err)
            return i, None, 0.0, ident, msg if msg.startswith(clip.path) else \
                f"{clip.path}: {msg}"


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
        target.unlink(missing_ok=True)
        return
    text = "".join(f"{s.where}\t{s.reason}\n" for s in skipped).encode("utf-8")
    with contextlib.suppress(OSError):
        if target.read_bytes() == text:
            return
    _write_atomic(target, lambda f: f.write(text))


def _data_name(token: str) -> str:
    return f"waveforms.{token}.raw"


def _remove_stale(path: Path, keep: Set[str]) -> None:
    """Remove from the store folder what builds leave (:data:`_STALE`: temporary files, data
    files and journals of other builds, format 1's data file) except the names in ``keep``.
    Only a builder holding the lock calls this: nothing else is writing there then."""
    for entry in path.iterdir():
        name = entry.name
        if name not in keep and any(fnmatchcase(name, p) for p in _STALE) and entry.is_file():
            entry.unlink(missing_ok=True)


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive build lock of the store folder ``path`` (waiting for it)."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def _lock_held(path: Path) -> bool:
    """Whether a builder holds ``path``'s lock now (a look, not a wait)."""
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


class _Handle:
    """A read-only file descriptor, closed when the object goes (a store keeps its data file
    open: the data it opened stay readable after a rebuild removed the file)."""

    def __init__(self, path: Path) -> None:
        self.fd = -1
        self.fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _map(fd: int, count: int, dtype: np.dtype) -> np.ndarray:
    """The first ``count`` samples of the open file ``fd``, memory-mapped read-only."""
    if count == 0:
        return np.zeros(0, dtype=dtype)
    mapped = mmap.mmap(fd, count * dtype.itemsize, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype=dtype, count=count)


class _Row(NamedTuple):
    """A stored clip: its source file, where its samples are (in samples), its scale, its
    source file's size and mtime when it was decoded, the CRC-32 of its stored bytes."""

    path: str
    offset: int
    length: int
    scale: float
    size: int
    mtime: int
    crc: int


class _Entry(NamedTuple):
    """A clip of the store being written and where it went."""

    clip: Clip
    row: _Row


class _Source:
    """Finished clips of an earlier build that this one may copy instead of decoding: those of
    the complete store, or those an interrupted build journaled (``journal`` set)."""

    def __init__(self, data_path: Path, rows: Dict[str, _Row],
                 mapper: Callable[[], np.ndarray], journal: Optional[Path] = None) -> None:
        self.data_path, self.rows, self.journal = data_path, rows, journal
        self._mapper, self._data = mapper, None

    def samples(self, row: _Row) -> np.ndarray:
        if self._data is None:
            self._data = self._mapper()
        return self._data[row.offset:row.offset + row.length]

    def remove(self) -> None:
        for p in (self.journal, self.data_path):
            if p is not None:
                p.unlink(missing_ok=True)

    @classmethod
    def of_store(cls, store: "WaveformStore", leave_out: Set[str]) -> "_Source":
        rows = {cid: _Row(str(store.paths[k]), int(store.offsets[k]), int(store.lengths[k]),
                          float(store.scales[k]), int(store.sizes[k]), int(store.mtimes[k]),
                          int(store.crcs[k]))
                for k, cid in enumerate(store.clip_ids.tolist()) if cid not in leave_out}
        return cls(store.data_path, rows, store._mapped)

    @classmethod
    def of_journal(cls, journal: Path, sample_rate: int, dtype: str) -> Optional["_Source"]:
        """The clips ``journal`` lists, as far as it and its data file are whole (a torn last
        line and rows beyond the data file's end are left out); None when there are none, or
        for other settings."""
        try:
            lines = journal.read_bytes().split(b"\n")[:-1]  # no newline after the last: torn
            head = json.loads(lines[0]) if lines else None
        except (OSError, ValueError):
            return None
        if not isinstance(head, dict) or head.get("format") != FORMAT_VERSION or \
                head.get("sample_rate") != sample_rate or head.get("dtype") != dtype:
            return None
        name = head.get("data")
        if not isinstance(name, str) or Path(name).name != name or \
                not fnmatchcase(name, "waveforms.*.raw"):
            return None
        data_path = journal.parent / name
        try:
            size = data_path.stat().st_size
        except OSError:
            return None
        itemsize = _DTYPES[dtype].itemsize
        rows: Dict[str, _Row] = {}
        for line in lines[1:]:
            try:
                cid, path, offset, length, scale, fsize, mtime, crc = json.loads(line)
                row = _Row(str(path), int(offset), int(length), float(scale), int(fsize),
                           int(mtime), int(crc))
            except (ValueError, TypeError):
                break
            if row.offset < 0 or row.length < 0 or (row.offset + row.length) * itemsize > size:
                break
            rows[str(cid)] = row
        if not rows:
            return None
        count = max(r.offset + r.length for r in rows.values())

        def mapper() -> np.ndarray:
            handle = _Handle(data_path)  # closed on return: the map keeps the file open
            return _map(handle.fd, count, _DTYPES[dtype])

        return cls(data_path, rows, mapper, journal)


class WaveformStore:
    """A built store (see the module docstring). ``WaveformStore(path)`` reads the index and
    opens the data file it names (checking its size, not its content: see :meth:`verify`);
    the data file is mapped on first use in each process.

    Attributes:
        path: the store's folder.
        data_path: its data file (``path / "waveforms.<token>.raw"``).
        clip_ids: ``[N]`` clip ids, in the clip list's order (skipped clips left out).
        label_set: the class list the labels index into.
        sample_rate: of the stored waveforms.
        dtype: ``"int16"`` or ``"float16"``.
        crcs: ``[N]`` CRC-32 of each clip's stored bytes.
        skipped: what the build left out (``skipped.txt`` lists the same).
        report: the :class:`BuildReport` when the object came from :meth:`build`, else None.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        index = self.path / INDEX_FILE
        for attempt in range(3):
            stamp = self._index_stamp(index)
            meta, arrays = self._read_index(index)
            self.data_path = self.path / meta["data"]
            try:
                handle = _Handle(self.data_path)
                break
            except FileNotFoundError:
                # a build replaced the store between reading its index and opening its data
                if attempt < 2 and self._index_stamp(index) != stamp:
                    continue
                raise StoreError(f"{self.data_path}: missing, {INDEX_FILE} names it as its "
                                 "data file; the store is damaged, build it again") from None
            except OSError as err:
                raise StoreError(f"{self.data_path}: cannot open the store's data file "
                                 f"({one_line(err)})") from None
        try:
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
            self.crcs: np.ndarray = arrays["crcs"]
            self._label_flat: np.ndarray = arrays["label_flat"]
            self._label_ptr: np.ndarray = arrays["label_ptr"]
            self.skipped: List[Skipped] = [Skipped(str(w), str(r)) for w, r in meta["skipped"]]
            #: source path -> its :func:`_identity` when the decoder skipped it
            self.skipped_files: Dict[str, Tuple[int, int, int, int]] = {
                str(p): tuple(int(v) for v in st)
                for p, st in zip(arrays["skip_paths"].tolist(), arrays["skip_stats"])}
            n, data_bytes = int(meta["clips"]), int(meta["data_bytes"])
        except (KeyError, TypeError, ValueError) as err:
            raise StoreError(f"{index}: unreadable store index ({type(err).__name__}: "
                             f"{one_line(err)})") from None
        total = int(self.lengths.sum())
        expected = total * _DTYPES[self.dtype].itemsize
        starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]) if n else self.offsets
        if any(len(a) != n for a in (self.clip_ids, self.paths, self.offsets, self.lengths,
                                     self.scales, self.sizes, self.mtimes, self.crcs)) or \
                len(self._label_ptr) != n + 1 or expected != data_bytes or \
                not np.array_equal(starts, self.offsets):
            raise StoreError(f"{index}: inconsistent store index (clip count, offsets or data "
                             "size); build the store again")
        actual = os.fstat(handle.fd).st_size
        if actual != expected:
            raise StoreError(f"{self.data_path}: {actual} bytes, the index expects {expected}; "
                             "the store is damaged, build it again")
        self._handle: Optional[_Handle] = handle
        self._total = total
        self._data: Optional[np.ndarray] = None
        self._pid: Optional[int] = None
        self._targets: Optional[np.ndarray] = None
        self.report: Optional[BuildReport] = None

    def _index_stamp(self, index: Path) -> Tuple[int, int, int]:
        """The index file's inode, mtime and size; :class:`StoreError` saying why when there
        is none."""
        try:
            st = os.stat(index)
            return int(st.st_ino), int(st.st_mtime_ns), int(st.st_size)
        except FileNotFoundError:
            pass
        if _lock_held(self.path):
            raise StoreError(f"{index}: missing, another process is building the store (it "
                             f"holds {LOCK_FILE}); open it when that build is done")
        left = sorted(p.name for p in self.path.glob("waveforms*.raw*")) if \
            self.path.is_dir() else []
        if left:
            raise StoreError(f"{index}: missing, the build that wrote {left[0]} was "
                             "interrupted; build the store again")
        raise StoreError(f"{self.path}: not a waveform store (no {INDEX_FILE})")

    @staticmethod
    def _read_index(index: Path) -> Tuple[dict, Dict[str, np.ndarray]]:
        try:
            with np.load(index, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                arrays = {k: z[k] for k in z.files if k != "meta"}
        except Exception as err:  # noqa: BLE001
            raise StoreError(f"{index}: unreadable store index ({one_line(err)})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise StoreError(f"{index}: store format {found}, expected "
                             f"{FORMAT_VERSION}; build the store again")
        name = meta.get("data")
        if not isinstance(name, str) or Path(name).name != name or meta.get("dtype") not in \
                _DTYPES:
            raise StoreError(f"{index}: unreadable store index (data file {name!r}, dtype "
                             f"{meta.get('dtype')!r})")
        return meta, arrays

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.clip_ids)

    def __repr__(self) -> str:
        return (f"WaveformStore({str(self.path)!r}, clips={len(self)}, classes="
                f"{len(self.label_set)}, {self.sample_rate} Hz, {self.dtype}, "
                f"{self._total / self.sample_rate / 3600:.2f} h)")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # every process maps the file itself (a spawned one opens it by name again)
        state["_data"], state["_pid"], state["_handle"] = None, None, None
        return state

    def _mapped(self) -> np.ndarray:
        if self._data is None or self._pid != os.getpid():
            if self._handle is None:
                try:
                    self._handle = _Handle(self.data_path)
                except FileNotFoundError:
                    raise StoreError(f"{self.data_path}: missing, a newer build replaced the "
                                     "store since it was opened; open it again") from None
            self._data = _map(self._handle.fd, self._total, _DTYPES[self.dtype])
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

    # ------------------------------------------------------------ checksums
    def damaged(self, progress: bool = False) -> List[int]:
        """The clips (indices, in order) whose stored samples fail their CRC-32; reads the
        whole data file (CRC-32 costs 0.15 s per GiB on one core, measured; reading from
        disk usually costs more)."""
        from tqdm.auto import tqdm

        data = self._mapped()
        bad = []
        for k in tqdm(range(len(self)), desc=f"verify {self.name}", unit="clip",
                      disable=not progress):
            start = int(self.offsets[k])
            if zlib.crc32(data[start:start + int(self.lengths[k])]) != int(self.crcs[k]):
                bad.append(k)
        return bad

    def verify(self, progress: bool = False) -> None:
        """Read every clip and check its CRC-32; :class:`StoreError` naming the data file,
        the first bad clip and how many are bad otherwise."""
        bad = self.damaged(progress)
        if bad:
            raise StoreError(f"{self.data_path}: {len(bad)} of {len(self)} clips fail their "
                             f"checksum (first: clip {self.clip_ids[bad[0]]}); the store is "
                             "damaged, build it again")

    # ------------------------------------------------------------ freshness
    def changes(self, clips: ClipList, sample_rate: Optional[int] = None,
                dtype: Optional[str] = None) -> List[str]:
        """Why this store does not hold ``clips`` (one line each; empty when it does): other
        settings, class list, clips or labels, a source file whose size or mtime changed, or a
        skipped file that changed (size, mtime, ctime or inode) or appeared. The stored
        samples are not read (see :meth:`verify`)."""
        out: List[str] = []
        if sample_rate is not None and sample_rate != self.sample_rate:
            out.append(f"sample rate {self.sample_rate} != {sample_rate}")
        if dtype is not None and dtype != self.dtype:
            out.append(f"dtype {self.dtype} != {dtype}")
        if tuple(clips.label_set.mids) != tuple(self.label_set.mids):
            out.append("class list changed")
        for clip in clips.clips:  # a skipped (bad) file replaced or restored since
            ident = self.skipped_files.get(clip.path)
            if ident is not None and _identity_of(clip.path) != ident:
                out.append(f"clip {clip.clip_id}: skipped source {clip.path} changed")
        stored = {cid: k for k, cid in enumerate(self.clip_ids.tolist())}
        wanted = [c for c in clips.clips if c.path not in self.skipped_files]
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
        """True when the store holds exactly ``clips`` from unchanged source files (by the
        index; :meth:`build` also checks every clip's CRC before it calls a store current)."""
        return not self.changes(clips, sample_rate, dtype)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, clips: ClipList, path: PathLike, *, sample_rate: int = 16000,
              dtype: str = "int16", skip_bad: bool = False, num_workers: int = 0,
              progress: bool = True, verify: bool = True) -> "WaveformStore":
        """Decode, resample to ``sample_rate`` mono and store every clip of ``clips`` in the
        folder ``path`` (created), reusing what an existing store there, or an interrupted
        build, holds from unchanged source files; one build of a folder at a time (a second
        waits for the first, then reuses its store).

        Args:
            clips: the split (its ``skipped`` entries go to ``skipped.txt``).
            path: the store's folder, one per split.
            sample_rate: rate of the stored waveforms (the model's front-end rate).
            dtype: ``"int16"`` (per-clip peak scaling) or ``"float16"``.
            skip_bad: leave out clips whose file cannot be decoded and list them in
                ``path/skipped.txt``; otherwise the first one raises :class:`StoreError` naming
                the file (the clips finished before it are kept for the next build).
            num_workers: decoding processes (DataLoader workers; 0 = in this process).
            progress: show a tqdm progress bar.
            verify: before calling a current store up to date, read it all and check every
                clip's CRC (damaged clips are decoded again). CRC-32 runs at 0.15 s per GiB
                (measured, one core), so an FSD50K train split (~8 GiB int16) costs about a
                second from the page cache, and reading it from disk more; all of AudioSet
                (~600 GiB) costs minutes of reading, where ``verify=False`` skips it. Clips
                copied from an old store are checked whatever ``verify`` says.

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
        with _build_lock(path):
            return cls._build_locked(clips, path, sample_rate, dtype, skip_bad, num_workers,
                                     progress, verify)

    @classmethod
    def _build_locked(cls, clips: ClipList, path: Path, sample_rate: int, dtype: str,
                      skip_bad: bool, num_workers: int, progress: bool,
                      verify: bool) -> "WaveformStore":
        old: Optional[WaveformStore] = None
        if (path / INDEX_FILE).exists():
            try:
                old = cls(path)
            except StoreError:
                old = None
        damaged: List[str] = []
        if (old is not None and (skip_bad or not old.skipped)
                and old.is_current(clips, sample_rate, dtype)):
            damaged = [str(old.clip_ids[k]) for k in old.damaged(progress)] if verify else []
            if not damaged:
                _remove_stale(path, keep={old.data_path.name})
                _skipped_report(path, old.skipped)
                old.report = BuildReport(reused=len(old), up_to_date=True,
                                         skipped=list(old.skipped), folder=str(path))
                return old
        # what earlier builds finished: interrupted ones (newest first), then the old store
        sources: List[_Source] = []
        for journal in sorted(path.glob("partial.*.jsonl"), key=lambda p: p.stat().st_mtime_ns,
                              reverse=True):
            src = _Source.of_journal(journal, sample_rate, dtype)
            if src is not None and (old is None or src.data_path != old.data_path):
                sources.append(src)
        changed: List[str] = []
        by_id: Dict[str, int] = {}
        if old is not None and old.sample_rate == sample_rate and old.dtype == dtype:
            sources.append(_Source.of_store(old, set(damaged)))
            by_id = {cid: k for k, cid in enumerate(old.clip_ids.tolist())}
        plan: Dict[str, Tuple[_Source, _Row]] = {}
        for clip in clips.clips:
            try:
                now = _stat(clip.path)
            except OSError:
                continue
            k = by_id.get(clip.clip_id)
            if k is not None and str(old.paths[k]) == clip.path and \
                    now != (int(old.sizes[k]), int(old.mtimes[k])):
                changed.append(clip.clip_id)
            for src in sources:
                row = src.rows.get(clip.clip_id)
                if row is not None and row.path == clip.path and (row.size, row.mtime) == now:
                    plan[clip.clip_id] = (src, row)
                    break
        used = {id(src) for src, _ in plan.values()}
        keep = {old.data_path.name} if old is not None else set()
        for src in sources:
            if id(src) in used:
                keep.add(src.data_path.name)
                if src.journal is not None:
                    keep.add(src.journal.name)
        _remove_stale(path, keep)  # unused partial builds, dead builders' temporary files
        token = f"{os.getpid()}.{secrets.token_hex(4)}"
        report = BuildReport(skipped=list(clips.skipped), changed=changed, damaged=damaged,
                             folder=str(path))
        data_path, entries, bad_files = cls._write_data(path, token, clips, plan, sample_rate,
                                                        dtype, skip_bad, num_workers, progress,
                                                        report)
        fsync_dir(path)  # the data file's name on disk before the index naming it
        cls._write_index(path, clips, entries, bad_files, report.skipped, sample_rate, dtype,
                         data_path.name)
        fsync_dir(path)
        _skipped_report(path, report.skipped)
        _remove_stale(path, keep={data_path.name})  # the old data, this build's journal
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
    def _write_data(cls, path: Path, token: str, clips: ClipList,
                    plan: Dict[str, Tuple[_Source, _Row]], sample_rate: int, dtype: str,
                    skip_bad: bool, num_workers: int, progress: bool, report: BuildReport
                    ) -> Tuple[Path, List[_Entry], Dict[str, Tuple[int, int, int, int]]]:
        """Write every clip of ``clips`` to the new data file ``waveforms.<token>.raw``, in
        order, copying those in ``plan`` (checked by CRC) and decoding the others, and journal
        each finished clip in ``partial.<token>.jsonl``. A partial build whose clips have all
        been copied is removed (after the journal recorded the copies). On an error or an
        interruption the journal is synced and both files stay for the next build (removed
        when nothing was finished). Returns the data file, its entries and the skipped files'
        :func:`_identity`."""
        from tqdm.auto import tqdm

        data_path, journal_path = path / _data_name(token), path / f"partial.{token}.jsonl"
        store_dtype = _DTYPES[dtype]
        decoded = cls._decoded([c for c in clips.clips if c.clip_id not in plan], sample_rate,
                               dtype, num_workers)
        left: Dict[int, int] = {}  # copies still to make from each source
        for src, _ in plan.values():
            left[id(src)] = left.get(id(src), 0) + 1
        entries: List[_Entry] = []
        bad_files: Dict[str, Tuple[int, int, int, int]] = {}
        pending: List[str] = []
        bar = tqdm(total=len(clips.clips), desc=f"store {clips.name}", unit="clip",
                   disable=not progress)
        data = open(data_path, "wb")
        try:
            journal = open(journal_path, "wb")
        except BaseException:
            data.close()
            data_path.unlink(missing_ok=True)
            raise

        def sync() -> None:  # the samples on disk before the journal lines that name them
            data.flush()
            os.fsync(data.fileno())
            journal.write("".join(pending).encode("utf-8"))
            pending.clear()
            journal.flush()
            os.fsync(journal.fileno())

        finished = False
        try:
            pending.append(json.dumps({"format": FORMAT_VERSION, "data": data_path.name,
                                       "sample_rate": sample_rate, "dtype": dtype,
                                       "pid": os.getpid()}) + "\n")
            sync()
            offset, synced = 0, time.monotonic()
            for clip in clips.clips:
                samples: Optional[np.ndarray] = None
                got = plan.get(clip.clip_id)
                if got is not None:
                    src, row = got
                    left[id(src)] -= 1
                    view = src.samples(row)
                    if zlib.crc32(view) == row.crc:
                        samples, scale, size, mtime, crc = view, row.scale, row.size, \
                            row.mtime, row.crc
                        report.reused += 1
                        if src.journal is not None:
                            report.resumed += 1
                    else:  # damaged since it was written: decode it again
                        report.damaged.append(clip.clip_id)
                if samples is None:
                    _, wav, scale, ident, error = next(decoded) if got is None else \
                        _Decode([clip], sample_rate, dtype)[0]
                    if error is not None:
                        if not skip_bad:
                            raise StoreError(error)
                        report.skipped.append(Skipped(clip.path, error))
                        bad_files[clip.path] = tuple(int(v) for v in ident)
                    else:
                        samples = np.ascontiguousarray(np.asarray(wav), dtype=store_dtype)
                        size, mtime, crc = int(ident[0]), int(ident[1]), zlib.crc32(samples)
                        scale = float(scale)
                        report.decoded += 1
                if samples is not None:
                    data.write(samples)
                    entries.append(_Entry(clip, _Row(clip.path, offset, len(samples), scale, size,
                                                   mtime, crc)))
                    pending.append(json.dumps([clip.clip_id, clip.path, offset, len(samples),
                                               scale, size, mtime, crc]) + "\n")
                    offset += len(samples)
                bar.update()
                if got is not None and left[id(got[0])] == 0 and got[0].journal is not None:
                    sync()  # its clips are ours now
                    got[0].remove()
                    synced = time.monotonic()
                elif time.monotonic() - synced >= JOURNAL_SECONDS:
                    sync()
                    synced = time.monotonic()
            sync()
            finished = True
        except BaseException:
            with contextlib.suppress(Exception):
                sync()  # keep what was finished for the next build
            raise
        finally:
            bar.close()
            decoded.close()
            data.close()
            journal.close()
            if not finished and not entries:
                data_path.unlink(missing_ok=True)
                journal_path.unlink(missing_ok=True)
        return data_path, entries, bad_files

    @staticmethod
    def _write_index(path: Path, clips: ClipList, entries: List[_Entry],
                     bad_files: Dict[str, Tuple[int, int, int, int]], skipped: List[Skipped],
                     sample_rate: int, dtype: str, data_name: str) -> None:
        ls = clips.label_set
        total = sum(e.row.length for e in entries)
        meta = {"format": FORMAT_VERSION, "name": clips.name, "sample_rate": sample_rate,
                "dtype": dtype, "label_set": ls.name, "mids": list(ls.mids),
                "names": list(ls.names), "data": data_name, "clips": len(entries),
                "data_bytes": total * _DTYPES[dtype].itemsize,
                "skipped": [[s.where, s.reason] for s in skipped]}
        labels = [list(e.clip.labels) for e in entries]
        ptr = np.zeros(len(entries) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(x) for x in labels])
        arrays = dict(
            meta=np.array(json.dumps(meta)),
            clip_ids=np.array([e.clip.clip_id for e in entries], dtype=str),
            paths=np.array([e.clip.path for e in entries], dtype=str),
            offsets=np.array([e.row.offset for e in entries], dtype=np.int64),
            lengths=np.array([e.row.length for e in entries], dtype=np.int64),
            scales=np.array([e.row.scale for e in entries], dtype=np.float64),
            sizes=np.array([e.row.size for e in entries], dtype=np.int64),
            mtimes=np.array([e.row.mtime for e in entries], dtype=np.int64),
            crcs=np.array([e.row.crc for e in entries], dtype=np.int64),
            label_flat=np.array([c for x in labels for c in x], dtype=np.int64),
            label_ptr=ptr,
            skip_paths=np.array(list(bad_files), dtype=str),
            skip_stats=np.array(list(bad_files.values()), dtype=np.int64).reshape(-1, 4),
        )
        _write_atomic(path / INDEX_FILE, lambda f: np.savez(f, **arrays))
