"""Reading audio files: soundfile (libsndfile) for decoding, torchaudio for resampling.

:func:`load_audio` decodes a whole file; :class:`AudioBlocks` reads one block by block (a
long recording never in memory at once) and resamples it with :class:`StreamResampler`, whose
blocks put together equal :func:`resample` of the whole signal.

Every way a file can be unusable gives one :class:`AudioError` whose message is one line that
starts with the file's path: a missing, empty (0-byte), non-audio, zero-length or truncated
file, a directory, FIFO, device or socket, a broken symbolic link or a loop of them, a file
that cannot be read (permissions), a file libsndfile fails to decode, and NaN or infinite
samples in a float file. Silence is not an error.

Truncation is detected three ways, since libsndfile reports it differently per format: a WAV /
AIFF header that declares more audio bytes than the file holds (libsndfile then quietly shortens
the stream), fewer frames decoded than the header announced (PCM and FLAC, whose header counts
are exact), and an Ogg stream that ends in a partial page or without its end-of-stream page; a
decoder error while reading is reported as a corrupt or truncated file.

The frame count of a lossy compressed file (MP3, Ogg Vorbis, Opus) is an estimate: for MP3,
libsndfile computes it from the bit rate, and real encoders' files decode to fewer frames than
it says (150,912 of an estimated 152,064, one MPEG frame less). For these formats the decoder
is trusted: what it returns is the file's audio, and only a decoder error makes the file
corrupt or truncated (:attr:`AudioInfo.estimated` tells which kind of count a header gave).
libsndfile never decodes past its own estimate, so a VBR MP3 without a Xing / Info header
whose estimate is short is read short; no other decoder is at hand to tell.
"""
from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Iterator, Optional

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio.transforms as T

from gnn_audio.errors import one_line
from gnn_audio.threads import one_thread
from gnn_audio.types import PathLike

__all__ = ["AudioError", "AudioInfo", "audio_info", "load_audio", "resample",
           "resampled_length", "StreamResampler", "AudioBlocks"]

