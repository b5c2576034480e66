"""Training and evaluation: recipes, the loop (one CPU, one GPU or DDP through torchrun),
exact resume (also within an epoch: ``save_every_steps``, SIGTERM), fine-tuning to a new label set, evaluation of long clips.

``examples/train_fsd50k.py`` / ``gnn-audio train`` drive it from the command line; in Python::

    from gnn_audio.train import Trainer, DataPaths, get_recipe
    recipe = get_recipe("atgnn_fsd50k").replace(epochs=10, precision="bf16")
    Trainer(recipe, DataPaths(data_dir="/data/FSD50K"), "runs/my_run").fit()
"""
from gnn_audio.train.data import DataPaths, DataSplits, load_splits
from gnn_audio.train.recipe import RECIPES, Recipe, get_recipe, list_recipes
from gnn_audio.train.step import NonFiniteLoss, TrainStep
from gnn_audio.train.trainer import Trainer, TrainingInterrupted, TrainingStopped

__all__ = ["Recipe", "RECIPES", "get_recipe", "list_recipes", "DataPaths", "DataSplits",
           "load_splits", "Trainer", "TrainingStopped", "TrainingInterrupted", "TrainStep",
           "NonFiniteLoss"]
