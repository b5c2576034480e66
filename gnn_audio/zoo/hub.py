"""Shareable model folders: ``model.safetensors`` beside ``config.json``, the form timm and
transformers publish on a model hub, loaded without unpickling anything.

``save_pretrained(model, DIR)`` writes a zoo model's weights as safetensors and its whole
bundle (entry point, build arguments with the graph settings and the front-end, architecture
arguments, label names and ids) as JSON; ``from_pretrained(DIR)`` rebuilds the model. A hub
id ``hf-hub:org/name`` (optionally ``@revision``) is fetched with ``huggingface_hub`` when it
is installed (the ``hub`` extra): nothing else here touches the network, and importing this
module does not import ``huggingface_hub``.

``config.json``::

    {"format": "gnn_audio.pretrained", "format_version": 1, "gnn_audio_version": "...",
     "model_name": "atgnn_pyr_s", "build_kwargs": {...}, "arch": {...}, "num_classes": 200,
     "label_names": [...], "label_ids": [...],
     "weights": "model.safetensors", "weights_blake2b": "<hex digest of the file>"}

Writing is atomic per file, ``config.json`` last: it names the digest of the weights it goes
with, so a folder whose weights were replaced, cut or damaged after it was written is refused
in one line when it is read.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Tuple

import torch

import gnn_audio
from gnn_audio.files import atomic_open, atomic_write_text
from gnn_audio.types import PathLike
from gnn_audio.zoo._registry import model_entrypoint
from gnn_audio.zoo.bundle import bundle_of
from gnn_audio.zoo.checkpoints import loaded_labels, load_weights, to_plain

__all__ = ["save_pretrained", "from_pretrained", "read_pretrained", "is_pretrained_source",
           "HUB_PREFIX", "CONFIG_FILE", "WEIGHTS_FILE"]

FORMAT = "gnn_audio.pretrained"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: the prefix of a model-hub id (``hf-hub:org/name`` or ``hf-hub:org/name@revision``)
HUB_PREFIX = "hf-hub:"
_CHUNK = 1 << 22


def _file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def save_pretrained(model: torch.nn.Module, directory: PathLike) -> Path:
    """Write ``model`` (a zoo model) to ``directory`` as ``model.safetensors`` +
    ``config.json`` (see the module docstring); returns the folder. Every tensor is stored
    as its own copy (safetensors refuses tensors that share memory)."""
    from safetensors.torch import save as safetensors_bytes

    bundle = bundle_of(model, "save_pretrained")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    weights = folder / WEIGHTS_FILE
    with atomic_open(weights) as f:
        f.write(safetensors_bytes(state, metadata={"format": FORMAT,
                                                   "format_version": str(FORMAT_VERSION)}))
    config = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "gnn_audio_version": gnn_audio.__version__, "model_name": bundle.name,
              "build_kwargs": to_plain(bundle.build_kwargs), "arch": to_plain(bundle.arch),
              "num_classes": int(bundle.num_classes),
              "label_names": to_plain(bundle.label_names),
              "label_ids": to_plain(bundle.label_ids),
              "weights": WEIGHTS_FILE, "weights_blake2b": _file_digest(weights)}
    atomic_write_text(folder / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return folder


def is_pretrained_source(source: PathLike) -> bool:
    """Whether ``source`` is a hub id or a folder (what :func:`from_pretrained` reads, and
    refuses in one line when the folder holds no model), rather than a checkpoint file."""
    text = os.fspath(source)
    return text.startswith(HUB_PREFIX) or os.path.isdir(text)


def _hub_folder(source: str) -> Path:
    """The local folder of a hub id: ``huggingface_hub.snapshot_download`` of its two files
    (from the local cache only when ``HF_HUB_OFFLINE=1``)."""
    repo = source[len(HUB_PREFIX):]
    repo, _, revision = repo.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ValueError(f"{source}: a hub id is {HUB_PREFIX}org/name[@revision]")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ValueError(f"{source}: loading from a model hub needs huggingface_hub "
                         "(pip install 'gnn-audio[hub]'); local folders need nothing") from None
    try:
        return Path(snapshot_download(repo, revision=revision or None,
                                      allow_patterns=[CONFIG_FILE, WEIGHTS_FILE]))
    except Exception as err:  # noqa: BLE001 - offline, unknown repo, no access: one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{source}: not available ({type(err).__name__}: {first})") from None


def _damaged(where: Path, why: str) -> ValueError:
    return ValueError(f"{where}: damaged gnn_audio model folder: {why}")


def read_pretrained(source: PathLike) -> Tuple[Dict[str, Any], Path]:
    """``(checkpoint, folder)``: the folder (or hub id) read and checked, as a dict in the
    form of :func:`~gnn_audio.zoo.load_checkpoint`'s result (``model_name``,
    ``build_kwargs``, ``arch``, ``num_classes``, ``label_names``, ``label_ids``,
    ``state_dict``). Every problem is a ``ValueError`` (``FileNotFoundError`` for a missing
    folder) in one line naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    text = os.fspath(source)
    folder = _hub_folder(text) if text.startswith(HUB_PREFIX) else Path(text)
    config_path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such model folder")
    if not config_path.is_file():
        raise ValueError(f"{folder}: is a directory, not a gnn_audio model folder (no "
                         f"{CONFIG_FILE}; a training run's best weights are RUN_DIR/best.pt)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _damaged(config_path, f"not JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{config_path}: not a gnn_audio model config (format "
                         f"{config.get('format') if isinstance(config, dict) else None!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{config_path}: model folder format {version!r}; this gnn_audio "
                         f"reads 1 to {FORMAT_VERSION}")
    required = ("model_name", "build_kwargs", "num_classes", "weights", "weights_blake2b")
    missing = [k for k in required if k not in config]
    if missing:
        raise _damaged(config_path, f"no {', '.join(missing)}")
    weights = folder / str(config["weights"])
    if Path(str(config["weights"])).name != str(config["weights"]):
        raise _damaged(config_path, f"weights must be a file in the folder "
                                    f"(got {config['weights']!r})")
    if not weights.is_file():
        raise _damaged(weights, "missing")
    if _file_digest(weights) != config["weights_blake2b"]:
        raise _damaged(weights, f"its content does not match the digest in {CONFIG_FILE} "
                                "(changed or cut after it was written)")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise _damaged(weights, f"not safetensors ({err})") from None
    ckpt = {k: config.get(k) for k in ("model_name", "build_kwargs", "arch", "num_classes",
                                       "label_names", "label_ids")}
    ckpt["state_dict"] = state
    return ckpt, folder


def from_pretrained(source: PathLike, **kwargs: Any) -> torch.nn.Module:
    """Rebuild the model of a folder written by :func:`save_pretrained` (or of a hub id,
    ``hf-hub:org/name[@revision]``) and load its weights: entry point, build arguments,
    front-end and labels come from its ``config.json``; ``kwargs`` override build
    arguments (a mismatch with the weights is one line, as for checkpoints)."""
    ckpt, folder = read_pretrained(source)
    model = model_entrypoint(ckpt["model_name"])(**{**ckpt["build_kwargs"], **kwargs})
    load_weights(model, ckpt, folder / WEIGHTS_FILE)
    bundle = model.bundle
    names, ids = loaded_labels(ckpt, bundle.label_names, bundle.label_ids)
    model.bundle = bundle.replace(label_names=names, label_ids=ids)
    return model
