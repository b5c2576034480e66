"""Entry points of the seeds' other models: CNN10, AT-GCN and the embedding baselines."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch

from gnn_audio.data.features import PANNS_FBANK, PANNS_LOGMEL
from gnn_audio.labels.cooccurrence import cooccurrence_adjacency
from gnn_audio.labels.glove import hashed_gaussian
from gnn_audio.labels.ontology_graph import ontology_adjacency
from gnn_audio.models.at_gcn import ATGCN
from gnn_audio.models.cnn10 import CNN10
from gnn_audio.models.cnn10_weights import convert_panns_cnn10
from gnn_audio.models.embedding_taggers import FCTagger, GatedCNNTagger, LSTMTagger
from gnn_audio.types import PathLike
from gnn_audio.zoo._builder import build_model
from gnn_audio.zoo._registry import ModelConfig, register_model
from gnn_audio.zoo.checkpoints import load_checkpoint

__all__ = ["cnn10", "at_gcn", "fc1", "fc2", "lstm_tagger", "gated_cnn_tagger"]

_LOGMEL = dict(input="logmel", input_size=(1000, 64), sample_rate=32000, fbank=PANNS_FBANK,
               label_set="audioset", num_classes=527)
_EMBEDDING = dict(input="embedding", input_size=(10, 128), sample_rate=None, fbank=None,
                  label_set="audioset", num_classes=527)
_FC_ARCH = ("hidden", "num_frames", "embedding_dim")


def _mel_bins(data: Any, recipe: Any, log: Callable[[str], None]) -> Dict[str, Any]:
    """A training run's CNN10: as many mel bins as its front-end computes."""
    return {} if data.fbank is None else {"mel_bins": data.fbank.num_mel_bins}


def _at_gcn_kwargs(data: Any, recipe: Any, log: Callable[[str], None]) -> Dict[str, Any]:
    """A training run's AT-GCN: the mel bins of its front-end, the label graph of
    ``recipe.model.label_graph`` (the co-occurrence graph of the training targets with
    ``tau`` / ``p``, or the ontology's) and the label embeddings (GloVe from
    ``recipe.model.glove``, else fixed pseudo-random 300-d vectors)."""
    section, labels = recipe.model, data.label_set
    kwargs = _mel_bins(data, recipe, log)
    if section.label_graph == "ontology":
        kwargs["adjacency"] = ontology_adjacency(labels.mids, p=section.p)
    else:
        kwargs["adjacency"] = cooccurrence_adjacency(data.train_targets, section.tau,
                                                     section.p, section.label_graph)
    log(f"AT-GCN label graph: {section.label_graph} (tau {section.tau}, p {section.p}), "
        f"{int((kwargs['adjacency'] != 0).sum())} non-zero entries; stored in the checkpoint")
    if section.glove:
        kwargs["label_embeddings"] = (section.glove, list(labels.names))
    else:
        dim = section.kwargs.get("embedding_dim", 300)
        kwargs["label_embeddings"] = torch.from_numpy(
            hashed_gaussian("gnn_audio", (len(labels), dim)).astype(np.float32))
        log("AT-GCN label embeddings: no --glove file, fixed pseudo-random 300-d vectors "
            "(the documented fallback; the paper uses GloVe)")
    return kwargs


def _fc(name: str, hidden: list, pretrained: Optional[PathLike], num_classes: int,
        kwargs: Any) -> FCTagger:
    if "hidden" in kwargs:
        raise TypeError(f"{name}() fixes its hidden layers ({hidden}); for others build "
                        "gnn_audio.models.embedding_taggers.FCTagger(hidden=...)")
    return build_model(name, FCTagger, pretrained, num_classes, defaults=dict(hidden=hidden),
                       **kwargs)


