"""``gnn-audio export-weights CHECKPOINT DIR``: a gnn_audio checkpoint (a run's ``best.pt``)
as a shareable model folder, ``model.safetensors`` + ``config.json``
(:func:`gnn_audio.zoo.save_pretrained`), which ``gnn-audio tag -c DIR``,
:func:`gnn_audio.zoo.load_model` and a model hub read without unpickling anything."""
from __future__ import annotations

import argparse

from gnn_audio.cli.common import check_writable_dir, no_such_model, say, write_error

__all__ = ["add_parser", "run"]

COMMAND = "export-weights"
HELP = "write a checkpoint as model.safetensors + config.json"


def run(args: argparse.Namespace) -> int:
    missing = no_such_model(args.checkpoint)
    if missing:
        say(COMMAND, missing)
        return 1
    problem = check_writable_dir(args.out)
    if problem:
        say(COMMAND, problem)
        return 1
    from gnn_audio.zoo import LOAD_ERRORS, load_model, save_pretrained

    try:
        model = load_model(args.checkpoint)
    except LOAD_ERRORS as err:
        say(COMMAND, err)
        return 1
    try:
        folder = save_pretrained(model, args.out)
    except OSError as err:
        say(COMMAND, write_error(err, args.out, "the model folder"))
        return 1
    bundle = model.bundle
    print(f"{folder}: {bundle.name}, {bundle.num_classes} classes -> model.safetensors, "
          "config.json")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(COMMAND, help=HELP,
                       description="Convert a gnn_audio checkpoint (a training run's best.pt) "
                       "into a model folder: model.safetensors (the weights) and config.json "
                       "(model, build arguments, front-end, labels), the layout a model hub "
                       "serves. Load it with gnn-audio tag -c DIR or "
                       "gnn_audio.zoo.load_model(DIR).")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a gnn_audio checkpoint file")
    p.add_argument("out", metavar="DIR", help="the folder to write (made if missing)")
    p.set_defaults(func=run)
