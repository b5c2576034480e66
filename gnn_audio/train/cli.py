"""The command line of training runs, shared by ``examples/train_fsd50k.py``,
``examples/train_audioset.py`` and ``gnn-audio train``.

``--recipe NAME`` picks a preset; every :class:`~gnn_audio.train.recipe.Recipe` field is an
option of its own (``--lr 1e-4``, ``--epochs 10``, ``--batch-size 48``, ``--precision bf16``,
``--eval-modes crop windows``, ``--model-kwargs '{"drop_path_rate": 0.2}'``), the front-end and
augmentation fields are dotted (``--fbank.target-length 512``, ``--augment.mixup 0``) and
``--fbank-preset`` takes a named front-end. ``--print-recipe`` shows the resolved recipe and
exits. ``--resume RUN_DIR`` continues a stopped run with its own settings.

Exit status: 0 done, 1 a data, checkpoint or training failure (one line naming the file),
2 a usage error.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from gnn_audio.data.augment import AugmentConfig
from gnn_audio.data.features import FbankConfig
from gnn_audio.train.data import DataPaths
from gnn_audio.train.recipe import FBANK_PRESETS, Recipe, get_recipe, list_recipes

__all__ = ["build_parser", "recipe_from_args", "main", "one_line", "summary_line"]

_NONE = ("none", "null")


def one_line(err: BaseException) -> str:
    """The one-line message of ``err``; for an exception re-raised from a DataLoader worker
    (whose message carries the worker's traceback) the original exception's line."""
    text = str(err)
    if "Original Traceback" in text:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else text
        head, sep, rest = last.partition(": ")
        return rest if sep and "." in head and " " not in head else last
    return " ".join(text.split()) or type(err).__name__


def summary_line(results: Dict[str, Any]) -> str:
    """One line: the evaluation mAP per mode next to the label-frequency baseline."""
    scores = ", ".join(f"{mode} {m['mAP']:.4f}" for mode, m in results["eval"].items())
    return (f"eval mAP ({results['eval_clips']} clips, best epoch {results['best_epoch'] + 1}): "
            f"{scores}; label-frequency baseline {results['label_frequency_baseline_mAP']:.4f}; "
            f"run directory {results['run_dir']}")


def _parser_for(tp) -> Any:
    """An argparse ``type`` for a dataclass field annotation (``Optional[X]`` accepts none)."""
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    optional = origin is typing.Union and type(None) in typing.get_args(tp)
    base = args[0] if optional else tp

    def convert(text: str):
        if optional and text.lower() in _NONE:
            return None
        if base is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        return base(text)
    convert.__name__ = getattr(base, "__name__", "value")
    return convert


def _field_types(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


#: one line per option; the defaults shown are the preset's (``--print-recipe``)
_HELP = {
    "model": "zoo model name (gnn-audio models)",
    "model_kwargs": "entry-point keyword arguments as JSON, e.g. '{\"drop_path_rate\": 0.2}'",
    "data": "fsd50k (an FSD50K-layout folder), audioset (CSVs / datafiles) or embeddings",
    "norm_stats": "recipe: the front-end's mean / std; compute: the training split's",
    "sampler": "balanced (PSLA's label-frequency weights) or shuffle",
    "epochs": "training epochs",
    "max_steps": "stop after this many optimiser steps (none: run all epochs)",
    "batch_size": "clips per optimiser step over all ranks",
    "lr": "Adam learning rate",
    "betas": "Adam betas (two values)",
    "weight_decay": "Adam weight decay",
    "warmup_steps": "linear learning-rate warm-up over this many steps",
    "lr_decay_start": "first epoch (0-based) with a decayed learning rate (none: constant)",
    "lr_decay_every": "epochs between learning-rate decays",
    "lr_decay": "factor of each decay",
    "clip_grad_norm": "clip the gradient norm to this value (none: no clipping)",
    "precision": "fp32, bf16 (autocast) or fp16 (autocast with a gradient scaler)",
    "channels_last": "channels-last weights and inputs",
    "compile": "torch.compile the training forward",
    "sync_bn": "SyncBatchNorm across DDP ranks (GPUs only)",
    "eval_modes": "crop and/or windows (sliding windows, max-pooled); the first picks the "
                  "best epoch",
    "window_hop": "hop between evaluation windows, as a fraction of a window",
    "eval_batch_size": "windows per evaluation forward",
    "average_from": "average the weights of every epoch from this one (0-based; none: off)",
    "label_graph": "AT-GCN label graph: both, none, eq6, eq7, binary or ontology",
    "tau": "AT-GCN threshold tau (eq. 6)",
    "p": "AT-GCN neighbour weight p (eq. 7)",
    "glove": "GloVe text file for AT-GCN's label embeddings",
    "pretrained_vig": "Vision GNN ImageNet checkpoint to initialise the ATGNN backbone",
    "init_from": "gnn_audio checkpoint to fine-tune from (shared labels keep their rows)",
    "freeze_backbone_epochs": "train only the head and per-label tensors for this many epochs",
    "num_workers": "DataLoader worker processes per rank",
    "seed": "random seed",
    "log_every": "steps between TensorBoard loss points",
    "data_dir": "FSD50K-layout folder (FSD50K.ground_truth/, *_audio/)",
    "store_dir": "folder of the waveform stores (default DATA_DIR/gnn_audio_stores)",
    "audio_dir": "folder of the AudioSet audio named in the segment CSVs",
    "class_csv": "class list index,mid,display_name (default: AudioSet's)",
    "skip_bad": "skip unusable rows and files (listed in the store's skipped.txt)",
    "store_workers": "processes decoding audio into the stores",
}


def _help(name: str) -> str:
    if name in _HELP:
        return _HELP[name]
    split, _, kind = name.partition("_")
    if kind in ("csv", "datafile", "records") and split in ("train", "val", "eval"):
        return {"csv": f"AudioSet segment CSV of the {split} split",
                "datafile": f"JSON datafile of the {split} split",
                "records": f"embedding TFRecords (file or glob) of the {split} split"}[kind]
    return name.replace("_", " ")


def _add_dataclass_options(group, cls, prefix: str = "", skip=()) -> None:
    types = _field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = types[f.name]
        flag = "--" + prefix + f.name.replace("_", "-")
        dest = prefix + f.name
        origin = typing.get_origin(tp)
        text = _help(f.name) if not prefix else f"{cls.__name__}.{f.name}"
        if tp is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=text)
        elif origin is tuple:
            item = typing.get_args(tp)[0]
            group.add_argument(flag, dest=dest, nargs="+", type=item, default=argparse.SUPPRESS,
                               metavar=f.name.upper(), help=text)
        elif origin is dict or tp is dict:
            group.add_argument(flag, dest=dest, type=json.loads, default=argparse.SUPPRESS,
                               metavar="JSON", help=text)
        else:
            group.add_argument(flag, dest=dest, type=_parser_for(tp), default=argparse.SUPPRESS,
                               metavar=f.name.upper(), help=text)


def build_parser(prog: str = "gnn-audio train", default_recipe: str = "atgnn_fsd50k",
                 description: Optional[str] = None) -> argparse.ArgumentParser:
    from gnn_audio.cli import OneLineParser

    p = OneLineParser(prog=prog, description=description or __doc__.split("\n\n")[0],
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--recipe", default=default_recipe, choices=list_recipes(),
                   help=f"the preset to start from (default {default_recipe})")
    g.add_argument("--run-dir", default=None,
                   help="run directory (default runs/RECIPE-YYYYmmdd-HHMMSS)")
    g.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last finished epoch")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("--print-recipe", action="store_true",
                   help="print the resolved recipe as JSON and exit")
    g.add_argument("--eval-mode", choices=("crop", "windows", "both"), default=None,
                   help="shorthand for --eval-modes (both: crop windows)")
    g = p.add_argument_group("recipe (each overrides the preset)")
    _add_dataclass_options(g, Recipe, skip=("name", "fbank", "augment"))
    g.add_argument("--fbank-preset", choices=sorted(FBANK_PRESETS), default=None,
                   help="a named front-end (fields below override it)")
    g = p.add_argument_group("front-end")
    _add_dataclass_options(g, FbankConfig, prefix="fbank.")
    g = p.add_argument_group("augmentation")
    _add_dataclass_options(g, AugmentConfig, prefix="augment.")
    g = p.add_argument_group("data")
    _add_dataclass_options(g, DataPaths)
    return p


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The preset of ``args.recipe`` with every option given on the command line applied."""
    values = vars(args)
    recipe = get_recipe(args.recipe)
    changes: Dict[str, Any] = {f.name: values[f.name] for f in dataclasses.fields(Recipe)
                               if f.name in values}
    fb = FBANK_PRESETS[args.fbank_preset] if args.fbank_preset else recipe.fbank
    fb_changes = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("fbank.")}
    aug_changes = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("augment.")}
    if args.eval_mode:
        changes["eval_modes"] = ("crop", "windows") if args.eval_mode == "both" else (
            args.eval_mode,)
    if "model" in changes and "model_kwargs" not in changes:
        from gnn_audio.zoo import get_model_config

        # the preset's model arguments (e.g. ATGNN widths) do not fit another model family
        if get_model_config(changes["model"]).family != get_model_config(recipe.model).family:
            changes["model_kwargs"] = {}
    return recipe.replace(fbank=fb.replace(**fb_changes),
                          augment=recipe.augment.replace(**aug_changes), **changes)