# libsndfile's log line for a WAV / W64 / RF64 ``data`` or AIFF ``SSND`` chunk whose declared
# size exceeds what the file holds: ``data : 176400 (should be 88178)``
_CHUNK_SIZE = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_SIZE = (0, 0xFFFFFFFF)  # streaming writers that never patch the header write these
# libsndfile's log lines for an Ogg stream cut short (a partial last page, no end-of-stream page)
_OGG_CUT = ("lacks an end-of-stream bit", "Junk after the last page")
# lossy codecs whose frame count in libsndfile is an estimate, not a header field
_ESTIMATED_COUNT = ("MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "VORBIS", "OPUS")
_NOT_REGULAR = ((stat.S_ISFIFO, "is a FIFO (named pipe), not an audio file"),
                (stat.S_ISCHR, "is a character device, not an audio file"),
                (stat.S_ISBLK, "is a block device, not an audio file"),
                (stat.S_ISSOCK, "is a socket, not an audio file"))


class AudioError(ValueError):
    """An audio file that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says (see :func:`audio_info`)."""

    sample_rate: int
    frames: int
    channels: int
    format: str
    subtype: str
    #: ``frames`` is the codec's estimate (MP3, Vorbis, Opus), not an exact header count
    estimated: bool = False

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def _check_path(path: str) -> None:
    """What is at ``path`` when it is not a non-empty, readable regular file: one line."""
    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise AudioError(f"{path}: symbolic link loop (too many levels of symbolic "
                             "links)") from None
        if err.errno == errno.ENOENT and os.path.islink(path):
            raise AudioError(f"{path}: broken symbolic link (to {os.readlink(path)}, "
                             "which does not exist)") from None
        if err.errno == errno.ENOENT:
            raise AudioError(f"{path}: no such file") from None
        raise AudioError(f"{path}: cannot read it ({err.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{path}: is a directory, not an audio file")
    for test, what in _NOT_REGULAR:
        if test(st.st_mode):
            raise AudioError(f"{path}: {what}")
    if st.st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: cannot read it (permission denied)")


def _estimated(f: sf.SoundFile) -> bool:
    """Whether libsndfile's frame count of ``f`` is an estimate (lossy codecs)."""
    return f.subtype in _ESTIMATED_COUNT


def _open(path: str) -> sf.SoundFile:
    """Open ``path`` with soundfile and check what the header tells (not the samples)."""
    _check_path(path)
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        reason = one_line(err).rstrip('.')
        what = ("not an audio file libsndfile reads" if "not recognised" in reason.lower()
                else "corrupt or truncated file, cannot open it")
        raise AudioError(f"{path}: {what} ({reason})") from None
    try:
        _check_header(path, f)
    except AudioError:
        f.close()
        raise
    return f


def _check_header(path: str, f: sf.SoundFile) -> None:
    if f.samplerate <= 0 or f.channels <= 0:
        raise AudioError(f"{path}: invalid header ({f.samplerate} Hz, {f.channels} channels)")
    log = f.extra_info
    for declared, held in _CHUNK_SIZE.findall(log):
        declared, held = int(declared), int(held)
        if declared > held and declared not in _UNKNOWN_SIZE:
            raise AudioError(f"{path}: truncated file (header declares {declared} bytes of "
                             f"audio, the file holds {held})")
    if f.format == "OGG" and any(marker in log for marker in _OGG_CUT):
        raise AudioError(f"{path}: truncated file (the Ogg stream ends without its "
                         "end-of-stream page)")
    if f.frames <= 0:
        raise AudioError(f"{path}: zero-length audio (0 frames)")


def audio_info(path: PathLike) -> AudioInfo:
    """Sample rate, frames and channels of an audio file, from its header only (for MP3,
    Vorbis and Opus, ``frames`` is the codec's estimate: :attr:`AudioInfo.estimated`).

    Raises:
        AudioError: for a missing, empty, non-audio, zero-length file or one whose header
            shows it is truncated (decoding errors and NaN samples need :func:`load_audio`).
    """
    p = os.fspath(path)
    with _open(p) as f:
        return AudioInfo(f.samplerate, f.frames, f.channels, f.format, f.subtype,
                         _estimated(f))


@lru_cache(maxsize=16)
def _resampler(orig_sr: int, target_sr: int) -> T.Resample:
    # the sinc kernel (441 phases for 44.1 -> 16 kHz) costs more to build than to apply:
    # build it once per rate pair (measured 176 of 243 ms per 4.7-s clip when rebuilt)
    return T.Resample(orig_sr, target_sr)


def resample(waveform: torch.Tensor, orig_sr: int, target_sr: int) -> torch.Tensor:
    """Band-limited sinc resampling of ``[..., T]`` (a no-op when the rates match), with
    :func:`torchaudio.functional.resample`'s default filter; the filter of each rate pair is
    built once per process. Runs on one CPU thread (the same bits in every process)."""
    if orig_sr == target_sr:
        return waveform
    resampler = _resampler(int(orig_sr), int(target_sr))
    with torch.no_grad(), one_thread():
        return resampler(waveform.to(torch.float32))


def load_audio(path: PathLike, sample_rate: Optional[int] = 16000,
               mono: bool = True) -> torch.Tensor:
    """Decode an audio file to float32 ``[channels, T]`` at ``sample_rate``.

    Args:
        path: any format libsndfile reads: 8/16/24/32-bit and float wav, FLAC, Ogg Vorbis, ...
        sample_rate: output rate; the file is resampled with
            :func:`torchaudio.functional.resample`. ``None`` keeps the file's own rate.
        mono: average the channels to one (as PSLA / AST / ATGNN do).

    Raises:
        AudioError: one line naming the file, for a missing, empty (0-byte), non-audio,
            zero-length, truncated or undecodable file and for NaN / infinite samples.
    """
    p = os.fspath(path)
    with _open(p) as f:
        expected, sr, estimated = f.frames, f.samplerate, _estimated(f)
        try:
            data = f.read(dtype="float32", always_2d=True)  # [T, C]
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{p}: corrupt or truncated file, decoding failed "
                             f"({one_line(err).rstrip('.')})") from None
    if data.shape[0] < expected and not estimated:
        raise AudioError(f"{p}: truncated file (decoded {data.shape[0]} of {expected} frames)")
    if data.shape[0] == 0:
        raise AudioError(f"{p}: zero-length audio (0 frames)")
    finite = np.isfinite(data)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        raise AudioError(f"{p}: {bad.size} frames with NaN or infinite samples "
                         f"(first at {bad[0] / sr:.3f} s)")
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    if mono and wav.size(0) > 1:
        wav = wav.mean(dim=0, keepdim=True)
    return wav if sample_rate is None else resample(wav, sr, sample_rate)


