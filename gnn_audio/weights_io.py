"""Weight files: read safely (``torch.load(weights_only=True)`` with one-line errors that name
the file; torch's own errors for a text, empty or truncated file are an ``IndexError``,
``EOFError``, ``KeyError`` or a page-long ``UnpicklingError``), written atomically, and
verified when read back.

**Checksums.** A dictionary written by :func:`save_weights_file` carries
``payload_checksum``: a BLAKE2b digest of its whole content (:func:`payload_checksum`: every
key, value, tensor dtype, shape and byte, in order). :func:`load_weights_file` recomputes it
and refuses a file whose content changed after it was written (a flipped bit on a disk or in a
copy that torch's zip reader does not notice: it checks the archive's structure, not the
tensors' bytes) in one line naming the file. Files without the key (written by other
programs or by gnn_audio before 0.5) load unverified. The digest runs at memory speed:
``benchmarks/checkpoint_checksum.py`` measures it next to ``torch.save`` / ``torch.load``.
"""
from __future__ import annotations

import _compat_pickle
import hashlib
import os
import pickle
import types
from typing import Any, List, Tuple

import torch

from gnn_audio.files import atomic_open
from gnn_audio.types import PathLike

__all__ = ["load_weights_file", "load_tensors_only", "ForeignObject", "save_weights_file",
           "payload_checksum", "CHECKSUM_KEY"]

#: the key of a saved dictionary that holds its :func:`payload_checksum`
CHECKSUM_KEY = "payload_checksum"