def paths_from_args(args: argparse.Namespace) -> DataPaths:
    values = vars(args)
    return DataPaths(**{f.name: values[f.name] for f in dataclasses.fields(DataPaths)
                        if f.name in values})


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "gnn-audio train",
         default_recipe: str = "atgnn_fsd50k", prepare=None) -> int:
    """Parse ``argv``, then train (or resume). ``prepare(args)`` may fill in arguments
    (the example generates its default data set there)."""
    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.dataset import ItemError
    from gnn_audio.data.readers import DataError
    from gnn_audio.data.store import StoreError
    from gnn_audio.train.trainer import Trainer, TrainingStopped
    from gnn_audio.zoo.checkpoints import CheckpointMismatch

    parser = build_parser(prog, default_recipe)
    args = parser.parse_args(argv)
    try:
        if prepare is not None:
            prepare(args)
        recipe = None if args.resume else recipe_from_args(args)
        paths = None if args.resume else paths_from_args(args)
    except (ValueError, TypeError) as err:
        print(f"{prog}: {one_line(err)}", file=sys.stderr)
        return 2
    if args.print_recipe:
        print(recipe.to_json() if recipe else Path(args.resume, "config.json").read_text())
        return 0
    run_dir = args.resume or args.run_dir or (
        f"runs/{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    trainer = None
    try:
        trainer = Trainer(recipe, paths, run_dir, resume=bool(args.resume), device=args.device,
                          progress=not args.no_progress)
        results = trainer.fit()
        if trainer.ctx.is_main:  # the result on stdout (the log went to stderr)
            print(summary_line(results), flush=True)
    except (DataError, StoreError, AudioError, ItemError, CheckpointMismatch, TrainingStopped,
            OSError, ValueError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not isinstance(err, (TrainingStopped, ItemError)) \
                and "Original Traceback" not in str(err):
            raise
        print(f"{prog}: {one_line(err)}", file=sys.stderr)
        return 1
    finally:
        if trainer is not None:
            trainer.close()
    return 0