def resampled_length(num_samples: int, orig_sr: int, target_sr: int) -> int:
    """Samples :func:`resample` returns for ``num_samples`` at ``orig_sr``:
    ``ceil(num_samples * target_sr / orig_sr)``, in exact integer arithmetic."""
    if orig_sr == target_sr:
        return int(num_samples)
    return -(-int(num_samples) * int(target_sr) // int(orig_sr))


class StreamResampler:
    """:func:`resample` of a signal that arrives in blocks.

    Feed ``[channels, t]`` blocks to :meth:`push` and call :meth:`finish` after the last one:
    the outputs put together are :func:`resample` of the whole signal (the same sinc kernel
    applied at the same positions, and the same length), up to float rounding. It keeps only
    the kernel's support of input between calls (a few dozen samples).

    Args:
        orig_sr: rate of the input blocks.
        target_sr: output rate.
    """

    def __init__(self, orig_sr: int, target_sr: int) -> None:
        self.orig_sr, self.target_sr = int(orig_sr), int(target_sr)
        if self.orig_sr <= 0 or self.target_sr <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
        self.num_in = 0  # input samples pushed so far
        self.num_out = 0  # output samples returned so far
        self._done = False
        self._channels: Optional[int] = None
        self._buffer: Optional[torch.Tensor] = None
        if self.orig_sr != self.target_sr:
            r = _resampler(self.orig_sr, self.target_sr)
            self._kernel, self._width = r.kernel, r.width
            self._orig, self._new = self.orig_sr // r.gcd, self.target_sr // r.gcd

    def _run(self, final: bool) -> torch.Tensor:
        # torchaudio pads the whole signal with ``width`` zeros in front and ``width + orig``
        # behind, then convolves with stride ``orig``: output group i reads padded samples
        # [i * orig, i * orig + kernel size). The buffer holds the padded signal from the
        # first group not yet computed.
        buf = self._buffer
        size = self._kernel.size(-1)
        groups = (buf.size(1) - size) // self._orig + 1 if buf.size(1) >= size else 0
        if groups <= 0:
            return buf.new_zeros(buf.size(0), 0)
        used = buf[:, :(groups - 1) * self._orig + size]
        with torch.no_grad(), one_thread():
            out = F.conv1d(used[:, None], self._kernel.to(buf.dtype), stride=self._orig)
        out = out.transpose(1, 2).reshape(buf.size(0), -1)  # [channels, groups * new]
        self._buffer = buf[:, groups * self._orig:]
        if final:
            out = out[:, :resampled_length(self.num_in, self.orig_sr, self.target_sr)
                      - self.num_out]
        return out

    def push(self, block: torch.Tensor) -> torch.Tensor:
        """``[channels, t]`` input -> the output samples it completes, ``[channels, t']``."""
        if self._done:
            raise RuntimeError("StreamResampler.push after finish")
        block = block.to(torch.float32)
        if block.dim() != 2:
            raise ValueError(f"blocks must be [channels, samples], got {tuple(block.shape)}")
        if self._channels is None:
            self._channels = block.size(0)
        elif block.size(0) != self._channels:
            raise ValueError(f"blocks of {self._channels} channels, then one of "
                             f"{block.size(0)}")
        self.num_in += block.size(1)
        if self.orig_sr == self.target_sr:
            self.num_out += block.size(1)
            return block
        if self._buffer is None:
            self._buffer = block.new_zeros(block.size(0), self._width)
        self._buffer = torch.cat([self._buffer, block], dim=1)
        out = self._run(final=False)
        self.num_out += out.size(1)
        return out

    def finish(self) -> torch.Tensor:
        """The last output samples (``[channels, t']``, possibly empty)."""
        if self._done:
            raise RuntimeError("StreamResampler.finish called twice")
        self._done = True
        if self.orig_sr == self.target_sr or self._buffer is None:
            return torch.zeros(self._channels or 0, 0)
        buf = self._buffer
        self._buffer = torch.cat([buf, buf.new_zeros(buf.size(0), self._width + self._orig)], 1)
        out = self._run(final=True)
        self.num_out += out.size(1)
        self._buffer = None
        return out


class AudioBlocks:
    """An audio file read block by block, down-mixed and resampled on the way: iterating gives
    float32 ``[channels, t]`` tensors at ``sample_rate`` which put together equal
    :func:`load_audio` ``(path, sample_rate, mono)`` (up to float rounding of the resampling),
    while memory stays bounded by ``block_frames``, whatever the file's length.

    The header is checked when the object is made (:func:`audio_info`: a missing, empty,
    non-audio, zero-length or truncated-by-its-header file raises :class:`AudioError` here);
    decoding errors, NaN or infinite samples and a file that ends before its header says raise
    :class:`AudioError` while iterating. Every message is one line naming the file.

    Args:
        path: any file libsndfile reads.
        sample_rate: output rate (``None``: the file's own).
        mono: average the channels to one.
        block_frames: frames decoded per read.

    Attributes:
        info: the :class:`AudioInfo` of the header; for MP3, Vorbis and Opus, whose header
            count is an estimate, ``frames`` is counted by decoding the file once here.
        num_samples: samples per channel the iteration yields in all.
    """

    def __init__(self, path: PathLike, sample_rate: Optional[int] = 16000, mono: bool = True,
                 block_frames: int = 1 << 16) -> None:
        if block_frames < 1:
            raise ValueError(f"block_frames must be >= 1, got {block_frames}")
        self.path = os.fspath(path)
        self.block_frames = int(block_frames)
        self.info = audio_info(self.path)
        if self.info.estimated:  # the windows' positions need the real length: decode once
            self.info = replace(self.info, frames=self._decoded_frames(), estimated=False)
        self.sample_rate = self.info.sample_rate if sample_rate is None else int(sample_rate)
        self.mono = mono
        self.num_samples = resampled_length(self.info.frames, self.info.sample_rate,
                                            self.sample_rate)

    def _decoded_frames(self) -> int:
        decoded = 0
        for data in self._decode():
            decoded += data.shape[0]
        if decoded == 0:
            raise AudioError(f"{self.path}: zero-length audio (0 frames decoded)")
        return decoded

    def _decode(self) -> Iterator[np.ndarray]:
        """The file's ``[t, C]`` float32 blocks as decoded, checked: a decoder error, NaN or
        infinite samples, and fewer frames than an exact header count raise
        :class:`AudioError`."""
        p = self.path
        decoded = 0
        with _open(p) as f:
            expected, sr = f.frames, f.samplerate
            while True:
                try:
                    data = f.read(self.block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as err:
                    raise AudioError(f"{p}: corrupt or truncated file, decoding failed "
                                     f"({one_line(err).rstrip('.')})") from None
                if data.shape[0] == 0:
                    break
                finite = np.isfinite(data)
                if not finite.all():
                    first = decoded + int(np.flatnonzero(~finite.all(axis=1))[0])
                    raise AudioError(f"{p}: NaN or infinite samples (first at "
                                     f"{first / sr:.3f} s)")
                decoded += data.shape[0]
                yield data
                if decoded >= expected:
                    break
        if decoded < self.info.frames and not self.info.estimated:
            raise AudioError(f"{p}: truncated file (decoded {decoded} of {self.info.frames} "
                             "frames)")

    @property
    def channels(self) -> int:
        """Channels of the yielded blocks."""
        return 1 if self.mono else self.info.channels

    def __iter__(self) -> Iterator[torch.Tensor]:
        resampler = StreamResampler(self.info.sample_rate, self.sample_rate)
        for data in self._decode():
            wav = torch.from_numpy(np.ascontiguousarray(data.T))
            if self.mono and wav.size(0) > 1:
                wav = wav.mean(dim=0, keepdim=True)
            out = resampler.push(wav)
            if out.size(1):
                yield out
        out = resampler.finish()
        if out.size(1):
            yield out
