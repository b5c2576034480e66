"""``gnn-audio train``: the command line of training runs, shared by
``examples/train_fsd50k.py`` and ``examples/train_audioset.py``.

``--recipe NAME`` picks a preset; every field of every :class:`~gnn_audio.train.recipe.Recipe`
section is an option of its own, under its flat name (``--lr 1e-4``, ``--epochs 10``,
``--batch-size 48``, ``--precision bf16``, ``--eval-modes crop windows``, ``--eval-batch-size
8``, ``--model-kwargs '{"drop_path_rate": 0.2}'``), listed by section in ``--help``; the
front-end and augmentation fields are dotted (``--fbank.target-length 512``,
``--augment.mixup 0``) and ``--fbank-preset`` takes a named front-end. The data source
(``--data``) reads the options it declares (``--data-dir``, ``--train-csv``, ...).
``--print-recipe`` shows the resolved recipe and exits. ``--resume RUN_DIR`` continues a
stopped run with its own settings: of the options given with it, those a run may change
(``--epochs``, ``--max-steps``, ``--log-every``, ``--num-workers``, ``--eval-batch-size``,
``--save-every-steps``, where the data is) change with a line in the log; any other that
differs from the run's is refused. ``--save-every-steps N`` saves the training state every
``N`` steps; ``SIGTERM`` and Ctrl-C save it at the next step and stop.

Exit status: 0 done, 1 a data, checkpoint or training failure (one line naming the file),
2 a usage error, 75 stopped by a signal with the state saved (continue with ``--resume``),
130 stopped by a second Ctrl-C without saving.

Importing this module loads nothing of the library: :func:`build_parser` loads the recipe
and data-source declarations it reads the options from, :func:`main` the trainer.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

from gnn_audio.cli.common import (OneLineParser, add_source_options, add_store_options,
                                  data_paths, int_at_least, source_values)
from gnn_audio.errors import one_line

if TYPE_CHECKING:  # for the annotations only
    from gnn_audio.train.data import DataPaths
    from gnn_audio.train.recipe import Recipe

__all__ = ["add_parser", "build_parser", "recipe_from_args", "paths_from_args", "main",
           "summary_line"]

COMMAND = "train"
HELP = "train with a recipe (gnn-audio train --help lists every option)"

_NONE = ("none", "null")


def summary_line(results: Dict[str, Any]) -> str:
    """One line: the evaluation mAP per mode next to the label-frequency baseline."""
    scores = ", ".join(f"{mode} {m['mAP']:.4f}" for mode, m in results["eval"].items())
    return (f"eval mAP ({results['eval_clips']} clips, best epoch {results['best_epoch']}): "
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


#: one line per option, by flat name; the defaults shown are the preset's (``--print-recipe``)
_HELP = {
    "model": "zoo model name (gnn-audio models)",
    "model_kwargs": "entry-point keyword arguments as JSON, e.g. '{\"drop_path_rate\": 0.2}'",
    "data": "the data source: fsd50k (an FSD50K-layout folder), audioset (CSVs / datafiles) "
            "or embeddings (TFRecords); its options are listed below",
    "norm_stats": "auto: the front-end's mean / std when the training split has the class "
                  "list they were computed on, else the training split's; recipe: the "
                  "front-end's; compute: the training split's",
    "sampler": "balanced (PSLA's label-frequency weights) or shuffle",
    "num_workers": "DataLoader worker processes per rank",
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
    "hardware": "what the recipe is sized for: gpu (a CPU run is warned about) or any",
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
    "seed": "random seed",
    "log_every": "steps between TensorBoard loss points",
}

#: the argument group of each section in --help
_SECTION_TITLES = {"model": "recipe: model (recipe.model)",
                   "data": "recipe: data (recipe.data)",
                   "optim": "recipe: optimisation (recipe.optim)",
                   "eval": "recipe: evaluation (recipe.eval)"}


def _add_option(group, flag: str, dest: str, tp, metavar: str, text: str) -> None:
    origin = typing.get_origin(tp)
    if tp is bool:
        group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=text)
    elif origin is tuple:
        item = typing.get_args(tp)[0]
        group.add_argument(flag, dest=dest, nargs="+", type=item, default=argparse.SUPPRESS,
                           metavar=metavar, help=text)
    elif origin is dict or tp is dict:
        group.add_argument(flag, dest=dest, type=json.loads, default=argparse.SUPPRESS,
                           metavar="JSON", help=text)
    else:
        group.add_argument(flag, dest=dest, type=_parser_for(tp), default=argparse.SUPPRESS,
                           metavar=metavar, help=text)


def _add_config_options(group, cls, prefix: str) -> None:
    """``--PREFIX.FIELD`` for every field of a config dataclass (FbankConfig, AugmentConfig)."""
    types = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        _add_option(group, f"--{prefix}.{f.name.replace('_', '-')}", f"{prefix}.{f.name}",
                    types[f.name], f.name.upper(), f"{cls.__name__}.{f.name}")


def _add_section_options(group, section: str) -> None:
    """Every field of a recipe section, under its flat name (``--eval-batch-size``)."""
    from gnn_audio.train.recipe import FLAT_FIELDS, SECTIONS

    flat_name = {where: flat for flat, where in FLAT_FIELDS.items()}
    cls = SECTIONS[section]
    types = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in ("fbank", "augment"):
            continue
        flat = flat_name[(section, f.name)]
        _add_option(group, "--" + flat.replace("_", "-"), flat, types[f.name], flat.upper(),
                    _HELP[flat])


class _Given(argparse.Action):
    """Stores the value and notes that the option was given (``--recipe`` with ``--resume``
    must equal the run's; its default must not count)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.recipe_given = True


def build_parser(prog: str = "gnn-audio train", default_recipe: str = "atgnn_fsd50k",
                 description: Optional[str] = None) -> argparse.ArgumentParser:
    from gnn_audio.data.augment import AugmentConfig
    from gnn_audio.data.features import FbankConfig
    from gnn_audio.train.recipe import FBANK_PRESETS, SECTIONS, list_recipes

    p = OneLineParser(prog=prog, description=description or __doc__.split("\n\n")[0],
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--recipe", default=default_recipe, choices=list_recipes(),
                   action=_Given, help=f"the preset to start from (default {default_recipe})")
    p.set_defaults(recipe_given=False)
    g.add_argument("--run-dir", default=None,
                   help="run directory (default runs/RECIPE-YYYYmmdd-HHMMSS)")
    g.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last saved state (options that "
                   "may change: --epochs, --max-steps, --log-every, --num-workers, "
                   "--eval-batch-size, --save-every-steps and the data's location)")
    g.add_argument("--save-every-steps", type=int_at_least(1), default=None, metavar="N",
                   help="also save the training state every N optimiser steps (default: at "
                   "the end of each epoch only); SIGTERM and Ctrl-C save it at the next step")
    g.add_argument("--overwrite", action="store_true",
                   help="start a new run in a --run-dir that holds an earlier run, removing "
                   "its files (without it, such a directory is refused)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("--print-recipe", action="store_true",
                   help="print the resolved recipe as JSON and exit")
    for name in ("seed", "log_every"):
        _add_option(g, "--" + name.replace("_", "-"), name, int, name.upper(), _HELP[name])
    for section in SECTIONS:
        g = p.add_argument_group(_SECTION_TITLES[section])
        _add_section_options(g, section)
        if section == "data":
            g.add_argument("--fbank-preset", choices=sorted(FBANK_PRESETS), default=None,
                           help="a named front-end (the --fbank.* options override it)")
        if section == "eval":
            g.add_argument("--eval-mode", choices=("crop", "windows", "both"), default=None,
                           help="shorthand for --eval-modes (both: crop windows)")
    _add_config_options(p.add_argument_group("recipe: data, front-end (recipe.data.fbank)"),
                        FbankConfig, "fbank")
    _add_config_options(p.add_argument_group("recipe: data, augmentation "
                                             "(recipe.data.augment)"), AugmentConfig, "augment")
    add_store_options(p.add_argument_group("waveform stores (not part of the recipe)"))
    add_source_options(p)
    return p


def _given_recipe_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The recipe options given on the command line: flat names (``--eval-mode`` as
    ``eval_modes``) and dotted ``fbank.FIELD`` / ``augment.FIELD``."""
    from gnn_audio.train.recipe import FLAT_FIELDS

    values = vars(args)
    given: Dict[str, Any] = {k: values[k] for k in (*FLAT_FIELDS, "seed", "log_every")
                             if k in values}
    if args.eval_mode:
        given["eval_modes"] = ("crop", "windows") if args.eval_mode == "both" else (
            args.eval_mode,)
    given.update({k: v for k, v in values.items() if k.startswith(("fbank.", "augment."))})
    return given


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The preset of ``args.recipe`` with every option given on the command line applied
    (one ``ValueError`` naming the recipe and every bad value)."""
    from gnn_audio.train.recipe import FBANK_PRESETS, get_recipe
    from gnn_audio.zoo import get_model_config

    recipe = get_recipe(args.recipe)
    given = _given_recipe_options(args)
    fb = FBANK_PRESETS[args.fbank_preset] if args.fbank_preset else recipe.data.fbank
    fb_changes = {k.split(".", 1)[1]: v for k, v in given.items() if k.startswith("fbank.")}
    aug_changes = {k.split(".", 1)[1]: v for k, v in given.items() if k.startswith("augment.")}
    changes = {k: v for k, v in given.items() if "." not in k}
    if "model" in changes and "model_kwargs" not in changes:
        # the preset's model arguments (e.g. ATGNN widths) do not fit another model family
        if get_model_config(changes["model"]).family != get_model_config(
                recipe.model.name).family:
            changes["model_kwargs"] = {}
    return recipe.replace(fbank=fb.replace(**fb_changes),
                          augment=recipe.data.augment.replace(**aug_changes), **changes)


def paths_from_args(args: argparse.Namespace) -> DataPaths:
    return data_paths(args)


def resume_changes(args: argparse.Namespace) -> Dict[str, Any]:
    """The recipe and data options given on the command line with ``--resume``: flat recipe
    names, ``name`` for ``--recipe``, dotted ``fbank.FIELD`` / ``augment.FIELD`` (a
    ``--fbank-preset`` as its fields) and the data paths' names; the trainer applies those a
    resumed run may change and refuses the others."""
    from gnn_audio.train.data import STORE_OPTIONS
    from gnn_audio.train.recipe import FBANK_PRESETS

    values = vars(args)
    changes: Dict[str, Any] = {}
    if args.recipe_given:
        changes["name"] = args.recipe
    if args.fbank_preset:  # its fields, under the --fbank.FIELD options given with it
        preset = FBANK_PRESETS[args.fbank_preset]
        changes.update({f"fbank.{f.name}": getattr(preset, f.name)
                        for f in dataclasses.fields(preset)})
    changes.update(_given_recipe_options(args))
    changes.update(source_values(args))
    changes.update({k: values[k] for k in STORE_OPTIONS if k in values})
    return changes


def add_parser(sub) -> None:
    # parsed by build_parser (gnn_audio.cli.main hands it every argument after "train")
    sub.add_parser(COMMAND, add_help=False, help=HELP)


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "gnn-audio train",
         default_recipe: str = "atgnn_fsd50k", prepare=None) -> int:
    """Parse ``argv``, then train (or resume). ``prepare(args)`` may fill in arguments
    (the example generates its default data set there)."""
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
    from gnn_audio.data.audio import AudioError
    from gnn_audio.data.dataset import ItemError
    from gnn_audio.data.readers import DataError
    from gnn_audio.data.store import StoreError
    from gnn_audio.train.preemption import EXIT_STOPPED
    from gnn_audio.train.trainer import Trainer, TrainingInterrupted, TrainingStopped
    from gnn_audio.zoo.checkpoints import CheckpointMismatch  # the trainer's, once it is needed

    if args.resume and args.overwrite:
        print(f"{prog}: --overwrite starts a new run and --resume continues one: give one of "
              "them", file=sys.stderr)
        return 2
    run_dir = args.resume or args.run_dir or (
        f"runs/{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    trainer = None
    try:
        trainer = Trainer(recipe, paths, run_dir, resume=bool(args.resume), device=args.device,
                          progress=not args.no_progress, overwrite=args.overwrite,
                          save_every_steps=args.save_every_steps,
                          changes=resume_changes(args) if args.resume else None)
        results = trainer.fit()
        if trainer.ctx.is_main:  # the result on stdout (the log went to stderr)
            print(summary_line(results), flush=True)
    except TrainingInterrupted as err:
        if trainer is None or trainer.ctx.is_main:
            print(f"{prog}: {one_line(err)}", file=sys.stderr)
        return EXIT_STOPPED
    except KeyboardInterrupt:
        where = f"; the last saved state is in {run_dir}" if Path(run_dir, "last.pt").is_file() \
            else ""
        print(f"{prog}: interrupted, nothing saved since the last save{where}",
              file=sys.stderr)
        return 130
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