def _load_panns(content: Any, model: CNN10, path: str
                ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``ZooEntry.load_foreign`` of ``cnn10``: PANNs' ``Cnn10_mAP=0.380.pth``
    (:func:`~gnn_audio.models.cnn10_weights.convert_panns_cnn10`); its weights are only
    meaningful with PANNs' own front-end, which the report hands to the model's bundle."""
    state, dropped = convert_panns_cnn10(content, path)
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"{path} holds PANNs' CNN10 for 527 AudioSet classes on 64 mel bins; "
                         f"the model differs ({bad[0]}: {tuple(own[bad[0]].shape)}): build "
                         "cnn10(num_classes=527), then fine-tune it for other classes")
    return state, {"mapped": len(state), "dropped": len(dropped),
                   "dropped_note": "torchlibrosa's front-end buffers; the model's front-end "
                                   "is PANNs' log-mel (kind 'panns')",
                   "fbank": PANNS_LOGMEL}


@register_model(ModelConfig(name="cnn10", family="cnn", **_LOGMEL, arch_args=("mel_bins",),
                            paper=dict(params_m=5.2, map_audioset=0.422)),
                prepare_kwargs=_mel_bins, load_foreign=_load_panns)
def cnn10(pretrained: Optional[PathLike] = None, num_classes: int = 527,
          **kwargs: Any) -> CNN10:
    """PANNs CNN10: 4 conv blocks (64-512), max+mean pooling, fc 512, classifier."""
    return build_model("cnn10", CNN10, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="at_gcn", family="at_gcn", **_LOGMEL,
    arch_args=("gcn_layers", "mel_bins", "embedding_dim"),
    paper=dict(map_audioset=0.434, map_audioset_1layer=0.428, map_audioset_3layers=0.430)),
    prepare_kwargs=_at_gcn_kwargs)
def at_gcn(pretrained: Optional[PathLike] = None, num_classes: int = 527,
           **kwargs: Any) -> ATGCN:
    """AT-GCN. Pass ``label_embeddings`` (tensor or ``(glove_path, names)``) and either
    ``adjacency`` or ``train_targets``; with ``pretrained`` both come from the checkpoint."""
    if pretrained is not None:
        state = load_checkpoint(pretrained)["state_dict"]
        if "label_embeddings" in state and "label_embeddings" not in kwargs:
            kwargs["label_embeddings"] = torch.zeros_like(state["label_embeddings"])
        if "adjacency" in state and "adjacency" not in kwargs and "train_targets" not in kwargs:
            kwargs["adjacency"] = torch.eye(state["adjacency"].size(0))
    return build_model("at_gcn", ATGCN, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="fc1", family="embedding", **_EMBEDDING, arch_args=_FC_ARCH))
def fc1(pretrained: Optional[PathLike] = None, num_classes: int = 527,
        **kwargs: Any) -> FCTagger:
    """FC-1: one linear layer on the 10 x 128 AudioSet embeddings."""
    return _fc("fc1", [], pretrained, num_classes, kwargs)


@register_model(ModelConfig(
    name="fc2", family="embedding", **_EMBEDDING, arch_args=_FC_ARCH))
def fc2(pretrained: Optional[PathLike] = None, num_classes: int = 527,
        **kwargs: Any) -> FCTagger:
    """FC-2: 1024 hidden units, then the classifier."""
    return _fc("fc2", [1024], pretrained, num_classes, kwargs)


@register_model(ModelConfig(
    name="lstm_tagger", family="embedding", **_EMBEDDING,
    arch_args=("hidden", "num_frames", "embedding_dim")))
def lstm_tagger(pretrained: Optional[PathLike] = None, num_classes: int = 527,
                **kwargs: Any) -> LSTMTagger:
    """LSTM 512-256-128 over the embedding frames, all steps concatenated, FC 2048-1024."""
    return build_model("lstm_tagger", LSTMTagger, pretrained, num_classes, **kwargs)


@register_model(ModelConfig(
    name="gated_cnn_tagger", family="embedding", **_EMBEDDING,
    arch_args=("num_frames", "embedding_dim", "gru_hidden")))
def gated_cnn_tagger(pretrained: Optional[PathLike] = None, num_classes: int = 527,
                     **kwargs: Any) -> GatedCNNTagger:
    """Two gated conv blocks, two conv + max-pool blocks, two BiGRU layers."""
    return build_model("gated_cnn_tagger", GatedCNNTagger, pretrained, num_classes, **kwargs)
