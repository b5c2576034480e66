"""model -> logits: the model zoo, timm style.

>>> from gnn_audio.zoo import atgnn_pyr_s, create_model, list_models
>>> model = atgnn_pyr_s(num_classes=200)            # or create_model("atgnn_pyr_s")
>>> list_models("atgnn_pyr_*")

Layout as timm's: ``_registry`` (names -> :class:`ZooEntry`: entry point, :class:`ModelConfig`
and hooks), ``_factory`` (:func:`create_model`), ``_builder`` (``build_model``, which every
entry point calls), ``bundle`` (:class:`ModelBundle`, what a built model carries:
``model.bundle``), ``checkpoints`` (save / load), ``hub`` (safetensors model folders and hub
ids: :func:`save_pretrained` / :func:`from_pretrained`), the entry points in ``atgnn`` and
``baselines`` (registered when this package is imported).
"""
from gnn_audio.zoo.atgnn import (atgnn_iso, atgnn_iso_nomlg, atgnn_pyr_med,
                                 atgnn_pyr_med_nomlg, atgnn_pyr_s, atgnn_pyr_s_nomlg,
                                 atgnn_pyr_t, atgnn_pyr_t_nomlg)
from gnn_audio.zoo.baselines import at_gcn, cnn10, fc1, fc2, gated_cnn_tagger, lstm_tagger
from gnn_audio.zoo._factory import LOAD_ERRORS, create_model, load_model
from gnn_audio.zoo._registry import (ModelConfig, ZooEntry, get_entry, get_model_config,
                                     is_model, list_models, register_model, unregister_model)
from gnn_audio.zoo.bundle import ModelBundle, bundle_of
from gnn_audio.zoo.checkpoints import (CheckpointMismatch, load_checkpoint, load_pretrained,
                                       save_checkpoint)
from gnn_audio.zoo.hub import from_pretrained, save_pretrained

__all__ = ["create_model", "load_model", "LOAD_ERRORS", "list_models", "get_model_config",
           "get_entry", "is_model", "register_model", "unregister_model", "ModelConfig", "ZooEntry",
           "ModelBundle", "bundle_of", "save_checkpoint", "load_checkpoint", "load_pretrained",
           "CheckpointMismatch", "save_pretrained", "from_pretrained", "atgnn_iso",
           "atgnn_iso_nomlg", "atgnn_pyr_t",
           "atgnn_pyr_t_nomlg", "atgnn_pyr_s", "atgnn_pyr_s_nomlg", "atgnn_pyr_med",
           "atgnn_pyr_med_nomlg", "cnn10", "at_gcn", "fc1", "fc2", "lstm_tagger",
           "gated_cnn_tagger"]
