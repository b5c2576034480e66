"""The training loop: one :class:`Trainer` runs a :class:`~gnn_audio.train.recipe.Recipe` on one
CPU, one GPU or many (DDP through ``torchrun``), with exact resume.

Per epoch: the sampler's share of the training split (balanced or shuffled, per rank) in
batches of ``batch_size / world_size``, one :class:`~gnn_audio.train.step.TrainStep` per batch,
then validation (every clip once, sharded over the ranks; mAP, mAUC, d', lwlrap per evaluation
mode), the best checkpoint by validation mAP (``best.pt``), the training state (``last.pt``),
the curves and the log. At the end the best checkpoint (and, with ``average_from``, the
averaged weights) is scored on the evaluation split next to the label-frequency baseline and
everything goes to ``results.json``.

Run directory::

    config.json      the resolved recipe, data paths and environment
    train.log        the log (also on stderr)
    tensorboard/     TensorBoard scalars
    curves.png       loss, validation mAP and learning rate per epoch
    last.pt          the resumable training state (every epoch, every save_every_steps
                     steps, and when SIGTERM / Ctrl-C stops the run)
    best.pt          the best epoch's model: a zoo checkpoint (``create_model(name,
                     pretrained="best.pt")``, ``gnn-audio eval``, the tagger)
    averaged.pt      PSLA weight averaging of the last epochs (with ``average_from``)
    history.json     per-epoch metrics
    results.json     final evaluation (both modes), baseline, times

**Stopping and resuming.** ``Trainer(..., save_every_steps=N)`` saves the training state every
``N`` optimiser steps too, and a ``SIGTERM`` or Ctrl-C (:mod:`~gnn_audio.train.preemption`)
saves it at the next step boundary and stops with :class:`TrainingInterrupted`. ``resume=True``
continues from ``last.pt``, also in the middle of an epoch: the same batches, augmentations,
dropout draws and learning rates follow as in a run that was never stopped, so the result is
the same bit for bit on the CPU (with the same number of ranks). A resumed run keeps its
recipe; the options in ``changes`` that may change (:data:`~gnn_audio.train.recipe.
RESUMABLE_FIELDS`, the data's location) change with a line in the log, the others are refused,
and the splits must have the fingerprints the state was trained on. Restarted by ``torchrun``
(``--max-restarts``), a run of the same job resumes from its last state by itself.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, Optional, Tuple

try:
    import resource  # peak resident memory (POSIX)
except ImportError:  # pragma: no cover -- Windows
    resource = None

import numpy as np
import torch

from gnn_audio.data.readers.sources import source_options
from gnn_audio.data.sampling import BalancedSampler, ShuffleSampler, balanced_weights
from gnn_audio.errors import one_line
from gnn_audio.files import atomic_write_text
from gnn_audio.models.vig_weights import load_vig_imagenet
from gnn_audio.precision import check_precision
from gnn_audio.train.data import (STORE_OPTIONS, DataPaths, DataSplits,
                                  label_frequency_baseline, load_splits, split_fingerprint)
from gnn_audio.train.distributed import (all_gather_objects, all_reduce_mean, any_rank, barrier,
                                         cleanup, init_distributed)
from gnn_audio.train.evaluate import EvalConfig, evaluate
from gnn_audio.train.finetune import backbone_parameters, init_from_checkpoint
from gnn_audio.train.logs import RunLogger, format_duration, plot_curves
from gnn_audio.train.preemption import StopSignals
from gnn_audio.train.recipe import Recipe, resumed_recipe
from gnn_audio.train.schedule import make_scheduler
from gnn_audio.train.state import (STATE_FILE, capture_rng, check_run_dir, claim_run_dir,
                                   load_state, restore_rng, save_state, state_size_estimate)
from gnn_audio.train.step import NonFiniteLoss, TrainStep
from gnn_audio.zoo import bundle_of, create_model, get_entry
from gnn_audio.zoo.checkpoints import load_checkpoint, save_checkpoint

__all__ = ["Trainer", "TrainingStopped", "TrainingInterrupted", "build_run_model"]

#: the metrics kept in the history and results (the per-class arrays are left out)
SUMMARY_METRICS = ("mAP", "mAUC", "d_prime", "lwlrap", "classes_left_out_ap", "num_clips")
#: the pace line (seconds per step, the time the run will take) comes after this many steps
#: (the first step, which warms up, left out of the mean) or this many seconds, if sooner
PACE_STEPS, PACE_SECONDS = 4, 20.0


class TrainingStopped(RuntimeError):
    """The run stopped before its end (a non-finite loss); the message says why and where
    the last good checkpoint is."""


class TrainingInterrupted(RuntimeError):
    """A signal (``SIGTERM``, Ctrl-C) stopped the run after its state was saved; the message
    says where and how to continue."""


def _summary(metrics: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, float]]:
    return {mode: {k: (float(m[k]) if isinstance(m[k], (float, np.floating)) else m[k])
                   for k in SUMMARY_METRICS if k in m} for mode, m in metrics.items()}


def build_run_model(recipe: Recipe, splits: DataSplits, log=print) -> torch.nn.Module:
    """The zoo model of ``recipe`` for the splits' class list and front-end: label names and
    ids from the data, the front-end in its bundle, and the arguments its zoo entry derives
    from the data (:attr:`~gnn_audio.zoo.ZooEntry.prepare_kwargs`: e.g. ATGNN's input size,
    AT-GCN's label graph and label embeddings); ``recipe.model.kwargs`` override those."""
    entry = get_entry(recipe.model.name)
    if entry.config.input != recipe.input_kind:
        raise ValueError(f"model {recipe.model.name} reads {entry.config.input} input, the "
                         f"recipe's data ({recipe.data.source}) gives {recipe.input_kind}")
    kwargs = {**entry.prepare_kwargs(splits, recipe, log), **recipe.model.kwargs}
    if splits.fbank is not None:
        kwargs["fbank"] = splits.fbank
    labels = splits.label_set
    return create_model(recipe.model.name, num_classes=len(labels),
                        label_names=list(labels.names), label_ids=list(labels.mids), **kwargs)


def _carried_args(model: torch.nn.Module) -> Dict[str, Any]:
    """The model's values of its entry's ``carried_args`` (ATGNN: the graph settings), as its
    bundle records them: what a resumed run must build the model with again."""
    bundle = bundle_of(model)
    return {k: bundle.build_kwargs[k] for k in bundle.config.carried_args
            if k in bundle.build_kwargs}


def _with_carried_args(recipe: Recipe, carried: Optional[Dict[str, Any]]
                       ) -> Tuple[Recipe, List[str]]:
    """``recipe`` of a resumed run with the model's ``carried_args`` as the run recorded them
    (``config.json``'s ``model_carried_args``), where the recipe does not set them; a run
    written before they were recorded gets the defaults of then (the entry's
    ``upgrade_v2_kwargs``: a pyramid ATGNN's ``"sincos"`` graphs), with a line saying so."""
    entry = get_entry(recipe.model.name)
    own = dict(recipe.model.kwargs)
    recorded = carried is not None
    if carried is None:
        upgrade = entry.upgrade_v2_kwargs
        upgraded = upgrade(own) if upgrade is not None else own
        carried = {k: upgraded[k] for k in entry.config.carried_args if k in upgraded}
    kwargs = {**carried, **own}
    if kwargs == own:
        return recipe, []
    notes = [] if recorded else [
        f"--resume: the run's config.json predates recorded model settings; its "
        f"{recipe.model.name} is built as then, with {json.dumps(carried)}"]
    return recipe.replace(model=recipe.model.replace(kwargs=kwargs)), notes


class Trainer:
    """Runs a recipe (see the module docstring).

    Args:
        recipe: the settings (ignored with ``resume``: the run directory's are used).
        paths: where the data is (ignored with ``resume``).
        run_dir: the run directory.
        resume: continue the run in ``run_dir`` from its ``last.pt``.
        overwrite: start a new run in a ``run_dir`` that holds another run's files, removing
            them (without it, such a directory is refused: a new run never mixes its files with
            an earlier one's).
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when available).
        progress: tqdm bars.
    """

    def __init__(self, recipe: Optional[Recipe], paths: Optional[DataPaths], run_dir,
                 *, resume: bool = False, device: Optional[str] = None,
                 progress: bool = True, overwrite: bool = False,
                 save_every_steps: Optional[int] = None,
                 changes: Optional[Mapping[str, Any]] = None) -> None:
        self.run_dir = Path(run_dir)
        if save_every_steps is not None and (isinstance(save_every_steps, bool) or
                                             int(save_every_steps) < 1):
            raise ValueError(f"save_every_steps must be a positive number of steps, got "
                             f"{save_every_steps!r}")
        notes: List[str] = []
        self.ctx = init_distributed(device)
        self.device = self.ctx.device
        if not resume:
            restart = self._elastic_restart()
            if restart is not None:  # torchrun restarted this job's workers
                resume, overwrite = restart
                notes.append("torchrun restarted the job: " + (
                    "resuming from the last saved state" if resume else
                    "no state was saved before the failure; starting again"))
        saved_run: Dict[str, Any] = {}
        if resume:
            recipe, paths, saved_run, resumed = self._resumed_settings(changes or {})
            notes += resumed
            if save_every_steps is None:
                save_every_steps = saved_run.get("save_every_steps")
            elif save_every_steps != saved_run.get("save_every_steps"):
                notes.append(f"--resume with --save-every-steps {save_every_steps} (the run "
                             f"had {saved_run.get('save_every_steps')})")
        if recipe is None or paths is None:
            raise ValueError("a recipe and data paths are needed unless resuming")
        self.recipe, self.paths, self.resume = recipe, paths, resume
        self.save_every_steps = None if save_every_steps is None else int(save_every_steps)
        self._changed = bool(notes)
        if self.ctx.is_main:  # an unusable or taken run directory fails now, before any work
            if not resume:
                notes += claim_run_dir(self.run_dir, overwrite)
            check_run_dir(self.run_dir, 0)
        self.log = RunLogger(self.run_dir, enabled=self.ctx.is_main, progress=progress)
        for note in notes + _restart_notes():
            self.log(note)
        self.progress = progress
        self._in_epoch: Optional[Dict[str, Any]] = None
        self._disk_checked = False

    def _elastic_restart(self) -> Optional[tuple]:
        """``(resume, overwrite)`` when ``torchrun`` restarted the workers of this job
        (``--max-restarts``) and the run directory holds its run (``config.json`` of this
        ``TORCHELASTIC_RUN_ID``): resume from its state, or start again over its files when
        none was saved; ``None`` otherwise. An agent that restarts its workers because another
        node's failed counts no restart of its own (``TORCHELASTIC_RESTART_COUNT`` 0), so the
        ranks decide together: a restart if any rank's count is above 0, and rank 0's reading
        of the run directory for all."""
        count = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        if not any_rank(count.isdigit() and int(count) > 0, self.ctx):
            return None
        found = _restart_mode(self.run_dir) if self.ctx.is_main else None
        return all_gather_objects(found, self.ctx)[0]

    def _resumed_settings(self, changes: Mapping[str, Any]):
        """The recipe, data paths and run settings of the run directory's ``config.json``,
        with the options given with ``--resume`` (``changes``) applied or refused."""
        config_file = self.run_dir / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{self.run_dir}: not a run directory (no config.json)")
        try:
            saved = json.loads(config_file.read_text(encoding="utf-8"))
            recipe = Recipe.from_dict(saved["recipe"])
            stored_paths = DataPaths.from_dict(saved["data_paths"])
        except json.JSONDecodeError as err:
            raise ValueError(f"{config_file}: damaged, not JSON ({err.msg} at line "
                             f"{err.lineno}, column {err.colno})") from None
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{config_file}: not a run's config.json (no valid "
                             f"{one_line(err)})") from None
        data_keys = set(source_options()) | set(STORE_OPTIONS)
        recipe, notes = resumed_recipe(recipe, {k: v for k, v in changes.items()
                                                if k not in data_keys})
        recipe, carried_notes = _with_carried_args(recipe, saved.get("model_carried_args"))
        notes += carried_notes
        before = stored_paths.to_dict()
        given = DataPaths(**{k: v for k, v in changes.items() if k in data_keys}).to_dict()
        moved = {k: given[k] for k in changes if k in data_keys and given[k] != before.get(k)}
        paths = DataPaths.from_dict({**before, **moved}) if moved else stored_paths
        notes += [f"--resume with --{k.replace('_', '-')} {v} (the run had {before.get(k)}); "
                  "the splits must still hold the clips and labels the run was trained on"
                  for k, v in moved.items()]
        return recipe, paths, dict(saved.get("run") or {}), notes

    # -- set-up --------------------------------------------------------------------------------

    def _barrier(self) -> None:
        barrier(self.ctx)

    def _reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        return all_reduce_mean(value, self.ctx)

    def _setup(self) -> None:
        r, ctx = self.recipe, self.ctx
        if r.optim.batch_size % ctx.world_size:
            raise ValueError(f"batch_size {r.optim.batch_size} must be a multiple of the "
                             f"{ctx.world_size} ranks")
        check_precision(r.optim.precision, self.device)
        self.splits = load_splits(r, self.paths, is_main=ctx.is_main, barrier=self._barrier,
                                  log=self.log, progress=self.progress,
                                  before_decoding=self._check_disk)
        for note in self.splits.notes:
            self.log(note)
        self.fingerprints = {split: split_fingerprint(getattr(self.splits, split))
                             for split in ("train", "val", "eval")}
        self.model = self._initial_model().to(self.device)
        if r.optim.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._wrap_model()
        self._setup_loader()
        self._setup_optimisation()
        self.epoch, self.global_step = 0, 0
        self._saved_at: Optional[str] = None  # where the last saved state is, in words
        self.history: List[dict] = []
        self.best = {"mAP": -math.inf, "epoch": None}
        self.avg_sum: Optional[Dict[str, torch.Tensor]] = None
        self.avg_count = 0
        if self.resume:
            self._load()
            if self._changed:  # a later --resume continues with the changed settings
                self._update_config()
        else:
            self._write_config()

    def _initial_model(self) -> torch.nn.Module:
        """The run's zoo model with its initial weights: the seed's, then the ImageNet ViG
        weights or the checkpoint to fine-tune from (whose backbone may be frozen first)."""
        r = self.recipe
        # the initial weights depend on the seed alone (not on whether stores were built)
        torch.manual_seed(r.seed)
        np.random.seed(r.seed)
        model = build_run_model(r, self.splits, log=self.log)
        if self.ctx.is_main and not self._disk_checked:  # no estimate before decoding
            for note in check_run_dir(self.run_dir, state_size_estimate(model)):
                self.log(note)
        if r.model.pretrained_vig:
            missing, unexpected = load_vig_imagenet(model, r.model.pretrained_vig)
            self.log(f"ImageNet ViG weights from {r.model.pretrained_vig}: {len(missing)} model "
                     f"tensors left at their initialisation, {len(unexpected)} unused")
        self.frozen_names: List[str] = []
        if r.model.init_from:
            report = init_from_checkpoint(model, r.model.init_from)
            for line in report.lines():
                self.log(line)
            if r.model.freeze_backbone_epochs:
                self.backbone = backbone_parameters(model)
        elif r.model.freeze_backbone_epochs:
            raise ValueError("freeze_backbone_epochs needs init_from (a checkpoint to "
                             "fine-tune)")
        return model

    def _check_disk(self, label_set) -> None:
        """The run directory's free space against its checkpoints' size, estimated from the
        recipe's model for ``label_set`` before any audio is decoded (a model whose size
        cannot be known yet is checked once it is built)."""
        if not self.ctx.is_main:
            return
        needed = _estimated_state_bytes(self.recipe, label_set)
        if needed is not None:
            for note in check_run_dir(self.run_dir, needed):
                self.log(note)
            self._disk_checked = True

    def _wrap_model(self) -> None:
        """``ddp`` (SyncBatchNorm and DistributedDataParallel under DDP) and ``train_net``
        (``torch.compile`` of it with ``optim.compile``) around ``model``."""
        r, ctx = self.recipe, self.ctx
        net: torch.nn.Module = self.model
        if r.optim.sync_bn and ctx.distributed and self.device.type != "cuda":
            raise ValueError("sync_bn needs GPUs (torch's SyncBatchNorm runs on CUDA only); "
                             "leave it off for CPU processes")
        if r.optim.sync_bn and not ctx.distributed:
            self.log("note: sync_bn has no effect in a single process")
        if ctx.distributed:
            if r.optim.sync_bn:
                net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
                self.model = net
            net = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.ddp = net
        self.train_net = torch.compile(net) if r.optim.compile else net

    def _setup_loader(self) -> None:
        """This rank's sampler (balanced or shuffled) and training loader."""
        r, ctx = self.recipe, self.ctx
        train = self.splits.train
        if r.data.sampler == "balanced":
            self.sampler = BalancedSampler(balanced_weights(train.targets), len(train),
                                           rank=ctx.rank, world_size=ctx.world_size, seed=r.seed)
        else:
            self.sampler = ShuffleSampler(len(train), rank=ctx.rank, world_size=ctx.world_size,
                                          seed=r.seed)
        self.local_batch = r.optim.batch_size // ctx.world_size
        self.steps_per_epoch = len(self.sampler) // self.local_batch
        if self.steps_per_epoch < 1:
            raise ValueError(f"the training split ({len(train)} clips) is smaller than one "
                             f"batch of {r.optim.batch_size}")
        # a generator of its own for the workers' base seed: iterating the loader must not
        # draw from the global stream (a run resumed within an epoch restores that stream)
        self.loader = torch.utils.data.DataLoader(
            train, batch_size=self.local_batch, sampler=self.sampler, drop_last=True,
            num_workers=r.data.num_workers, pin_memory=self.device.type == "cuda",
            collate_fn=_collate_train, generator=torch.Generator().manual_seed(r.seed))

    def _setup_optimisation(self) -> None:
        """Adam over the trainable parameters, the learning-rate schedule and the step."""
        r = self.recipe
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=r.optim.lr, betas=r.optim.betas,
                                          weight_decay=r.optim.weight_decay)
        self.scheduler = make_scheduler(self.optimizer, self.steps_per_epoch, r)
        self.step = TrainStep(self.train_net, self.optimizer, precision=r.optim.precision,
                              device=self.device, clip_grad_norm=r.optim.clip_grad_norm,
                              scheduler=self.scheduler,
                              reduce_loss=self._reduce_mean if self.ctx.distributed else None)

    def _write_config(self) -> None:
        if not self.ctx.is_main:
            return
        resolved = self.recipe.replace(data=self.recipe.data.replace(
            fbank=self.splits.fbank or self.recipe.data.fbank, norm_stats="recipe"))
        config = {"recipe": resolved.to_dict(), "data_paths": self.paths.to_dict(),
                  "world_size": self.ctx.world_size, "device": str(self.device),
                  "torch": torch.__version__, "python": platform.python_version(),
                  "num_classes": len(self.splits.label_set),
                  "run": {"save_every_steps": self.save_every_steps,
                          "torchrun_job": os.environ.get("TORCHELASTIC_RUN_ID")},
                  "fingerprints": self.fingerprints,
                  "model_carried_args": _carried_args(self.model)}
        if self.splits.fbank is not None:
            config["normalisation"] = {
                "mean": self.splits.fbank.norm_mean, "std": self.splits.fbank.norm_std,
                "asked": self.recipe.data.norm_stats, "from": self.splits.norm_from}
        atomic_write_text(self.run_dir / "config.json", json.dumps(config, indent=2) + "\n")
        r = self.recipe
        self.log(f"recipe {r.name}: model {r.model.name}, "
                 f"{r.optim.epochs} epoch(s) of {self.steps_per_epoch} steps x "
                 f"{r.optim.batch_size} clips ({self.ctx.world_size} rank(s) on "
                 f"{self.device.type}), {r.optim.precision}; config -> "
                 f"{self.run_dir / 'config.json'}")

    def _update_config(self) -> None:
        """``config.json`` of a resumed run with the settings it now runs with."""
        if not self.ctx.is_main:
            return
        path = self.run_dir / "config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        config.update(recipe=self.recipe.to_dict(), data_paths=self.paths.to_dict(),
                      model_carried_args=_carried_args(self.model))
        config.setdefault("run", {})["save_every_steps"] = self.save_every_steps
        atomic_write_text(path, json.dumps(config, indent=2) + "\n")

    # -- state ---------------------------------------------------------------------------------

    def _state(self, in_epoch: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The training state; ``in_epoch`` (steps, batches taken from the loader, this rank's
        running loss and seconds) when it is saved within epoch ``self.epoch``, else it is
        saved at the end of epoch ``self.epoch`` (0-based, already counted)."""
        taken = len(self.sampler) if in_epoch is None else in_epoch["taken"] * self.local_batch
        rng = capture_rng()
        # every rank's generators and running loss: a run stopped within an epoch continues
        # each rank's draws and sum
        ranks = None if in_epoch is None else all_gather_objects(
            {"rng": rng, "loss_sum": in_epoch["loss_sum"]}, self.ctx)
        return {"format": "gnn_audio.train_state", "epoch": self.epoch,
                "global_step": self.global_step, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.step.scaler.state_dict(),
                "sampler": self.sampler.state_dict(consumed=taken),
                "rng": rng, "ranks": ranks, "history": self.history,
                "best": dict(self.best), "avg_sum": self.avg_sum, "avg_count": self.avg_count,
                "world_size": self.ctx.world_size, "epochs_from": 1,
                "fingerprints": self.fingerprints,
                "in_epoch": None if in_epoch is None else {
                    k: in_epoch[k] for k in ("steps", "taken", "seconds")}}

    def _load(self) -> None:
        path = self.run_dir / STATE_FILE
        state = load_state(path)
        for split, fingerprint in (state.get("fingerprints") or {}).items():
            if fingerprint != self.fingerprints[split]:
                raise ValueError(
                    f"{path}: the run was trained on other data: the {split} split's clips or "
                    "labels are not those the state was saved with; resume on the same data "
                    "set, or start a new run on this one")
        in_epoch = state.get("in_epoch")
        if in_epoch is not None and state["world_size"] != self.ctx.world_size:
            raise ValueError(f"{path}: saved within epoch {int(state['epoch']) + 1} by "
                             f"{state['world_size']} rank(s): resume it on "
                             f"{state['world_size']} rank(s) (this run has "
                             f"{self.ctx.world_size})")
        if state["world_size"] != self.ctx.world_size:
            self.log(f"note: the run was saved with {state['world_size']} rank(s) and resumes "
                     f"on {self.ctx.world_size}: it continues, but not bit for bit")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history, self.best = list(state["history"]), dict(state["best"])
        if state.get("epochs_from", 0) == 0:  # a state of before epochs were counted from 1
            self.history = [{**h, "epoch": h["epoch"] + 1} for h in self.history]
            if self.best.get("epoch") is not None:
                self.best["epoch"] += 1
        self.avg_sum, self.avg_count = state["avg_sum"], int(state["avg_count"])
        mine = state["ranks"][self.ctx.rank] if state.get("ranks") else None
        restore_rng(mine["rng"] if mine else state["rng"])
        if state["world_size"] == self.ctx.world_size:
            # checks that the sampler draws as the saved run did (seed, sizes); its position
            # is where the run stopped within the epoch, or the end of the saved epoch (the
            # next epoch then starts from its beginning)
            self.sampler.load_state_dict(state["sampler"])
        self._saved_at = _saved_where(self.epoch, in_epoch)
        if in_epoch is not None:
            self._in_epoch = {**in_epoch, "loss_sum": mine["loss_sum"].to(self.device)}
            self.log(f"resumed {self.run_dir} within epoch {self.epoch + 1}, after its step "
                     f"{in_epoch['steps']} of {self.steps_per_epoch} (step "
                     f"{self.global_step} of the run)")
        else:
            self.log(f"resumed {self.run_dir} at epoch {self.epoch + 1} (step "
                     f"{self.global_step})")

    # -- pace ----------------------------------------------------------------------------------

    def _steps_left(self) -> int:
        r = self.recipe
        total = self.steps_per_epoch * r.optim.epochs
        if r.optim.max_steps is not None:
            total = min(total, r.optim.max_steps)
        return max(0, total - self.global_step)

    @property
    def _gpu_recipe_on_cpu(self) -> bool:
        return self.recipe.optim.hardware == "gpu" and self.device.type == "cpu"

    def _warn_gpu_recipe_on_cpu(self) -> None:
        """Before the first step of a GPU recipe on a CPU: say so, with the time a step and
        the run will take, estimated from a forward pass of one batch (a backward pass costs
        about two); nothing of the run's state (weights, statistics, random streams) changes."""
        if not self._gpu_recipe_on_cpu or not self.ctx.is_main:
            return
        r = self.recipe
        train = self.splits.train
        was = self.model.training
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            x = torch.stack([train[i % len(train)][0] for i in range(self.local_batch)])
            self.model.eval()
            self.model(x[:1])  # pays for allocations and lazy set-up
            start = time.perf_counter()
            self.model(x)
            seconds = time.perf_counter() - start
        self.model.train(was)
        step = 3 * seconds
        left = self._steps_left()
        self.log(f"note: recipe {r.name} is sized for a GPU and this run is on the CPU: a "
                 f"forward pass of {self.local_batch} clips took {seconds:.1f} s, so a step "
                 f"will take about {format_duration(step)} and the {left} steps of the run "
                 f"about {format_duration(step * left)} (validation not included); for a "
                 "quick run on a CPU use --recipe example")

    def _tell_pace(self, elapsed: float, first: float, steps: int) -> None:
        """The pace measured over the epoch's first ``steps`` steps (``elapsed`` seconds, the
        first of them ``first``: left out of the mean unless it is the only one) and what it
        means for the whole run (once per process)."""
        self._paced = True
        seconds_per_step = elapsed if steps == 1 else (elapsed - first) / (steps - 1)
        steps = max(1, steps - 1)
        hint = (f"; recipe {self.recipe.name} is sized for a GPU: for a quick run on a CPU "
                "use --recipe example" if self._gpu_recipe_on_cpu else "")
        left = self._steps_left()
        rest = (f": the {left} steps left take about {format_duration(seconds_per_step * left)}"
                ", validation not included" if left else "")
        self.log(f"pace: {seconds_per_step:.2f} s per step of {self.local_batch} clips on "
                 f"{self.device.type} (measured over {steps} step(s)), peak memory "
                 f"{_peak_memory(self.device)}{rest}{hint}")

    def _save(self, in_epoch: Optional[Dict[str, Any]] = None) -> None:
        state = self._state(in_epoch)
        if self.ctx.is_main:
            save_state(self.run_dir / STATE_FILE, state)
        self._saved_at = _saved_where(self.epoch, in_epoch)
        self._barrier()

    def _stop_requested(self, check: bool) -> bool:
        """Whether a signal asked the run to stop (under DDP: any rank's, agreed by all
        ranks, which costs a collective: only where ``check``)."""
        if not self.ctx.distributed:
            return self._signals.requested is not None
        return check and any_rank(self._signals.requested is not None, self.ctx)

    # -- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, model: torch.nn.Module, dataset) -> Dict[str, Dict[str, Any]]:
        r = self.recipe
        modes = r.eval.modes if r.input_kind == "logmel" else ("crop",)
        config = EvalConfig(modes=tuple(modes), window_hop=r.eval.window_hop,
                            batch_size=r.eval.batch_size, num_workers=r.data.num_workers,
                            precision="fp32" if r.optim.precision == "fp16" else r.optim.precision)
        frames = self.splits.fbank.target_length if self.splits.fbank is not None else None
        return evaluate(model, dataset, config, self.ctx, frames=frames)

    # -- the loop ------------------------------------------------------------------------------

    def _train_epoch(self) -> Dict[str, float]:
        """One epoch (or the rest of the one a state saved within an epoch was in); raises
        :class:`TrainingInterrupted` after saving the state when a signal asks to stop."""
        r = self.recipe
        resumed, self._in_epoch = self._in_epoch, None
        if resumed is None:
            # dropout / drop-path / stochastic-kNN draws: a stream of its own per (seed, rank,
            # epoch), the same in an uninterrupted and in a resumed run, different across
            # ranks (a run resumed within an epoch has the stream restored where it was)
            torch.manual_seed(int(np.random.SeedSequence(
                [r.seed, self.ctx.rank, self.epoch]).generate_state(1)[0]))
        self.sampler.set_epoch(self.epoch)
        if hasattr(self.splits.train, "set_epoch"):  # TaggingDataset's augmentation draws
            self.splits.train.set_epoch(self.epoch)
        frozen = self.epoch < r.model.freeze_backbone_epochs
        self.step.frozen = self.backbone if frozen else ()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        steps, before = 0, 0.0  # steps of the epoch, seconds of it before a resume
        if resumed is not None:
            total, steps, before = resumed["loss_sum"], int(resumed["steps"]), resumed["seconds"]
        taken = 0  # batches taken from this loader iterator
        start = time.perf_counter()
        first: Optional[float] = None  # seconds of the first step
        waited, ready = 0.0, start  # seconds spent waiting for the loader's batches
        bar = self.log.bar(self.steps_per_epoch, f"epoch {self.epoch + 1}/{r.optim.epochs}")
        bar.update(steps)
        for x, y in self.loader:
            waited += time.perf_counter() - ready
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if r.optim.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            try:
                loss = self.step(x, y)
            except NonFiniteLoss as err:
                bar.close()
                raise TrainingStopped(
                    f"epoch {self.epoch + 1} step {steps + 1}: {err}; training stopped, the "
                    f"weights were not updated with it. Last good checkpoint: "
                    f"{self._last_saved()}. Try a lower lr, clip_grad_norm, or fp32 / bf16 "
                    "instead of fp16") from None
            total += loss
            steps += 1
            taken += 1
            self.global_step += 1
            if not self._paced:
                now = time.perf_counter() - start
                first = now if first is None else first
                if now >= PACE_SECONDS or taken == PACE_STEPS or steps == self.steps_per_epoch:
                    self._tell_pace(now, first, taken)
            logged = self.global_step % r.log_every == 0 or steps == self.steps_per_epoch
            if logged:
                value = float(total / steps)
                elapsed = time.perf_counter() - start
                bar.set_postfix(loss=f"{value:.4f}",
                                clips_s=f"{taken * r.optim.batch_size / elapsed:.1f}")
                self.log.scalars({"train/loss": float(loss),
                                  "train/lr": self.optimizer.param_groups[0]["lr"]},
                                 self.global_step)
            bar.update(1)
            stop = self._stop_requested(check=logged)
            save = stop or (self.save_every_steps is not None and
                            self.global_step % self.save_every_steps == 0 and
                            steps < self.steps_per_epoch)
            if save:
                self._save({"steps": steps, "taken": taken, "loss_sum": total.detach().cpu(),
                            "seconds": before + time.perf_counter() - start})
            if stop:
                bar.close()
                self._interrupted(f"epoch {self.epoch + 1} step {steps}")
            if r.optim.max_steps is not None and self.global_step >= r.optim.max_steps:
                break
            ready = time.perf_counter()
        bar.close()
        elapsed = time.perf_counter() - start
        if not self._paced and taken:  # an epoch (or max_steps) shorter than PACE_STEPS
            self._tell_pace(elapsed, first, taken)
        mean = float(self._reduce_mean(total / max(steps, 1)))
        elapsed += before
        return {"train_loss": mean, "steps": steps, "seconds": elapsed,
                "clips_per_s": steps * r.optim.batch_size / max(elapsed, 1e-9),
                "loader_wait_s": waited}

    def _last_saved(self) -> str:
        """Where the last good training state is, in words."""
        return (f"{self.run_dir / STATE_FILE} ({self._saved_at})" if self._saved_at else
                "none (nothing was saved yet)")

    def _interrupted(self, where: str) -> None:
        """Raise :class:`TrainingInterrupted` for a signal that stopped the run ``where``
        (its state already saved)."""
        raise TrainingInterrupted(
            f"{self._signals.requested or 'a signal on another rank'}: stopped at {where} "
            f"(step {self.global_step} of the run), state saved to "
            f"{self.run_dir / STATE_FILE}; continue with --resume {self.run_dir}")

    def _accumulate_average(self) -> None:
        state = {k: v.detach().to("cpu", torch.float64) for k, v in
                 self.model.state_dict().items() if v.is_floating_point()}
        if self.avg_sum is None:
            self.avg_sum = state
        else:
            for k, v in state.items():
                self.avg_sum[k] += v
        self.avg_count += 1

    def _averaged_model(self) -> torch.nn.Module:
        import copy

        model = copy.deepcopy(self.model)
        own = model.state_dict()
        own.update({k: (v / self.avg_count).to(own[k].dtype) for k, v in self.avg_sum.items()})
        model.load_state_dict(own)
        return model

    def _checkpoint_extra(self, epoch: int, metrics: Dict[str, Any]) -> Dict[str, Any]:
        """What a checkpoint holds besides the model's bundle (which carries the front-end)."""
        return {"epoch": epoch, "recipe": self.recipe.name, "metrics": metrics}

    def fit(self) -> Dict[str, Any]:
        """Train (or resume) to the end and return the results (also in ``results.json``)."""
        run_start = time.perf_counter()
        self._setup()
        self._paced = False
        self._warn_gpu_recipe_on_cpu()
        notice = ("{signal}: stopping at the next step boundary, after saving the training "
                  "state (Ctrl-C again stops at once, without saving)")
        with StopSignals(notice if self.ctx.is_main else None) as self._signals:
            self._epochs()
        return self._finish(run_start)

    def _epochs(self) -> None:
        """Train the epochs left (the loop of :meth:`fit`)."""
        r = self.recipe
        done = r.optim.max_steps is not None and self.global_step >= r.optim.max_steps
        while self.epoch < r.optim.epochs and not done:
            train = self._train_epoch()
            val = _summary(self._evaluate(self.model, self.splits.val))
            main_mode = r.eval.modes[0] if r.input_kind == "logmel" else "crop"
            val_map = val[main_mode]["mAP"]
            lr = self.optimizer.param_groups[0]["lr"]
            number = self.epoch + 1  # epochs are counted from 1 in every output
            entry = {"epoch": number, **train, "lr": lr, "val": val}
            self.history.append(entry)
            # the first epoch always gives a best.pt; an undefined (NaN) mAP, e.g. a
            # validation split without any positive label, never blocks a later epoch
            best = self.best["mAP"]
            improved = self.best["epoch"] is None or math.isnan(best) or val_map > best
            if improved:
                self.best = {"mAP": val_map, "epoch": number}
                if self.ctx.is_main:
                    save_checkpoint(self.model, self.run_dir / "best.pt",
                                    extra=self._checkpoint_extra(number, val))
            if r.eval.average_from is not None and self.epoch >= r.eval.average_from:
                self._accumulate_average()
            self.log(f"epoch {number}/{r.optim.epochs}: loss {train['train_loss']:.4f}, "
                     f"val " + ", ".join(f"{m} mAP {v['mAP']:.4f}" for m, v in val.items()) +
                     f", lr {lr:.2e}, {train['clips_per_s']:.1f} clips/s, "
                     f"{train['seconds']:.0f} s" + ("  (best)" if improved else ""))
            # every curve against the optimiser step, the epoch a curve of its own
            self.log.scalars({"train/epoch": number, "train/epoch_loss": train["train_loss"],
                              **{f"val/{m}/{k}": v[k] for m, v in val.items()
                                 for k in ("mAP", "mAUC", "lwlrap")}}, self.global_step)
            self.epoch += 1
            done = r.optim.max_steps is not None and self.global_step >= r.optim.max_steps
            self._save()
            if self.ctx.is_main:
                atomic_write_text(self.run_dir / "history.json",
                                  json.dumps(self.history, indent=2) + "\n")
                plot_curves(self.history, self.run_dir / "curves.png")
                self.log.flush()
            if self._stop_requested(check=True):
                self._interrupted(f"the end of epoch {number}")

    def _finish(self, run_start: float) -> Dict[str, Any]:
        r = self.recipe
        self._barrier()
        best = load_checkpoint(self.run_dir / "best.pt")
        self.model.load_state_dict(best["state_dict"])
        results: Dict[str, Any] = {
            "recipe": r.name, "model": r.model.name, "run_dir": str(self.run_dir),
            "best_epoch": self.best["epoch"], "best_val_mAP": self.best["mAP"],
            "epochs": self.epoch, "steps": self.global_step,
            "eval": _summary(self._evaluate(self.model, self.splits.eval)),
            "label_frequency_baseline_mAP": label_frequency_baseline(
                self.splits.train_targets, np.asarray(self.splits.eval.targets)),
            "eval_clips": len(self.splits.eval), "world_size": self.ctx.world_size}
        if self.avg_count:
            averaged = self._averaged_model()
            results["averaged"] = {
                "epochs": [r.eval.average_from + 1, self.epoch], "count": self.avg_count,
                "val": _summary(self._evaluate(averaged, self.splits.val)),
                "eval": _summary(self._evaluate(averaged, self.splits.eval))}
            if self.ctx.is_main:
                save_checkpoint(averaged, self.run_dir / "averaged.pt",
                                extra=self._checkpoint_extra(self.epoch,
                                                             results["averaged"]["val"]))
        results["seconds_this_process"] = time.perf_counter() - run_start
        if self.ctx.is_main:
            atomic_write_text(self.run_dir / "results.json", json.dumps(results, indent=2) + "\n")
            self.log.hparams(self.recipe.to_dict(), _final_metrics(results), self.global_step)
            for mode, m in results["eval"].items():
                self.log(f"eval ({mode}, best epoch {self.best['epoch']}): mAP {m['mAP']:.4f}"
                         f", mAUC {m['mAUC']:.4f}, d' {m['d_prime']:.3f}, lwlrap "
                         f"{m['lwlrap']:.4f}")
            for mode, m in results.get("averaged", {}).get("eval", {}).items():
                self.log(f"eval ({mode}, weights averaged over {self.avg_count} epochs): "
                         f"mAP {m['mAP']:.4f}")
            self.log(f"label-frequency baseline: eval mAP "
                     f"{results['label_frequency_baseline_mAP']:.4f}; results -> "
                     f"{self.run_dir / 'results.json'}")
        self.log.close()
        return results

    def close(self) -> None:
        self.log.close()
        cleanup()


def _saved_where(epoch: int, in_epoch: Optional[Dict[str, Any]]) -> str:
    """Where a state saved at ``epoch`` (0-based; within it with ``in_epoch``) is, in words."""
    return (f"epoch {epoch + 1} step {in_epoch['steps']}" if in_epoch is not None
            else f"end of epoch {epoch}")


def _restart_notes() -> List[str]:
    """A warning when ``torchrun`` may restart a job of several nodes whose workers share the
    agent's store: torch 2.11 keeps the dead workers' addresses in that store, and the
    restarted workers fail to connect to them (tested on two loopback nodes)."""
    env = os.environ
    if (env.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and
            env.get("TORCHELASTIC_MAX_RESTARTS", "0") not in ("", "0") and
            env.get("GROUP_WORLD_SIZE", "1") not in ("", "1")):
        return ["warning: torchrun may restart this job of several nodes (--max-restarts), and "
                "a restart fails to connect its workers unless torchrun runs with "
                "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (torch keeps the failed workers' "
                "addresses in the shared store); see docs/training.md"]
    return []


def _restart_mode(run_dir: Path) -> Optional[tuple]:
    """``(resume, overwrite)`` for a restarted job whose run directory holds its run (its
    ``config.json`` names this ``TORCHELASTIC_RUN_ID``); ``None`` when it holds none."""
    try:
        saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    job = os.environ.get("TORCHELASTIC_RUN_ID")
    if not isinstance(saved, dict) or not job or (saved.get("run") or {}).get(
            "torchrun_job") != job:
        return None
    return (run_dir / STATE_FILE).is_file(), True


def _estimated_state_bytes(recipe: Recipe, label_set) -> Optional[int]:
    """:func:`~gnn_audio.train.state.state_size_estimate` of the recipe's model for
    ``label_set``, built on the meta device (or the CPU) from what is known before the audio
    is decoded; ``None`` when the model needs more of the data to be built."""
    entry = get_entry(recipe.model.name)
    known = SimpleNamespace(fbank=recipe.data.fbank, label_set=label_set)
    try:
        kwargs = {**entry.prepare_kwargs(known, recipe, lambda line: None),
                  **recipe.model.kwargs}
    except (AttributeError, KeyError):  # it derives arguments from the training targets
        kwargs = dict(recipe.model.kwargs)
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        for device in ("meta", "cpu"):
            try:
                with torch.device(device):
                    model = create_model(recipe.model.name, num_classes=len(label_set),
                                         **kwargs)
                return state_size_estimate(model)
            except (NotImplementedError, RuntimeError, TypeError, ValueError):
                continue
    return None


def _peak_memory(device: torch.device) -> str:
    """``3.2 GiB allocated on cuda:0`` / ``12.6 GiB resident``."""
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2 ** 30:.1f} GiB allocated on the GPU"
    if resource is None:
        return "unknown"
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return f"{kib / 2 ** 20:.1f} GiB resident"


def _final_metrics(results: Dict[str, Any]) -> Dict[str, float]:
    """The figures of ``results.json`` that TensorBoard's HPARAMS tab shows next to the
    recipe."""
    out = {"hparam/best_val_mAP": float(results["best_val_mAP"])}
    for mode, m in results["eval"].items():
        out.update({f"hparam/eval_{mode}_{k}": float(m[k]) for k in ("mAP", "mAUC", "lwlrap")})
    for mode, m in results.get("averaged", {}).get("eval", {}).items():
        out[f"hparam/averaged_eval_{mode}_mAP"] = float(m["mAP"])
    return out


def _collate_train(items):
    """``(x [B, ...], y [B, S])`` from dataset items ``(x, y)`` or ``(x, y, clip_id)``."""
    xs, ys = zip(*[(it[0], it[1]) for it in items])
    return torch.stack(xs), torch.stack(ys)