def _feed(digest, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        t = (t.cpu() if t.device.type != "cpu" else t).contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        digest.update(f"D{len(obj)};".encode())
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for value in obj:
            _feed(digest, value)
    elif isinstance(obj, bytes):
        digest.update(f"B{len(obj)};".encode() + obj)
    else:  # None, bool, int, float, str, torch.dtype ...: their repr is exact
        text = repr(obj)
        digest.update(f"{type(obj).__name__}{len(text)};{text}".encode())


def payload_checksum(obj: Any) -> str:
    """A BLAKE2b-128 hex digest of ``obj``'s content: nested dicts (keys in order), lists,
    tuples, plain values and tensors (dtype, shape, bytes; CUDA tensors are copied to the CPU
    one at a time)."""
    digest = hashlib.blake2b(digest_size=16)
    _feed(digest, obj)
    return digest.hexdigest()


def _verified(obj: Any, path: str, kind: str) -> Any:
    if not isinstance(obj, dict) or CHECKSUM_KEY not in obj:
        return obj
    obj = dict(obj)
    stored = obj.pop(CHECKSUM_KEY)
    if payload_checksum(obj) != stored:
        raise ValueError(f"{path}: damaged {kind}: its content does not match the checksum "
                         "written with it (changed on disk or in a copy); use another copy")
    return obj


def _detail(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for i, line in enumerate(lines):  # the weights-only unpickler's reason, where it gives one
        if "WeightsUnpickler error:" in line:
            reason = line.split("WeightsUnpickler error:", 1)[1].strip()
            reason = reason or (lines[i + 1] if i + 1 < len(lines) else "")
            return reason.split(". ")[0]
    first = lines[0].split(". ")[0] if lines else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def load_weights_file(path: PathLike, kind: str) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, its checksum verified and
    removed (see the module docstring); ``kind`` names what the file should be (``"gnn_audio
    checkpoint"``) in the messages.

    Raises:
        FileNotFoundError: no such file.
        pickle.UnpicklingError: the file holds objects (classes, functions) that
            ``weights_only`` loading refuses to create.
        ValueError: anything else torch cannot read (text, empty or truncated files), and a
            file whose content does not match its checksum.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch fails on non-checkpoint files in many ways
        detail = _detail(e)
        if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in detail:
            raise pickle.UnpicklingError(f"{path} is not a {kind}: it holds objects that "
                                         f"weights_only loading refuses ({detail})") from None
        raise ValueError(f"{path} is not a {kind}: torch.load cannot read it "
                         f"({detail})") from None
    return _verified(obj, path, kind)


class ForeignObject:
    """What :func:`load_tensors_only` puts where a file holds an object of a class it does not
    create (a pickled model, an optimizer factory, a Lightning ``AttributeDict``): an inert
    record of what the file gave (``args``, ``kwargs``, ``state``, and ``items`` / ``values``
    for dict / list subclasses), with no code of that class run. Its class name is the
    foreign global's (``type(obj).__qualname__``)."""

    # pickle creates instances with __new__ alone (NEWOBJ) or by a call (REDUCE): both end here
    def __new__(cls, *args: Any, **kwargs: Any) -> "ForeignObject":
        obj = super().__new__(cls)
        obj.__dict__.update(args=args, kwargs=kwargs, items={}, values=[], state=None)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses (SETITEMS)
        self.__dict__["items"][key] = value

    def append(self, value: Any) -> None:  # list subclasses (APPENDS)
        self.__dict__["values"].append(value)

    def extend(self, values: Any) -> None:
        self.__dict__["values"].extend(values)

    def __repr__(self) -> str:
        return f"<foreign {type(self).__qualname__}>"


def _tensors_only_pickle_module(replaced: List[str]) -> types.ModuleType:
    """A pickle module whose unpickler creates only what ``torch.load(weights_only=True)``
    allows (tensors, storages, containers, plain values) and a :class:`ForeignObject`
    subclass for every other global (``replaced`` collects their names)."""
    from torch._weights_only_unpickler import _get_allowed_globals

    allowed = _get_allowed_globals()
    stubs: dict = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            # Python 2 names (protocol 2 writes ``__builtin__.set``), mapped as pickle does
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            else:
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
            key = f"{module}.{name}"
            if key in allowed:
                return allowed[key]
            if key not in stubs:
                replaced.append(key)
                stubs[key] = type(key, (ForeignObject,), {"__qualname__": key})
            return stubs[key]

    module = types.ModuleType("gnn_audio_tensors_only_pickle")
    module.Unpickler = Unpickler  # type: ignore[attr-defined]
    module.load = pickle.load  # type: ignore[attr-defined]  (torch checks it exists)
    return module


def load_tensors_only(path: PathLike, kind: str) -> Tuple[Any, List[str]]:
    """``(content, replaced)``: a file written by another program (a PyTorch Lightning
    ``.ckpt`` whose ``hyper_parameters`` hold pickled modules and factories) read for its
    tensors. Tensors, containers and plain values are created as ``weights_only`` loading
    creates them; every other object becomes an inert :class:`ForeignObject` (``replaced``
    names their classes), so nothing in the file runs. Errors as :func:`load_weights_file`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file not found: {path}")
    replaced: List[str] = []
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False,
                         pickle_module=_tensors_only_pickle_module(replaced))
    except Exception as e:  # noqa: BLE001 - torch fails on non-checkpoint files in many ways
        raise ValueError(f"{path} is not a {kind}: torch.load cannot read it "
                         f"({_detail(e)})") from None
    return _verified(obj, path, kind), replaced


def save_weights_file(obj: Any, path: PathLike) -> None:
    """``torch.save(obj)`` to a temporary name in the same folder, then rename over ``path``:
    a reader (or a run killed while writing) never sees a partial file. A dictionary gets its
    :func:`payload_checksum` under :data:`CHECKSUM_KEY`. A failed write (a full disk) raises
    ``OSError`` naming ``path``, and ``path`` keeps its previous content."""
    if isinstance(obj, dict):
        payload = {k: v for k, v in obj.items() if k != CHECKSUM_KEY}
        obj = {**payload, CHECKSUM_KEY: payload_checksum(payload)}
    with atomic_open(path) as f:
        torch.save(obj, f)
