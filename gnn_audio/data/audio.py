"""Reading audio files: soundfile (libsndfile) for decoding, torchaudio for resampling.

Every way a file can be unusable gives one :class:`AudioError` whose message is one line that
starts with the file's path: a missing, empty (0-byte), non-audio, zero-length or truncated
file, a file libsndfile fails to decode, and NaN or infinite samples in a float file. Silence
is not an error.

Truncation is detected three ways, since libsndfile reports it differently per format: a WAV /
AIFF header that declares more audio bytes than the file holds (libsndfile then quietly shortens
the stream), fewer frames decoded than the header announced (FLAC, ...), and an Ogg stream that
ends in a partial page or without its end-of-stream page; a decoder error while reading is
reported as a corrupt or truncated file.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import soundfile as sf
import torch
import torchaudio.transforms as T

from gnn_audio.types import PathLike

__all__ = ["AudioError", "AudioInfo", "audio_info", "load_audio", "resample"]

# libsndfile's log line for a WAV / W64 / RF64 ``data`` or AIFF ``SSND`` chunk whose declared
# size exceeds what the file holds: ``data : 176400 (should be 88178)``
_CHUNK_SIZE = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_SIZE = (0, 0xFFFFFFFF)  # streaming writers that never patch the header write these
# libsndfile's log lines for an Ogg stream cut short (a partial last page, no end-of-stream page)
_OGG_CUT = ("lacks an end-of-stream bit", "Junk after the last page")


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

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def _one_line(err: BaseException) -> str:
    text = getattr(err, "error_string", None) or str(err)
    return " ".join(text.split()).rstrip(".")


def _open(path: str) -> sf.SoundFile:
    """Open ``path`` with soundfile and check what the header tells (not the samples)."""
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        reason = _one_line(err)
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
    """Sample rate, frames and channels of an audio file, from its header only.

    Raises:
        AudioError: for a missing, empty, non-audio, zero-length file or one whose header
            shows it is truncated (decoding errors and NaN samples need :func:`load_audio`).
    """
    p = os.fspath(path)
    with _open(p) as f:
        return AudioInfo(f.samplerate, f.frames, f.channels, f.format, f.subtype)


@lru_cache(maxsize=16)
def _resampler(orig_sr: int, target_sr: int) -> T.Resample:
    # the sinc kernel (441 phases for 44.1 -> 16 kHz) costs more to build than to apply:
    # build it once per rate pair (measured 176 of 243 ms per 4.7-s clip when rebuilt)
    return T.Resample(orig_sr, target_sr)


def resample(waveform: torch.Tensor, orig_sr: int, target_sr: int) -> torch.Tensor:
    """Band-limited sinc resampling of ``[..., T]`` (a no-op when the rates match), with
    :func:`torchaudio.functional.resample`'s default filter; the filter of each rate pair is
    built once per process."""
    if orig_sr == target_sr:
        return waveform
    resampler = _resampler(int(orig_sr), int(target_sr))
    with torch.no_grad():
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
        expected, sr = f.frames, f.samplerate
        try:
            data = f.read(dtype="float32", always_2d=True)  # [T, C]
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"{p}: corrupt or truncated file, decoding failed "
                             f"({_one_line(err)})") from None
    if data.shape[0] < expected:
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
